"""Compiled loops (numba) that walk the sparse index's postings: work follows the postings touched.

One query's search adds weight x value of every posting in its units' prefixes
into a score per document, remembers which documents it touched, then keeps the
best `keep` of those with a small heap, clearing each score as it is read. No
pass over all N documents: the cost is the postings the query touches (what the
FLOPs regulariser shrinks), plus `touched x log(keep)` for the heap.

Measured on 117k WordNet codes (3,072 units, one thread, busy machine), per query
at 8/16/32/64 active units, interleaved: 99/178/416/1,010 us here against
416/514/968/2,479 us for the previous numpy path (bincount into a dense (N,)
array, argpartition over all N), same top 10. A scipy sparse product (and one
CSR matrix per budget) took 305/753/6,981 us at 16/32/64 where this took
149/359/961. Counting touched documents without a branch: 6 ns per posting, not 10.

The accumulator (N,) float32 and the touched list (N,) int32 are scratch that
callers keep per thread (see SparseIndex.search): all zero on entry, and left
all zero on return. Loops are single-threaded, compiled on first use and cached
on disk, like indexer.stores.kernels; they read memory-mapped arrays in place.
"""

from __future__ import annotations

import numba
import numpy as np

_JIT = {"nogil": True, "cache": True, "boundscheck": False, "fastmath": {"reassoc", "contract"}}


@numba.njit(**_JIT)
def _worse(score_a: float, row_a: int, score_b: float, row_b: int) -> bool:  # pragma: no cover - compiled
    """Ranks a below b: a lower score, or the same score and a larger row (ties go to the lower row)."""
    return score_a < score_b or (score_a == score_b and row_a > row_b)


@numba.njit(**_JIT)
def _sift_down(heap_s: np.ndarray, heap_r: np.ndarray, size: int, i: int) -> None:  # pragma: no cover - compiled
    """Restore the heap (worst entry at 0) below position i."""
    while True:
        child = 2 * i + 1
        if child >= size:
            return
        right = child + 1
        if right < size and _worse(heap_s[right], heap_r[right], heap_s[child], heap_r[child]):
            child = right
        if not _worse(heap_s[child], heap_r[child], heap_s[i], heap_r[i]):
            return
        heap_s[i], heap_s[child] = heap_s[child], heap_s[i]
        heap_r[i], heap_r[child] = heap_r[child], heap_r[i]
        i = child


@numba.njit(**_JIT)
def search_postings(
    indptr: np.ndarray,
    docs: np.ndarray,
    values: np.ndarray,
    rank_cum: np.ndarray,
    inv_norms: np.ndarray,
    q_units: np.ndarray,
    q_weights: np.ndarray,
    active: int,
    dead: np.ndarray,
    acc: np.ndarray,
    touched: np.ndarray,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Best documents per query by cosine of codes truncated to `active` units; returns postings read.

    indptr (hidden+1,) int64, docs (nnz,) int32, values (nnz,) float32, rank_cum
    (hidden, k+1) int32: the index (see stores.sparse.build_postings); inv_norms (N,)
    float32: 1 / each document's code norm at `active`. q_units/q_weights (nq, >= active):
    the queries' codes, best first. dead: (N,) bool, True for rows never returned, or
    (0,) for none. acc/touched: zeroed scratch of at least N. out_rows (nq, keep) int64
    and out_scores (nq, keep) float32 are filled best first, -1 / -inf past the
    documents that share a unit with the query (score > 0).
    """
    keep = out_rows.shape[1]
    masked = dead.shape[0] > 0
    heap_s = np.empty(max(keep, 1), dtype=np.float32)
    heap_r = np.empty(max(keep, 1), dtype=np.int64)
    read = 0
    for q in range(q_units.shape[0]):
        norm_sq = np.float32(0.0)
        for j in range(active):
            w = q_weights[q, j]
            if w > 0:
                norm_sq += w * w
        n_touched = 0
        if norm_sq > 0:
            for j in range(active):
                w = q_weights[q, j]
                if w <= 0:
                    continue
                u = q_units[q, j]
                start = indptr[u]
                stop = start + rank_cum[u, active]
                read += stop - start
                for p in range(start, stop):
                    d = docs[p]
                    old = acc[d]
                    new = old + w * values[p]
                    acc[d] = new
                    # Contributions are >= 0, so a score leaves zero once: each document is listed
                    # once. Written unconditionally, counted only then: no branch to mispredict.
                    touched[n_touched] = d
                    n_touched += (old == 0) & (new != 0)
        inv_query = np.float32(1.0) / np.float32(max(np.sqrt(norm_sq), 1e-30))
        size = 0
        for i in range(n_touched):
            d = touched[i]
            s = acc[d] * inv_query * inv_norms[d]
            acc[d] = 0.0
            if s <= 0 or (masked and dead[d]):
                continue
            if size < keep:
                # Sift up: the new entry climbs while it ranks below its parent.
                c = size
                heap_s[c] = s
                heap_r[c] = d
                size += 1
                while c > 0:
                    parent = (c - 1) // 2
                    if not _worse(heap_s[c], heap_r[c], heap_s[parent], heap_r[parent]):
                        break
                    heap_s[c], heap_s[parent] = heap_s[parent], heap_s[c]
                    heap_r[c], heap_r[parent] = heap_r[parent], heap_r[c]
                    c = parent
            elif keep > 0 and _worse(heap_s[0], heap_r[0], s, d):
                heap_s[0] = s
                heap_r[0] = d
                _sift_down(heap_s, heap_r, size, 0)
        # Pop the worst to the back: the heap's slots end up best first.
        for last in range(size - 1, -1, -1):
            out_scores[q, last] = heap_s[0]
            out_rows[q, last] = heap_r[0]
            heap_s[0] = heap_s[last]
            heap_r[0] = heap_r[last]
            _sift_down(heap_s, heap_r, last, 0)
        for i in range(size, keep):
            out_rows[q, i] = -1
            out_scores[q, i] = -np.inf
    return read
