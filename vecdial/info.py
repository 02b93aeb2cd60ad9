"""`Info`: what a collection holds and serves, one shape for Python, the CLI (`info --json`) and HTTP."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vecdial.indexer.modes import ModeInfo


@dataclass(frozen=True)
class Info:
    """What a collection holds and serves: one shape for Python, the CLI (`info --json`) and HTTP."""

    name: str
    version: str
    size: int
    dim: int
    partitions: int  # cells the version's rows are stored in: `probe` reads up to this many (0: none)
    version_size: int
    segment_size: int
    deleted: int
    id_kind: str
    source_model: str | None
    text_queries: bool
    has_texts: bool
    created_at: str
    settings: dict[str, Any]
    modes: list[ModeInfo] = field(default_factory=list)
    dense_bytes_per_vector: dict[int, int] = field(default_factory=dict)
    swept_on: str | None = None
    damaged: str | None = None  # what in the log is damaged and what to run; writes are refused meanwhile
    shards: int = 1  # shards the collection is split into by id hash (1: not sharded)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
