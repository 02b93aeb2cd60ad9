"""Checks and normalisation shared by every path that takes vectors in."""

from __future__ import annotations

import numpy as np

from vecdial.indexer.errors import InvalidInput


def as_query_matrix(queries: np.ndarray, dim: int) -> np.ndarray:
    """Validate queries and return them as a C-contiguous (nq, dim) float32 matrix.

    Accepts one vector (dim,) or a batch (nq, dim). Rejects wrong dimensions,
    empty batches, NaN/inf and all-zero vectors with a message saying which row.
    """
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2:
        raise InvalidInput(f"queries must be a vector or a matrix, got shape {q.shape}")
    if q.shape[0] == 0:
        raise InvalidInput("no query vectors given")
    if q.shape[1] != dim:
        raise InvalidInput(f"query has {q.shape[1]} dimensions, the collection has {dim}")
    check_finite(q, "query")
    return np.ascontiguousarray(q)


def check_finite(x: np.ndarray, what: str) -> None:
    """Raise InvalidInput naming the first row that holds NaN or inf."""
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInput(f"{what} row {row} contains NaN or infinite values")


def normalize_rows(x: np.ndarray, what: str = "vector") -> np.ndarray:
    """Return x / ||x|| row-wise as float32; zero rows are an error (no direction)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    zero = norms[:, 0] == 0
    if zero.any():
        row = int(np.flatnonzero(zero)[0])
        raise InvalidInput(f"{what} row {row} is all zeros and has no direction")
    return x / norms


def unit_sample(vectors: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A seeded random sample of rows (sorted, so a memory map is read in order), normalised."""
    n = len(vectors)
    if n <= size:
        rows = np.arange(n)
    else:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    sample = np.asarray(vectors[rows], dtype=np.float32)
    check_finite(sample, "input vector")
    return normalize_rows(sample, "input vector")
