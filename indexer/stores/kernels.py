"""Compiled loops (numba) for the column-block layout, where BLAS calls are the wrong shape.

The dense store keeps rows as `[n_blocks][N][block]` so that any prefix of dims
is one contiguous read. BLAS sees that as one gemv per 32-wide block, and a dot
product of 32 floats is too short for its kernels: on 117k x 384 one query took
15.0 ms that way against 12.0 ms for faiss.IndexFlatIP over row-major data. One
loop that walks each row's blocks in turn (`scan_ranges`, over every row or the
probed cells' rows, keeping the top k itself) takes 13.0 ms, and skipping the later
blocks of rows that cannot reach the top k (see PRUNE_EVERY) halves that again. Gathering candidate
rows for rescoring has the same shape: numpy's take + matmul copies every row
first, this loop reads them in place (48 us against 76 us for 100 rows, cold).

All loops are single-threaded (no `parallel`), compiled on first use and cached
on disk. Arrays are float32; callers keep a numpy path for float16 blocks.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.extending import intrinsic

# Reassociation lets the compiler vectorise the sums; no NaN or inf reaches these loops
# (stored rows and queries are checked finite), but they are not assumed away.
_JIT = {"nogil": True, "cache": True, "boundscheck": False, "fastmath": {"reassoc", "contract"}}


@numba.njit(**_JIT)
def _block_dot(piece: np.ndarray, query: np.ndarray, offset: int) -> np.float32:  # pragma: no cover - compiled
    """One block of one row (block,) dotted with query[offset : offset + block]."""
    total = np.float32(0.0)
    for j in range(piece.shape[0]):
        total += piece[j] * query[offset + j]
    return total


@numba.njit(**_JIT)
def _score(
    store: np.ndarray, row_major: bool, prefix_sq: np.ndarray, queries: np.ndarray, rows: np.ndarray, dim: int, out: np.ndarray
) -> np.float32:  # pragma: no cover - compiled
    """The one rescoring loop of both layouts: store is the blocks (n_blocks, N, block), or with
    `row_major` the same rows in row order (N, n_blocks, block) (stores/blocks.py, ROWS_FILE).
    The arithmetic is the same either way (block by block, dim by dim), so a row scores the
    same from either layout; row order only makes a candidate's dims one contiguous run (one
    or two pages) instead of `used` pieces in blocks far apart (one page each when cold)."""
    width = store.shape[2]
    full = dim // width
    rest = dim - full * width
    used = full + (1 if rest else 0)
    # Candidates are scattered rows: cache misses. A first pass that only touches each row's
    # pieces keeps many misses in flight at once (the scoring loop alone waits on them a few
    # at a time): 48 us instead of 76 for 100 rows of 384 dims.
    touched = np.float32(0.0)
    for q in range(rows.shape[0]):
        for c in range(rows.shape[1]):
            r = rows[q, c]
            if r >= 0:
                if row_major:
                    touched += store[r, 0, 0] + store[r, used - 1, width - 1]
                else:
                    for b in range(used):
                        touched += store[b, r, 0] + store[b, r, width - 1]
                if full:
                    touched += prefix_sq[full - 1, r]
    for q in range(rows.shape[0]):
        inv_query = np.float32(1.0) / max(np.sqrt(np.sum(queries[q, : used * width] ** 2)), np.float32(1e-12))
        for c in range(rows.shape[1]):
            r = rows[q, c]
            if r < 0:
                out[q, c] = -np.inf
                continue
            total = np.float32(0.0)
            for b in range(used):
                total += _block_dot(store[r, b] if row_major else store[b, r], queries[q], b * width)
            sq = prefix_sq[full - 1, r] if full else np.float32(0.0)
            for j in range(rest):
                value = store[r, full, j] if row_major else store[full, r, j]
                sq += value * value
            out[q, c] = total * inv_query / max(np.sqrt(sq), np.float32(1e-12))
    return touched  # returned so the touching pass is not optimised away


@numba.njit(**_JIT)
def _best(
    store: np.ndarray,
    row_major: bool,
    prefix_sq: np.ndarray,
    queries: np.ndarray,
    rows: np.ndarray,
    dim: int,
    keep: int,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Rescore as `_score` and keep each query's best `keep`, best first (ties to the lower
    row); returns the candidates rescored (rows >= 0), which explain reports."""
    scores = np.empty(rows.shape, dtype=np.float32)
    _score(store, row_major, prefix_sq, queries, rows, dim, scores)
    for q in range(rows.shape[0]):
        order = _best_order(scores[q], rows[q])
        for i in range(keep):
            out_rows[q, i] = rows[q, order[i]]
            out_scores[q, i] = scores[q, order[i]]
    valid = 0
    for q in range(rows.shape[0]):
        for c in range(rows.shape[1]):
            if rows[q, c] >= 0:
                valid += 1
    return valid


