"""One collection as N shards: which shard holds an id, the split of an input, the merge of hits.

Shards are by id hash, not by partition cell: a write (upsert, delete) names an id, so its
shard is known without reading anything, and every shard holds a uniform sample of the
collection, so each keeps its own cells, sweep and `auto` calibration, and a budget means
the same on every shard. Cells as shards would send each query to the few shards holding
its nearest cells (less work), but every write would need the centroids, a shard's load
would follow the query mix, and a budget without `probe` would still read every shard.

Pure functions over arrays; serving them (one Ray Serve deployment per shard and an
ingress that scatters a query with its budget and merges) is service/sharded.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np



def shard_of(ids: np.ndarray | list, count: int) -> np.ndarray:
    """The shard (0..count-1) of each id: (n,) int64, from an 8-byte BLAKE2b of the id's text,
    so 7 and "7" land together and the answer never depends on the process or the platform."""
    digests = b"".join(hashlib.blake2b(str(i).encode("utf-8"), digest_size=8).digest() for i in np.asarray(ids).tolist())
    return (np.frombuffer(digests, dtype="<u8") % np.uint64(count)).astype(np.int64)


def shard_name(name: str, shard: int, count: int) -> str:
    """The collection that holds shard `shard` of `count` of collection `name`."""
    return f"{name}.shard{shard}of{count}"


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
        best_ids = np.pad(best_ids, ((0, 0), (0, pad)), constant_values=None)
        best = np.pad(best, ((0, 0), (0, pad)), constant_values=-np.inf)
    found = np.isfinite(best).sum(axis=1).astype(np.int64)
    return best_ids, best, found
