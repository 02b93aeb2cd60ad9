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
    """Raise InvalidInput naming the first row that holds NaN or inf (or, read as float32, a value past its +-3.4e38)."""
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInput(f"{what} row {row} contains NaN or infinite values (or values beyond float32's range, 3.4e38): send finite numbers")


def normalize_rows(x: np.ndarray, what: str = "vector") -> np.ndarray:
    """Return x / ||x|| row-wise as float32; rows with no direction are an error naming the row.

    The norm is taken and the division done in float64: in float32, components of
    1e20 overflow the norm to inf (the row would silently become zeros) and
    components of 1e-30 underflow it to 0. x: (n, d) finite.
    """
    x = np.asarray(x, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    zero = norms == 0
    if zero.any():
        row = int(np.flatnonzero(zero)[0])
        raise InvalidInput(f"{what} row {row} is all zeros and has no direction")
    if norms.min() > 1e-30 and norms.max() < 1e30:  # 1/norm is a normal float32: scale in float32 (2x faster)
        unit = x * (1.0 / norms).astype(np.float32)[:, None]
    else:
        unit = (x / norms[:, None]).astype(np.float32)
    bad = ~(np.isfinite(unit).all(axis=1) & (unit != 0).any(axis=1))
    if bad.any():  # cannot happen for finite rows with a float64 norm; a guard, not a path
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInput(f"{what} row {row} cannot be normalised to a finite unit vector: rescale it")
    return unit


def unit_sample(vectors: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A seeded random sample of rows (sorted, so a memory map is read in order), normalised."""
    n = len(vectors)
    if n <= size:
        rows = np.arange(n)
    else:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    with np.errstate(over="ignore"):  # past float32's range: inf, refused by check_finite
        sample = np.asarray(vectors[rows], dtype=np.float32)
    check_finite(sample, "input vector")
    return normalize_rows(sample, "input vector")
