"""One collection as N shards: which shard holds an id, the split of an input, the merge of hits.

Shards are by id hash, not by partition cell: a write (upsert, delete) names an id, so its
shard is known without reading anything, and every shard holds a uniform sample of the
collection, so each keeps its own cells, sweep and `auto` calibration, and a budget means
the same on every shard. Cells as shards would send each query to the few shards holding
its nearest cells (less work), but every write would need the centroids, a shard's load
would follow the query mix, and a budget without `probe` would still read every shard.

Pure functions over arrays, and the shard manifest. A sharded collection on disk
(indexer/disk/collection.py) is served in process by `vecdial.sharded.ShardedCollection`
(every front door: Python, CLI, HTTP); on Ray Serve, each shard in its own deployment,
by service/sharded.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vecdial.indexer.disk.atomic import write_text_atomic
from vecdial.indexer.disk.layout import CollectionLayout
from vecdial.indexer.errors import CorruptIndex
from vecdial.indexer.plan.results import Explain, Hits, StageReport

HASH_RULE = "blake2b-8(str(id)) mod shards"


@dataclass(frozen=True)
class ShardLayout:
    """A sharded collection's manifest (`<name>/SHARDS`). shards: how many; hash: the rule
    placing an id (`shard_of`); partial: whether a search may answer from the live shards
    when one is down (with `explain.partial`), or must fail with Unavailable."""

    shards: int
    hash: str = HASH_RULE
    partial: bool = True

    def save(self, directory: Path) -> None:
        write_text_atomic(
            CollectionLayout(Path(directory)).shards_manifest,
            json.dumps({"shards": self.shards, "hash": self.hash, "partial": self.partial}) + "\n",
        )

    @classmethod
    def load(cls, directory: Path) -> ShardLayout:
        path = CollectionLayout(Path(directory)).shards_manifest
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            layout = cls(int(raw["shards"]), str(raw["hash"]), bool(raw.get("partial", True)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptIndex(f"{path} cannot be read as a shard manifest ({exc}): restore it from a backup") from None
        if layout.hash != HASH_RULE or layout.shards < 1:
            raise CorruptIndex(f"{path} holds {layout}: this vecdial places ids by {HASH_RULE!r} over 1 or more shards")
        return layout


def shard_of(ids: np.ndarray | list, count: int) -> np.ndarray:
    """The shard (0..count-1) of each id: (n,) int64, from an 8-byte BLAKE2b of the id's text,
    so 7 and "7" land together and the answer never depends on the process or the platform."""
    digests = b"".join(hashlib.blake2b(str(i).encode("utf-8"), digest_size=8).digest() for i in np.asarray(ids).tolist())
    return (np.frombuffer(digests, dtype="<u8") % np.uint64(count)).astype(np.int64)


@dataclass(frozen=True)
class ShardHits:
    """One shard's answer: ids (nq, k) (object or int64), scores (nq, k) float32 (-inf pad),
    and what it reports (its explain block, milliseconds it took)."""

    ids: np.ndarray
    scores: np.ndarray
    report: dict[str, Any]


def merge_hits(parts: list[ShardHits], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The best k of every shard's hits per query -> ids (nq, k) object, scores (nq, k) float32,
    found (nq,) int64. Equal scores keep shard order, then each shard's own order."""
    ids = np.concatenate([np.asarray(p.ids, dtype=object) for p in parts], axis=1)
    scores = np.concatenate([np.asarray(p.scores, dtype=np.float32) for p in parts], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    best_ids, best = np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)
    if best.shape[1] < k:
        pad = k - best.shape[1]
        best_ids = np.concatenate([best_ids, np.full((len(best_ids), pad), None, dtype=object)], axis=1)
        best = np.pad(best, ((0, 0), (0, pad)), constant_values=-np.inf)
    found = np.isfinite(best).sum(axis=1).astype(np.int64)
    return best_ids, best, found


@dataclass
class ShardAnswer:
    """One shard's part of a sharded search: its hits and milliseconds, or why it is missing."""

    shard: str
    hits: Hits | None = None
    ms: float = 0.0
    missing: str | None = None
    report: dict[str, Any] = field(default_factory=dict)


def merge_shard_hits(answers: list[ShardAnswer], k: int, total_ms: float) -> Hits:
    """The best k of the answering shards' hits per query, as one Hits: ids (nq, k), scores
    (nq, k) float32, and texts, payloads, features when the shards return them. Equal scores
    keep shard order, then each shard's own order. `explain` sums the shards' rows and bytes
    (a stage's ms: its slowest shard), and `explain.shards` keeps every shard's own explain,
    or for a shard that did not answer, why (`partial` is then true)."""
    parts = [a.hits for a in answers if a.hits is not None]
    ids = np.concatenate([p.ids for p in parts], axis=1)
    scores = np.concatenate([np.asarray(p.scores, dtype=np.float32) for p in parts], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    best_ids, best = np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)
    found = np.isfinite(best).sum(axis=1).astype(np.int64)

    def column(name: str) -> list[list] | None:
        values = [getattr(p, name) for p in parts]
        if all(v is None for v in values):
            return None
        joined = [sum((_padded(v, q, p.ids.shape[1]) for v, p in zip(values, parts)), []) for q in range(len(ids))]
        return [[row[j] for j in order[q, : found[q]].tolist()] for q, row in enumerate(joined)]

    return Hits(best_ids, best, found, column("texts"), _merged_explain(answers, parts, total_ms), column("payloads"), column("features"))


def _padded(values: list[list] | None, query: int, width: int) -> list:
    row = list(values[query]) if values is not None else []
    return row + [None] * (width - len(row))


def _merged_explain(answers: list[ShardAnswer], parts: list[Hits], total_ms: float) -> Explain:
    first = parts[0].explain
    stages: dict[str, StageReport] = {}
    for part in parts:
        for stage in part.explain.stages:
            seen = stages.setdefault(stage.stage, StageReport(stage.stage, 0, 0, 0.0))
            seen.candidates += stage.candidates
            seen.bytes_read += stage.bytes_read
            seen.ms = max(seen.ms, stage.ms)
    filtered = None
    if first.filter is not None:
        filtered = {**first.filter, "matched_rows": sum(int((p.explain.filter or {}).get("matched_rows", 0)) for p in parts)}
    shards = [
        {"shard": a.shard, "missing": a.missing}
        if a.hits is None
        else {"shard": a.shard, "ms": round(a.ms, 3), "explain": a.hits.explain.to_dict()}
        for a in answers
    ]
    return Explain(
        budget=first.budget,
        version="+".join(p.explain.version for p in parts),
        stages=list(stages.values()),
        bytes_scanned=sum(p.explain.bytes_scanned for p in parts),
        total_ms=round(total_ms, 3),
        version_rows=sum(p.explain.version_rows for p in parts),
        segment_rows=sum(p.explain.segment_rows for p in parts),
        deleted_rows=sum(p.explain.deleted_rows for p in parts),
        calibration=first.calibration,
        filter=filtered,
        hybrid=first.hybrid,
        steer=first.steer,
        shards=shards,
        partial=any(a.hits is None for a in answers),
    )
