"""Top-k selection over score matrices, best first, with FAISS's C++ heaps.

One pass over each row, about five times faster than argpartition, and
incremental: a scan can feed row tiles as it computes them.
"""

from __future__ import annotations

import faiss
import numpy as np


class TopK:
    """Keeps the k best (score, position) pairs of nq rows across added tiles."""

    def __init__(self, nq: int, k: int):
        self.rows = np.full((nq, k), -1, dtype=np.int64)
        self.scores = np.full((nq, k), -np.inf, dtype=np.float32)
        self._heaps = faiss.float_minheap_array_t()
        self._heaps.nh, self._heaps.k = nq, k
        self._heaps.ids, self._heaps.val = faiss.swig_ptr(self.rows), faiss.swig_ptr(self.scores)
        self._heaps.heapify()

    def add(self, scores: np.ndarray, first: int = 0) -> None:
        """scores: (nq, m) for positions first .. first + m - 1."""
        values = np.ascontiguousarray(scores, dtype=np.float32)
        self._heaps.addn(values.shape[1], faiss.swig_ptr(values), first)  # type: ignore[call-arg]  # faiss's stubs omit addn's j0

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions (nq, k) int64, scores (nq, k) float32), best first, equal scores by lower
        position; -1 / -inf pad. FAISS's heaps keep the first-added of equal scores at the k-th
        place (tiles added in position order: the lower position) but list equal scores
        highest position first, so they are put in position order here."""
        self._heaps.reorder()
        order = np.lexsort((np.where(self.rows < 0, np.iinfo(np.int64).max, self.rows), -self.scores))
        self.rows[:], self.scores[:] = np.take_along_axis(self.rows, order, 1), np.take_along_axis(self.scores, order, 1)
        return self.rows, self.scores


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """scores: (nq, n) -> (positions (nq, k') int64, scores (nq, k') float32), k' = min(k, n)."""
    heap = TopK(scores.shape[0], min(k, scores.shape[1]))
    heap.add(scores)
    return heap.result()
