"""Append-only row arrays for the write segment: grown by copying, never in place, so a
store made over the first n rows keeps reading the array it was made from."""

from __future__ import annotations

import numpy as np

MIN_ROWS = 64


def room_for(array: np.ndarray, start: int, stop: int, axis: int = 0) -> np.ndarray:
    """`array` if it has `stop` rows along `axis`, else a copy with room for at least twice as
    many, holding the first `start` rows (rows after them are zero)."""
    if stop <= array.shape[axis]:
        return array
    shape = list(array.shape)
    shape[axis] = max(stop, 2 * array.shape[axis], MIN_ROWS)
    grown = np.zeros(shape, dtype=array.dtype)
    kept = (slice(None),) * axis + (slice(0, start),)
    grown[kept] = array[kept]
    return grown
