"""One collection served as N shards, on the front door only: create the shards, search them all
with one budget, merge the top k. Ray Serve (service/sharded.py) runs the same calls with each
shard in its own deployment; this module imports no Ray, so it is also the in-process reference.

Shard i of collection `name` is the collection `name.shard{i}of{N}` (indexer/scale/shards.py:
ids by hash). Exact search over the shards returns what exact search over the whole returns
(the same vectors, the same cosine; ties may come in another order).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import vecdial
from vecdial._internal import ShardHits, merge_hits, shard_name, shard_of


def create_shards(
    db: vecdial.Database,
    name: str,
    count: int,
    vectors: np.ndarray,
    *,
    ids: Sequence | np.ndarray | None = None,
    texts: Sequence[str] | None = None,
    settings: Any = None,
    show_progress: bool = False,
    ray: str | None = None,
) -> list[str]:
    """Build `count` shard collections of vectors (n, dim) (ids default 0..n-1); their names."""
    ids = np.arange(len(vectors)) if ids is None else np.asarray(ids)
    shards = shard_of(ids, count)
    names = []
    for shard in range(count):
        rows = np.flatnonzero(shards == shard)
        part_texts = None if texts is None else [texts[i] for i in rows.tolist()]
        names.append(shard_name(name, shard, count))
        db.create(
            names[-1],
            np.asarray(vectors)[rows],
            ids=ids[rows],
            texts=part_texts,
            settings=settings,
            replace=True,
            show_progress=show_progress,
            ray=ray,
        )
    return names


def search_one_shard(collection: vecdial.Collection, queries: np.ndarray, k: int, budget: Any) -> ShardHits:
    """One shard's top k under the budget, with its explain block and milliseconds."""
    start = time.perf_counter()
    hits = collection.search(queries, k=k, budget=budget)
    ms = (time.perf_counter() - start) * 1000
    return ShardHits(hits.ids, hits.scores, {"shard": collection.name, "ms": round(ms, 3), "explain": hits.explain.to_dict()})


def merged_response(parts: list[ShardHits], k: int, budget: Any, scatter_ms: float) -> dict[str, Any]:
    """What /v1/collections/{name}/search answers for one query: hits, and explain per shard."""
    start = time.perf_counter()
    ids, scores, found = merge_hits(parts, k)
    hits = [{"id": _plain(i), "score": float(s)} for i, s in zip(ids[0, : found[0]], scores[0, : found[0]])]
    merge_ms = (time.perf_counter() - start) * 1000
    explain = {
        "budget": str(budget),
        "shards": [p.report for p in parts],
        "scatter_ms": round(scatter_ms, 3),
        "merge_ms": round(merge_ms, 3),
    }
    return {"hits": hits, "explain": explain}


def search_shards(shards: list[vecdial.Collection], query: np.ndarray, k: int, budget: Any = "exact") -> dict[str, Any]:
    """The in-process reference of the sharded service: every shard in turn, then the merge."""
    start = time.perf_counter()
    parts = [search_one_shard(s, np.asarray(query, dtype=np.float32).reshape(1, -1), k, budget) for s in shards]
    return merged_response(parts, k, budget, (time.perf_counter() - start) * 1000)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
