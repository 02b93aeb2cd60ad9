"""Checks and normalisation shared by every path that takes vectors in."""

from __future__ import annotations

import math
from typing import Protocol

import numba
import numpy as np

from vecdial.indexer.errors import InvalidInput


class Rows(Protocol):
    """(N, dim) rows a build reads a slice or a set of row numbers at a time: an array, a memory
    map, or a view over one (jobs/build.py `Reordered`: rows in the order of the partitions'
    cells; jobs/reindex.py `WatchedVectors`: reads that report progress and can be cancelled)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def ndim(self) -> int: ...

    @property
    def dtype(self) -> np.dtype: ...

    def __len__(self) -> int: ...

    def __getitem__(self, key: slice | np.ndarray, /) -> np.ndarray: ...


def as_query_matrix(queries: np.ndarray, dim: int, check: bool = True) -> np.ndarray:
    """Validate queries and return them as a C-contiguous (nq, dim) float32 matrix.

    Accepts one vector (dim,) or a batch (nq, dim). Rejects wrong dimensions,
    empty batches and (with `check`; normalize_rows checks too) NaN/inf, with a
    message saying which row.
    """
    if type(queries) is np.ndarray and queries.dtype == np.float32:
        q = queries  # nothing to convert (and no errstate to enter: a few µs a search)
    else:
        try:
            with np.errstate(over="ignore"):  # a value past float32's range becomes inf, refused below
                q = np.asarray(queries, dtype=np.float32)
        except (ValueError, TypeError):
            raise InvalidInput("queries must be a vector (dim,) or a matrix (nq, dim) of numbers, or text") from None
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2:
        raise InvalidInput(f"queries must be a vector or a matrix, got shape {q.shape}")
    if q.shape[0] == 0:
        raise InvalidInput("no query vectors given")
    if q.shape[1] != dim:
        raise InvalidInput(f"query has {q.shape[1]} dimensions, the collection has {dim}")
    if not check:
        return q  # normalize_rows checks and makes it contiguous in one pass
    check_finite(q, "query")
    return np.ascontiguousarray(q)


def check_finite(x: np.ndarray, what: str) -> None:
    """Raise InvalidInput naming the first row that holds NaN or inf (or, read as float32, a value past its +-3.4e38)."""
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        _not_finite(int(np.flatnonzero(bad)[0]), what)


def _not_finite(row: int, what: str) -> None:
    raise InvalidInput(f"{what} row {row} contains NaN or infinite values (or values beyond float32's range, 3.4e38): send finite numbers")


def normalize_rows(x: np.ndarray, what: str = "vector") -> np.ndarray:
    """Return x / ||x|| row-wise as float32; rows with no direction are an error naming the row.

    x: (n, d). NaN or inf is an error naming the row too. The norm is summed and
    the division done in float64: in float32, components of 1e20 overflow the
    norm to inf (the row would silently become zeros) and components of 1e-30
    underflow it to 0. One compiled pass: for one query the dozen numpy calls it
    replaces cost 40 us on a busy cache, more than a rescoring.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidInput(f"expected a matrix of vectors, got shape {x.shape}")
    unit = np.empty_like(x)
    row, problem = _unit_rows(x, unit)
    if problem == _NOT_FINITE:
        _not_finite(row, what)
    if problem == _ZERO:
        raise InvalidInput(f"{what} row {row} is all zeros and has no direction")
    if problem == _VANISHED:  # cannot happen for finite rows with a float64 norm; a guard, not a path
        raise InvalidInput(f"{what} row {row} cannot be normalised to a finite unit vector: rescale it")
    return unit


_NOT_FINITE, _ZERO, _VANISHED = 1, 2, 3


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _unit_rows(x: np.ndarray, out: np.ndarray) -> tuple[int, int]:  # pragma: no cover - compiled
    """out = x / ||x|| per row; returns (first bad row, its problem) or (-1, 0)."""
    for i in range(x.shape[0]):
        total = 0.0
        for j in range(x.shape[1]):
            value = x[i, j]
            if not math.isfinite(value):
                return i, _NOT_FINITE
            wide = np.float64(value)
            total += wide * wide
        if total == 0.0:
            return i, _ZERO
        inverse = 1.0 / math.sqrt(total)
        nonzero = False
        for j in range(x.shape[1]):
            scaled = np.float32(np.float64(x[i, j]) * inverse)
            out[i, j] = scaled
            nonzero = nonzero or scaled != 0
        if not nonzero:
            return i, _VANISHED
    return -1, 0


def unit_sample(vectors: Rows, size: int, seed: int) -> np.ndarray:
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
