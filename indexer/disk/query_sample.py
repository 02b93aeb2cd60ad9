"""A sample of real search traffic kept beside a collection, to calibrate `auto` on.

Stored documents are easier queries than real ones (measured at 1M: a budget swept at
R@10 0.944 on documents delivered 0.838 on real queries), so a service may keep, opt-in,
a bounded sample of the query vectors it answers. The file is raw little-endian float32
rows (`query-sample.f32`), appended whole with O_APPEND by any process and read back
dropping a torn last row; it stops growing at its limit. Queries are vectors only (texts
arrive encoded), and the file lives and dies with the collection directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vecdial.indexer.disk.layout import CollectionLayout


def sample_path(collection_dir: Path) -> Path:
    return CollectionLayout(Path(collection_dir)).query_sample


def append_queries(collection_dir: Path, queries: np.ndarray, limit: int) -> int:
    """Append (n, dim) float32 rows unless the sample already holds `limit`; returns the rows kept."""
    rows = np.ascontiguousarray(queries, dtype="<f4")
    path = sample_path(collection_dir)
    held = path.stat().st_size // max(rows.shape[1] * 4, 1) if path.exists() else 0
    room = max(limit - held, 0)
    if room == 0 or len(rows) == 0:
        return 0
    data = rows[:room].tobytes()
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(handle, data)  # one write per call: whole rows, never interleaved with another writer's
    finally:
        os.close(handle)
    return min(room, len(rows))


def read_queries(collection_dir: Path, dim: int) -> np.ndarray:
    """(n, dim) float32: every whole row kept so far (a torn last row is dropped); (0, dim) if none."""
    path = sample_path(collection_dir)
    if not path.exists():
        return np.zeros((0, dim), dtype=np.float32)
    raw = np.fromfile(path, dtype="<f4")
    whole = len(raw) // dim * dim
    return raw[:whole].reshape(-1, dim).astype(np.float32)