@numba.njit(**_JIT)
def score_rows(
    blocks: np.ndarray, prefix_sq: np.ndarray, queries: np.ndarray, rows: np.ndarray, dim: int, out: np.ndarray
) -> np.float32:  # pragma: no cover - compiled
    """out[q, c] = cosine of queries[q] and row rows[q, c] over the first `dim` dims; -inf where rows < 0.

    blocks: (n_blocks, N, block); prefix_sq: (n_blocks, N) squared norms up to each
    block's end; queries: (nq, >= used * block) prefixes of any norm, zero past `dim`;
    rows: (nq, c) int64; out: (nq, c) float32.
    """
    return _score(blocks, False, prefix_sq, queries, rows, dim, out)


@numba.njit(**_JIT)
def best_rows(
    blocks: np.ndarray,
    prefix_sq: np.ndarray,
    queries: np.ndarray,
    rows: np.ndarray,
    dim: int,
    keep: int,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Rescore candidates as `score_rows` does and keep each query's best `keep`, best first
    (ties to the lower row). out_rows: (nq, keep) int64; out_scores: (nq, keep) float32.
    Returns the candidates rescored (rows >= 0)."""
    return _best(blocks, False, prefix_sq, queries, rows, dim, keep, out_rows, out_scores)


# --- rescoring from the row-major copy (stores/blocks.py, ROWS_FILE): the same loop ---------------


@numba.njit(**_JIT)
def score_rows_major(
    vectors: np.ndarray, prefix_sq: np.ndarray, queries: np.ndarray, rows: np.ndarray, dim: int, out: np.ndarray
) -> np.float32:  # pragma: no cover - compiled
    """score_rows over vectors (N, n_blocks, block), the rows in row order; same arguments otherwise."""
    return _score(vectors, True, prefix_sq, queries, rows, dim, out)


@numba.njit(**_JIT)
def best_rows_major(
    vectors: np.ndarray,
    prefix_sq: np.ndarray,
    queries: np.ndarray,
    rows: np.ndarray,
    dim: int,
    keep: int,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """best_rows over vectors (N, n_blocks, block) in row order; returns the candidates rescored."""
    return _best(vectors, True, prefix_sq, queries, rows, dim, keep, out_rows, out_scores)


# --- scans over row ranges: the cells a probed search reads (codecs/partition.py) --------------


@numba.njit(**_JIT)
def _worse(score_a: float, row_a: int, score_b: float, row_b: int) -> bool:  # pragma: no cover - compiled
    """Ranks a below b: a lower score, or the same score and a larger row (ties go to the lower row)."""
    return score_a < score_b or (score_a == score_b and row_a > row_b)


@numba.njit(**_JIT)
def _keep(scores: np.ndarray, rows: np.ndarray, size: int, score: float, row: int) -> int:  # pragma: no cover - compiled
    """Offer (score, row) to a min-heap of the best `len(scores)` (root: the worst kept, by `_worse`); the new size."""
    k = scores.shape[0]
    if size < k:
        i = size
        while i > 0:
            parent = (i - 1) // 2
            if not _worse(score, row, scores[parent], rows[parent]):
                break
            scores[i], rows[i] = scores[parent], rows[parent]
            i = parent
        scores[i], rows[i] = score, row
        return size + 1
    if not _worse(scores[0], rows[0], score, row):
        return size
    i = 0
    while True:
        child = 2 * i + 1
        if child >= k:
            break
        if child + 1 < k and _worse(scores[child + 1], rows[child + 1], scores[child], rows[child]):
            child += 1
        if not _worse(scores[child], rows[child], score, row):
            break
        scores[i], rows[i] = scores[child], rows[child]
        i = child
    scores[i], rows[i] = score, row
    return size


@numba.njit(**_JIT)
def _best_order(scores: np.ndarray, rows: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Positions of (scores, rows) best first: higher score, then the lower row (rows < 0 last)."""
    by_row = np.argsort(np.where(rows < 0, np.iinfo(np.int64).max, rows), kind="mergesort")
    by_score = np.argsort(-scores[by_row], kind="mergesort")
    return by_row[by_score]


@numba.njit(**_JIT)
def _best_first(
    scores: np.ndarray, rows: np.ndarray, size: int, out_rows: np.ndarray, out_scores: np.ndarray
) -> None:  # pragma: no cover - compiled
    """A heap's `size` entries into out_rows/out_scores best first (equal scores by lower row); -1 / -inf after."""
    order = _best_order(scores[:size], rows[:size])
    for i in range(size):
        out_rows[i] = rows[order[i]]
        out_scores[i] = scores[order[i]]
    for i in range(size, out_rows.shape[0]):
        out_rows[i] = -1
        out_scores[i] = -np.inf


# Pruned blocks: a row's cosine cannot exceed its partial dot product plus |q_rest| |x_rest|
# (Cauchy-Schwarz; the Panorama bound), and after a PCA rotation the first blocks hold most
# of the energy, so once the heap is full most rows fall below its worst score after a few
# blocks and their later blocks are never read. WordNet, exact, one query: 26% of the blocks
# read and 2.1x faster, top k identical. The bound is checked every PRUNE_EVERY blocks (every
# block for short prefixes, where a dim=64 scan has only one chance to stop early).
# Safe against float32 rounding, relative to the magnitudes: |x_rest|^2 = |x|^2 - |x_head|^2 may
# cancel to 0 (then the bound is the partial score alone and drops a row still rising into the top
# k), so REST_SLACK ulps of |x|^2 go under the root; REST_GROWTH covers float16 blocks (up to 2^-11
# longer than their float32 norms); the two dot products carry up to `dims` ulps each (cosine units).
# Demo set, 300 queries: 0.1% more bytes read than the absolute 1e-6 margin it replaces.
PRUNE_EVERY = 2
SHORT_PREFIX = 4  # blocks
ULP = np.float32(np.finfo(np.float32).eps)
REST_SLACK = np.float32(64) * ULP  # of |x|^2: the square root adds at most 2.8e-3 |x| to |x_rest|
REST_GROWTH = np.float32(1.0 + 2.0**-10)


@numba.njit(**_JIT)
def scan_ranges(
    blocks: np.ndarray,
    prefix_sq: np.ndarray,
    queries: np.ndarray,
    used: int,
    starts: np.ndarray,
    stops: np.ndarray,
    inv_norms: np.ndarray,
    dead: np.ndarray,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Best len(out_rows[q]) live rows by cosine over the used blocks, among rows starts[q, p] ..
    stops[q, p] - 1 of every range p; returns the blocks read (rows scored x used at most).

    blocks: (n_blocks, N, block); prefix_sq: (n_blocks, N) squared row norms up to each block's
    end; queries: (nq, >= used * block) any norm, zero past the prefix's end; inv_norms: (N,)
    over the prefix; dead: (N,) bool, or (0,) when every row is live; out_rows (nq, k) int64,
    out_scores (nq, k) float32, best first, -1 / -inf padded. A row is dropped before its
    later blocks once its bound falls below the worst of a full heap (see PRUNE_EVERY).
    """
    width = blocks.shape[2]
    k = out_rows.shape[1]
    masked = dead.shape[0] > 0
    read = 0
    heap_scores = np.empty(k, dtype=np.float32)
    heap_rows = np.empty(k, dtype=np.int64)
    query_rest = np.empty(used, dtype=np.float32)  # |q| over blocks b.. of the prefix
    every = 1 if used <= SHORT_PREFIX else PRUNE_EVERY
    margin = np.float32(2 * used * width) * ULP  # cosine units: two dot products' rounding
    for q in range(queries.shape[0]):
        rest = np.float32(0.0)
        for b in range(used - 1, -1, -1):
            for j in range(width):
                rest += queries[q, b * width + j] * queries[q, b * width + j]
            query_rest[b] = np.sqrt(rest)
        inv_query = np.float32(1.0) / max(query_rest[0], np.float32(1e-12))
        size = 0
        for p in range(starts.shape[1]):
            for r in range(starts[q, p], stops[q, p]):
                if masked and dead[r]:
                    continue
                scale = inv_norms[r] * inv_query
                row_sq = np.float32(1.0) / (inv_norms[r] * inv_norms[r])
                total = np.float32(0.0)
                pruned = False
                for b in range(used):
                    if size == k and b > 0 and b % every == 0:
                        rest_sq = max(row_sq - prefix_sq[b - 1, r], np.float32(0.0)) + REST_SLACK * row_sq
                        row_rest = np.sqrt(rest_sq) * REST_GROWTH
                        if (total + query_rest[b] * row_rest) * scale < heap_scores[0] - margin:
                            pruned = True
                            break
                    offset = b * width
                    for j in range(width):
                        total += blocks[b, r, j] * queries[q, offset + j]
                    read += 1
                if not pruned:
                    size = _keep(heap_scores, heap_rows, size, total * scale, r)
        _best_first(heap_scores, heap_rows, size, out_rows[q], out_scores[q])
    return read


@intrinsic
def _popcount(typingctx, value):  # pragma: no cover - compiled
    """The CPU's population count of a uint64 (LLVM ctpop)."""

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return value(value), codegen


@numba.njit(**_JIT)
def hamming_ranges(
    codes: np.ndarray,
    queries: np.ndarray,
    bits: int,
    starts: np.ndarray,
    stops: np.ndarray,
    dead: np.ndarray,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Nearest len(out_rows[q]) live codes by Hamming distance among the ranges' rows, scored
    1 - 2 distance / bits (best first, -1 / -inf padded); returns the codes compared.

    codes: (N, words) uint64 packed bits; queries: (nq, words) uint64; starts, stops: (nq, P);
    dead: (N,) bool or (0,).
    """
    words = codes.shape[1]
    k = out_rows.shape[1]
    masked = dead.shape[0] > 0
    scored = 0
    scale = np.float32(2.0 / bits)
    heap_scores = np.empty(k, dtype=np.float32)
    heap_rows = np.empty(k, dtype=np.int64)
    for q in range(queries.shape[0]):
        size = 0
        for p in range(starts.shape[1]):
            for r in range(starts[q, p], stops[q, p]):
                if masked and dead[r]:
                    continue
                distance = np.uint64(0)
                for w in range(words):
                    distance += _popcount(codes[r, w] ^ queries[q, w])
                size = _keep(heap_scores, heap_rows, size, np.float32(1.0) - scale * np.float32(distance), r)
            scored += stops[q, p] - starts[q, p]
        _best_first(heap_scores, heap_rows, size, out_rows[q], out_scores[q])
    return scored


# --- one query's small steps, each one compiled call instead of a few numpy calls ---------------
# Between the scans, a one-query search is a row of tiny numpy calls (compare, pack, pad; mask,
# count, gather, where): a few µs each in a tight loop, but 5-10 µs each between scans whose data
# pushed theirs out of cache (measured on the demo set: 44 µs for the merge of one query's hits).


@numba.njit(**_JIT)
def pack_bits(x: np.ndarray, thresholds: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """out[i] = bits x[i] > thresholds packed eight to a byte, first dim in the high bit (as
    np.packbits), zero past the last dim. x: (n, dim) float32; out: (n, code_bytes) uint8."""
    dim = x.shape[1]
    for i in range(x.shape[0]):
        for b in range(out.shape[1]):
            byte = 0
            for j in range(8):
                d = b * 8 + j
                if d < dim and x[i, d] > thresholds[d]:
                    byte |= 1 << (7 - j)
            out[i, b] = byte


@numba.njit(**_JIT)
def hits_of(
    rows: np.ndarray, scores: np.ndarray, ids: np.ndarray, out_ids: np.ndarray, out_scores: np.ndarray, found: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Best rows (nq, k) int64 and scores (nq, k) float32 -> out_ids (nq, k) int64 (ids[row], -1
    where the row is -1 or its score not finite), out_scores (nq, k) float32 (-inf there), found
    (nq,) int64 (zeros on entry). ids: (N,) int64, the version's ids by row. The caller allocates
    the outputs: an array made inside a compiled call costs more to hand back than to allocate."""
    for q in range(rows.shape[0]):
        for i in range(rows.shape[1]):
            r = rows[q, i]
            s = scores[q, i]
            if r >= 0 and np.isfinite(s):
                out_ids[q, i] = ids[r]
                out_scores[q, i] = s
                found[q] += 1
            else:
                out_ids[q, i] = -1
                out_scores[q, i] = -np.inf
