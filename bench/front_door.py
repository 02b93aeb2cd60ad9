"""The one place the benches touch vecdial's Python API, so the front door can change under them.

The library's new front door is `vecdial.connect(dir)`:

    db = vecdial.connect(data_dir)
    col = db.create(name, vectors=X, ids=ids, show_progress=False)   # or db.open(name)
    hits = col.search(Q, k=10, budget="binary:rescore=10")           # hits.ids, hits.scores: (nq, k)

Until it exists, the same two verbs go through the indexer: `Collection.build`
then `LiveCollection.open`, whose `search(q, k, budget)` returns ids as a list of
lists. `FRONT_DOOR` names the path taken, and the benches print it beside their
numbers, so a "before" run (indexer) and an "after" run (connect) are told apart.
When the indexer path is retired, delete the `else` branches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import vecdial

FRONT_DOOR = "vecdial.connect" if hasattr(vecdial, "connect") else "indexer LiveCollection"


def create_collection(data_dir: Path, name: str, vectors: np.ndarray, ids: np.ndarray) -> Any:
    """Build collection `name` under data_dir from (n, dim) float32 vectors and (n,) int64 ids; open it.

    The returned object's `search(q, k, budget)` is the call the benches time.
    """
    if FRONT_DOOR == "vecdial.connect":
        return vecdial.connect(data_dir).create(name, vectors=vectors, ids=ids, show_progress=False)
    from vecdial.indexer.disk.collection import Collection
    from vecdial.indexer.io.readers import Dataset

    Collection(data_dir, name).build(Dataset(ids, vectors), show_progress=False)
    return open_collection(data_dir, name)


def open_collection(data_dir: Path, name: str) -> Any:
    """Open an existing collection for search, as a fresh process would."""
    if FRONT_DOOR == "vecdial.connect":
        return vecdial.connect(data_dir).open(name)
    from vecdial.indexer.live.collection import LiveCollection

    return LiveCollection.open(data_dir, name)


def hit_ids(hits: Any) -> np.ndarray:
    """A search result's ids as (nq, k) int64, -1 where a query found fewer than k."""
    if isinstance(hits.ids, np.ndarray):
        return np.atleast_2d(hits.ids).astype(np.int64)
    out = np.full((len(hits.ids), max(map(len, hits.ids), default=0)), -1, dtype=np.int64)
    for i, row in enumerate(hits.ids):
        out[i, : len(row)] = row
    return out
