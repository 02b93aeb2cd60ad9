"""What the server answers about collections, sweeps, jobs and itself (the request bodies and
search answers are in schemas.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from vecdial.service.json_types import Id


class ModeInfo(BaseModel):
    mode: str
    knobs: dict[str, tuple[int | float, int | float]] = Field(description="Knob -> [min, max].")
    bytes_per_vector: int | None = Field(description="Index bytes a candidate scan reads per vector.")
    note: str


class CollectionSummary(BaseModel):
    name: str
    version: str
    size: int
    dim: int


class CollectionInfo(CollectionSummary):
    """`vecdial.Info` plus this server's max_k: one describe shape for Python, `vecdial info --json` and HTTP."""

    partitions: int = Field(
        description="Cells the serving version's rows are stored in; budgets with `probe` read that many at most (0: not partitioned)."
    )
    version_size: int = Field(description="Vectors in the serving version.")
    segment_size: int = Field(description="Vectors written since it was built (in the write-ahead log).")
    deleted: int = Field(description="Version vectors deleted or overwritten since.")
    id_kind: Literal["int", "str"]
    source_model: str | None
    text_queries: bool = Field(description="Whether `text` queries work (built with the bundled model).")
    has_texts: bool
    created_at: str
    settings: dict[str, Any] = Field(description="Compression settings of the serving version.")
    modes: list[ModeInfo]
    dense_bytes_per_vector: dict[int, int] = Field(description="dim -> bytes a dense scan reads per vector.")
    swept_on: str | None = Field(None, description="The queries of the sweep `auto` budgets are served from, if any.")
    damaged: str | None = Field(
        None, description="What in the write-ahead log is damaged and what to run (`vecdial repair`); writes are refused until then."
    )
    shards: int = Field(1, description="Shards the collection is split into by id hash (`vecdial shard`); 1: not sharded.")
    max_k: int = Field(description="This server's largest k.")


class IdPage(BaseModel):
    ids: list[Id] = Field(description="Live ids, ascending (numbers, or strings by code point).")
    next: Id | None = Field(description="Pass as `after` for the next page; null after the last page.")


class SweepPointModel(BaseModel):
    budget: str
    recall_at_10: float = Field(description="Mean recall@10 against exact search over the calibration queries.")
    recall_lower: float | None = Field(description="One-sided 95% lower bound of recall@10: what auto trusts.")
    queries: int | None = Field(description="Calibration queries measured.")
    ms_per_query: float = Field(description="Median latency of one query at a time.")
    bytes_read_per_vector: float
    pareto: bool = Field(description="No other point is both faster and more accurate.")
    documents_recall: float | None = Field(
        None,
        description="Calibrated on real queries: the same budget's recall@10 with stored documents as queries (how optimistic documents are).",
    )
    miss_factor: float = Field(
        1.0,
        description="Calibrated on other than real queries: real queries miss this many times more; auto trusts 1 - miss_factor x (1 - recall_lower).",
    )
    bin_recall: list[float] | None = Field(
        None,
        description="Per difficulty bin of the calibration queries (hardest first), their mean recall@10: what per-query auto chooses by; null in sweeps without bins.",
    )
    bin_sd: list[float] | None = Field(None, description="Per difficulty bin, the standard deviation of its queries' recall@10.")


class SweepPoints(BaseModel):
    queries: str | None = Field(description="What the points were calibrated on, and when; null if never swept.")
    points: list[SweepPointModel]


class Job(BaseModel):
    id: str
    kind: str
    collection: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    phase: str
    progress: float = Field(ge=0, le=1)
    message: str
    settings: dict[str, Any]
    from_version: str | None
    to_version: str | None
    vectors: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: Literal["ready", "starting", "stopping", "degraded"] = Field(
        description="degraded: some collection exists but cannot be opened (see `broken`); the others serve."
    )
    collections: int = Field(description="Collections this process serves.")
    broken: dict[str, str] = Field(default_factory=dict, description="Collection -> why it cannot be opened (e.g. the damaged file).")
    damaged: dict[str, str] = Field(
        default_factory=dict,
        description="Collection -> what in its write-ahead log is damaged: it serves searches, refuses writes until `vecdial repair`.",
    )
    detail: str | None = Field(
        None, description="On a server with an API key, to a caller without it: how many collections are broken or damaged (not which)."
    )
