"""The one place the benches touch vecdial's Python API, so the front door can change under them.

    db = vecdial.connect(data_dir)
    col = db.create(name, vectors=X, ids=ids, show_progress=False)   # or db.open(name)
    hits = col.search(Q, k=10, budget="binary:rescore=10")           # hits.ids, hits.scores: (nq, k)

`FRONT_DOOR` names the path taken; the benches print it beside their numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import vecdial

FRONT_DOOR = "vecdial.connect"


def create_collection(data_dir: Path, name: str, vectors: np.ndarray, ids: np.ndarray, settings: dict | None = None) -> vecdial.Collection:
    """Build collection `name` under data_dir from (n, dim) float32 vectors and (n,) int64 ids
    (with build `settings`, e.g. {"graph": 16}); open it."""
    return vecdial.connect(data_dir).create(name, vectors=vectors, ids=ids, settings=settings, show_progress=False)


def open_collection(data_dir: Path, name: str) -> vecdial.Collection:
    """Open an existing collection for search, as a fresh process would."""
    return vecdial.connect(data_dir).open(name)


def hit_ids(hits: vecdial.Hits) -> np.ndarray:
    """A search result's ids as (nq, k) int64, -1 where a query found fewer than k."""
    return np.atleast_2d(np.asarray(hits.ids)).astype(np.int64)
