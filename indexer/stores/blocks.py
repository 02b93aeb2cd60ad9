"""Dense store in column blocks: any prefix of dims is served from one copy.

The (rotated, unit-norm) vectors are kept as `[n_blocks][N][block]`. A search at
`dim` reads only the first ceil(dim / block) blocks, contiguous on disk, so bytes
read follow the budget. Cumulative squared norms at each block boundary let a
prefix be renormalised without reading the dims it drops.

Rescoring reads scattered rows, where that layout costs one page per block per
candidate once the pages are not resident (12 at 384 dims). So a version also
keeps the same rows row after row (`ROWS_FILE`, (N, n_blocks, block), the same
values), mapped with MADV_RANDOM so a fault reads its page and not a readahead
window; when rescoring finds the pages cold it asks the kernel for every
candidate's pages at once (MADV_WILLNEED, served in parallel) before reading
them (cold: a slow rescore that took major faults). Versions written before it have no
such file and rescore from the blocks.
"""

from __future__ import annotations

import mmap
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from vecdial.indexer.stores import kernels
from vecdial.indexer.stores.alive import AliveRows
from vecdial.indexer.stores.topk import TopK

BLOCKS_FILE = "dense_blocks.npy"
NORMS_FILE = "dense_prefix_sq.npy"
ROWS_FILE = "dense_rows.npy"

# A rescore slower than this per candidate faulted its rows in from disk (a resident
# candidate takes well under a microsecond, a read from an SSD ~100 us): the next
# rescore asks for all its candidates' pages first. Any rescore faster than it means
# the rows are resident again, and prefetching stops.
COLD_NS_PER_ROW = 20_000
PAGE = mmap.PAGESIZE
RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)  # Linux: this thread's faults alone

# Queries scored together, and the size of the (queries x rows) score tile: small
# enough to stay in cache while each block adds its contribution.
QUERY_CHUNK = 128
TILE_ELEMENTS = 1 << 18
MIN_TILE = 2048


def split_blocks(x: np.ndarray, block: int) -> np.ndarray:
    """x: (n, D) -> (n_blocks, n, block), zero-padding the last block."""
    n, dim = x.shape
    n_blocks = -(-dim // block)
    padded = np.zeros((n, n_blocks * block), dtype=x.dtype)
    padded[:, :dim] = x
    return padded.reshape(n, n_blocks, block).transpose(1, 0, 2)


def prefix_sq_norms(x: np.ndarray, block: int) -> np.ndarray:
    """x: (n, D) -> (n_blocks, n) float32: squared norm of each row up to each block's end.

    Block-major, like the vectors, so one prefix's norms are one contiguous read.
    """
    blocks = split_blocks(np.asarray(x, dtype=np.float32), block)
    return np.cumsum((blocks**2).sum(axis=2), axis=0).astype(np.float32)


@dataclass
class BlockStore:
    """blocks: (n_blocks, N, block) float32|float16, usually a read-only memory map;
    prefix_sq: (n_blocks, N) float32; dim: the true dimension (<= n_blocks * block)."""

    blocks: np.ndarray
    prefix_sq: np.ndarray
    dim: int
    _inverse_norm_cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    rows: np.ndarray | None = field(default=None, repr=False)  # (N, n_blocks, block) float32, row order; see the module docstring
    _rows_map: RowsMap | None = field(default=None, repr=False)
    _cold: bool = field(default=False, repr=False)
    _faults: int = field(default=0, repr=False)  # this thread's major faults at the last slow rescore (approximate across threads)

    @property
    def size(self) -> int:
        return int(self.blocks.shape[1])

    @property
    def block(self) -> int:
        return int(self.blocks.shape[2])

    @classmethod
    def open(cls, directory: Path, dim: int, mmap: bool = True, rows: bool = False) -> BlockStore:
        """rows: the version has ROWS_FILE (its manifest says so); rescoring reads it."""
        mode: Literal["r"] | None = "r" if mmap else None
        # np.asarray drops the memmap subclass (same buffer, no copy): its per-index
        # Python overhead would dominate small gathers.
        store = cls(
            np.asarray(np.load(directory / BLOCKS_FILE, mmap_mode=mode)),
            np.asarray(np.load(directory / NORMS_FILE, mmap_mode=mode)),
            dim,
        )
        if rows:
            store._rows_map = RowsMap.open(directory / ROWS_FILE)
            store.rows = store._rows_map.array
        return store

    def bytes_per_vector(self, dim: int | None = None) -> int:
        """Bytes a scan at `dim` reads per stored vector (blocks touched + one norm)."""
        used = self._blocks_for(dim or self.dim)
        return used * self.block * self.blocks.dtype.itemsize + self.prefix_sq.dtype.itemsize

    def _blocks_for(self, dim: int) -> int:
        return -(-dim // self.block)

    def _prefix_norms(self, rows: np.ndarray | slice, dim: int, parts: list[np.ndarray]) -> np.ndarray:
        """Norms of rows' first `dim` dims; `parts` are the blocks already read for them."""
        full, rest = divmod(dim, self.block)
        sq = np.zeros(len(parts[0]), dtype=np.float32)
        if full:
            sq += self.prefix_sq[full - 1][rows]
        if rest:
            tail = parts[full][:, :rest].astype(np.float32)
            sq += np.einsum("ij,ij->i", tail, tail)
        return np.sqrt(sq)

    def _inverse_norms(self, dim: int, parts: list[np.ndarray]) -> np.ndarray:
        """1 / ||x[:dim]|| for every row, computed once per dim and kept (4 bytes a row)."""
        cached = self._inverse_norm_cache.get(dim)
        if cached is None:
            cached = (1.0 / np.maximum(self._prefix_norms(slice(None), dim, parts), 1e-12)).astype(np.float32)
            self._inverse_norm_cache[dim] = cached
        return cached

    def scan(self, queries: np.ndarray, dim: int, k: int, alive: AliveRows | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """Best k live rows by cosine over the first `dim` dims.

        queries: (nq, >=dim) float32, rotated like the store; alive: the rows that
        may be returned (None: all).
        Returns rows (nq, k) int64 and scores (nq, k) float32 (-1 / -inf pad when
        fewer than k rows are live), and the bytes read per query.
        """
        if len(queries) == 1 and self.blocks.dtype == np.float32:  # one query: one compiled pass, top k kept inside
            every_row = np.zeros((1, 1), dtype=np.int64), np.full((1, 1), self.size, dtype=np.int64)
            return self.scan_ranges(queries, dim, min(k, self.size), *every_row, alive)
        used = self._blocks_for(dim)
        parts = [self.blocks[b] for b in range(used)]
        inv_norms = self._inverse_norms(dim, parts)
        dead = None if alive is None else alive.dead
        q = _unit_prefix(queries, dim)
        rows_out, scores_out = [], []
        for start in range(0, len(q), QUERY_CHUNK):
            qc = q[start : start + QUERY_CHUNK]
            heap = TopK(len(qc), min(k, self.size))
            # Tiles of rows keep the (queries x tile) accumulator in cache while
            # the blocks' contributions are summed into it.
            tile = max(MIN_TILE, TILE_ELEMENTS // len(qc))
            for first in range(0, self.size, tile):
                last = min(first + tile, self.size)
                scores = _prefix_dot([part[first:last] for part in parts], qc, dim, self.block)
                scores *= inv_norms[first:last]
                if dead is not None:
                    scores[:, dead[first:last]] = -np.inf
                heap.add(scores, first)
            rows, best = heap.result()
            rows_out.append(rows)
            scores_out.append(best)
        return np.vstack(rows_out), np.vstack(scores_out), self.size * self.bytes_per_vector(dim)

    def scan_ranges(
        self, queries: np.ndarray, dim: int, k: int, starts: np.ndarray, stops: np.ndarray, alive: AliveRows | None = None
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """`scan` over rows starts[q, p] .. stops[q, p] - 1 of each query only (the probed cells).

        starts, stops: (nq, P) int64. Returns rows (nq, k), scores (nq, k) and the bytes read per
        query (rows whose bound fell below the running top k stop early: kernels.PRUNE_EVERY).
        """
        used = self._blocks_for(dim)
        inv_norms = self._inverse_norms(dim, [self.blocks[b] for b in range(used)])
        padded = self._padded(queries, dim, used)
        dead = alive.dead if alive is not None else np.zeros(0, dtype=bool)
        rows = np.empty((len(queries), k), dtype=np.int64)
        scores = np.empty((len(queries), k), dtype=np.float32)
        if self.blocks.dtype == np.float32:
            read = kernels.scan_ranges(self.blocks, self.prefix_sq, padded, used, starts, stops, inv_norms, dead, rows, scores)
            return rows, scores, self._bytes_read(read, starts, stops)
        # float16 blocks: the compiled loops read float32, so each query's probed rows (not the
        # whole store) are copied out as float32 first.
        read = 0
        for q in range(len(queries)):
            spans = [np.arange(a, b) for a, b in zip(starts[q], stops[q])]
            picked = np.sort(np.concatenate(spans)) if spans else np.zeros(0, np.int64)  # row order: ties to the lower row
            block_rows = np.ascontiguousarray(self.blocks[:used][:, picked, :], dtype=np.float32)
            span = np.array([[0]], dtype=np.int64), np.array([[len(picked)]], dtype=np.int64)
            prefix_sq = np.ascontiguousarray(self.prefix_sq[:used][:, picked])
            read += kernels.scan_ranges(
                block_rows,
                prefix_sq,
                padded[q : q + 1],
                used,
                *span,
                inv_norms[picked],
                dead[picked] if dead.size else dead,
                rows[q : q + 1],
                scores[q : q + 1],
            )
            rows[q] = np.where(rows[q] >= 0, picked[np.maximum(rows[q], 0)], -1)
        return rows, scores, self._bytes_read(read, starts, stops)

    def _bytes_read(self, blocks_read: int, starts: np.ndarray, stops: np.ndarray) -> int:
        """Per query: the blocks a pruned scan read, plus one norm per row it looked at."""
        rows = int((stops - starts).sum())
        return (blocks_read * self.block * self.blocks.dtype.itemsize + rows * self.prefix_sq.dtype.itemsize) // max(len(starts), 1)

    def _padded(self, queries: np.ndarray, dim: int, used: int) -> np.ndarray:
        """(nq, used * block): query prefixes zero-padded to whole blocks, so the dims past
        `dim` in a partly used block add nothing. Queries already that shape are used as they are."""
        width = used * self.block
        if dim == width == queries.shape[1] and queries.dtype == np.float32 and queries.flags.c_contiguous:
            return queries
        padded = np.zeros((len(queries), used * self.block), dtype=np.float32)
        padded[:, :dim] = queries[:, :dim]
        return padded

    def rescore(self, queries: np.ndarray, rows: np.ndarray, dim: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        """`best_rows`, and the candidates it rescored (rows >= 0), counted in the same compiled
        call when the row-major copy is there."""
        if self.rows is None or self.blocks.dtype != np.float32:
            return (*self.best_rows(queries, rows, dim, keep), int(np.count_nonzero(rows >= 0)))
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        out_rows = np.empty((len(rows), keep), dtype=np.int64)
        out_scores = np.empty((len(rows), keep), dtype=np.float32)
        used = self._blocks_for(dim)
        started = self._before_rows(rows, used)
        rescored = kernels.best_rows_major(
            self.rows, self.prefix_sq, self._padded(queries, dim, used), rows, dim, keep, out_rows, out_scores
        )
        self._after_rows(started, rows)
        return out_rows, out_scores, rescored

    def best_rows(self, queries: np.ndarray, rows: np.ndarray, dim: int, keep: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidates rows (nq, c) (-1 pad) rescored over the first `dim` dims; each query's best
        `keep` <= c, best first (ties to the lower row) -> rows (nq, keep) int64, scores float32."""
        if self.blocks.dtype != np.float32:
            scores = self.score_rows(queries, rows, dim)
            order = np.lexsort((np.where(rows < 0, np.iinfo(np.int64).max, rows), -scores))[:, :keep]
            return np.take_along_axis(rows, order, axis=1), np.take_along_axis(scores, order, axis=1)
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        out_rows = np.empty((len(rows), keep), dtype=np.int64)
        out_scores = np.empty((len(rows), keep), dtype=np.float32)
        used = self._blocks_for(dim)
        padded = self._padded(queries, dim, used)
        if self.rows is None:
            kernels.best_rows(self.blocks, self.prefix_sq, padded, rows, dim, keep, out_rows, out_scores)
            return out_rows, out_scores
        started = self._before_rows(rows, used)
        kernels.best_rows_major(self.rows, self.prefix_sq, padded, rows, dim, keep, out_rows, out_scores)
        self._after_rows(started, rows)
        return out_rows, out_scores

    def _before_rows(self, rows: np.ndarray, used: int) -> int:
        """Ask for the candidates' pages at once if the last rescore found them cold; the start time."""
        started = time.perf_counter_ns()
        if self._cold and self._rows_map is not None:
            self._rows_map.prefetch(rows, used * self.block * 4)
        return started

    def _after_rows(self, started: int, rows: np.ndarray) -> None:
        """A fast rescore means resident rows: stop prefetching. A slow one turns prefetching on
        only if this thread took major faults since the last slow one (preemption on a busy
        machine is slow too, and reads nothing); a slow prefetched one keeps it on."""
        if time.perf_counter_ns() - started <= COLD_NS_PER_ROW * max(rows.size, 1):
            self._cold = False
        elif not self._cold:
            faults = resource.getrusage(RUSAGE_THREAD).ru_majflt
            self._cold, self._faults = faults > self._faults, faults

    def score_rows(self, queries: np.ndarray, rows: np.ndarray, dim: int) -> np.ndarray:
        """Cosine over the first `dim` dims for given candidate rows.

        queries: (nq, >=dim); rows: (nq, c) int64, -1 for padding.
        Returns (nq, c) float32 with -inf at padding.
        """
        used = self._blocks_for(dim)
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if self.blocks.dtype == np.float32:  # the kernel divides by each query's prefix norm
            scores = np.empty(rows.shape, dtype=np.float32)
            padded = self._padded(queries, dim, used)
            if self.rows is None:
                kernels.score_rows(self.blocks, self.prefix_sq, padded, rows, dim, scores)
            else:
                started = self._before_rows(rows, used)
                kernels.score_rows_major(self.rows, self.prefix_sq, padded, rows, dim, scores)
                self._after_rows(started, rows)
            return scores
        padded = self._padded(_unit_prefix(queries, dim), dim, used)
        nq, c = rows.shape
        valid = rows >= 0
        picked = np.where(valid, rows, 0).reshape(-1)
        # np.take gathers all touched blocks in one call (fancy indexing is ~4x slower).
        gathered = np.take(self.blocks[:used], picked, axis=1).reshape(used, nq, c, self.block).astype(np.float32)
        # (nq, used, c, block) @ (nq, used, block, 1), summed over blocks -> (nq, c)
        dots = np.matmul(gathered.transpose(1, 0, 2, 3), padded.reshape(nq, used, self.block, 1)).sum(axis=1)[:, :, 0]
        full, rest = divmod(dim, self.block)
        sq = self.prefix_sq[full - 1].take(picked).reshape(nq, c) if full else np.zeros((nq, c), dtype=np.float32)
        if rest:
            tail = gathered[full, :, :, :rest]
            sq = sq + np.einsum("qcj,qcj->qc", tail, tail)
        scores = dots / np.maximum(np.sqrt(sq), 1e-12)
        scores[~valid] = -np.inf
        return scores.astype(np.float32, copy=False)


def row_major(blocks: np.ndarray) -> np.ndarray:
    """(n_blocks, n, block) -> (n, n_blocks, block): the same values, row after row (ROWS_FILE)."""
    return np.ascontiguousarray(blocks.transpose(1, 0, 2))


class RowsMap:
    """ROWS_FILE mapped read-only with MADV_RANDOM: a page fault reads its own page, not the
    readahead window (32 pages by default) a candidate's 1.5 KB would otherwise cost.

    array: (N, n_blocks, block) float32 over the mapping."""

    def __init__(self, mapping: mmap.mmap, array: np.ndarray, offset: int, row_bytes: int):
        self.mapping, self.array, self.offset, self.row_bytes = mapping, array, offset, row_bytes

    @classmethod
    def open(cls, path: Path) -> RowsMap:
        with open(path, "rb") as handle:
            major, _ = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(handle)
            offset = handle.tell()
            if fortran or dtype != np.float32 or len(shape) != 3:
                raise ValueError(
                    f"{path.name} holds {dtype} {shape}{' in Fortran order' if fortran else ''}, expected float32 (N, n_blocks, block)"
                )
            mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        if hasattr(mmap, "MADV_RANDOM"):
            mapping.madvise(mmap.MADV_RANDOM)
        array = np.frombuffer(mapping, dtype=np.float32, count=int(np.prod(shape)), offset=offset).reshape(shape)
        return cls(mapping, array, offset, int(shape[1] * shape[2] * 4))

    def prefetch(self, rows: np.ndarray, used_bytes: int) -> None:
        """MADV_WILLNEED on the pages holding each row's first `used_bytes`: the reads are
        queued together and served in parallel, then the rescoring loop finds them resident.
        rows: any shape of int64, -1 ignored."""
        if not hasattr(mmap, "MADV_WILLNEED"):
            return
        picked = np.unique(rows[rows >= 0])
        starts = self.offset + picked * self.row_bytes
        first = starts // PAGE * PAGE
        lengths = starts + used_bytes - first
        for start, length in zip(first.tolist(), lengths.tolist()):
            self.mapping.madvise(mmap.MADV_WILLNEED, start, length)


def _unit_prefix(queries: np.ndarray, dim: int) -> np.ndarray:
    q = np.ascontiguousarray(queries[:, :dim], dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", q, q))[:, None]
    return q / np.maximum(norms, 1e-12)


def _prefix_dot(parts: list[np.ndarray], q: np.ndarray, dim: int, block: int) -> np.ndarray:
    """(nq, N) inner products of q's prefix with each stored row's prefix, block by block."""
    scores: np.ndarray | None = None
    for b, part in enumerate(parts):
        width = min(block, dim - b * block)
        qb = q[:, b * block : b * block + width]
        xb = part[:, :width] if width < block else part
        if xb.dtype != np.float32:
            xb = xb.astype(np.float32)
        contribution = qb @ xb.T
        scores = contribution if scores is None else scores + contribution
    if scores is None:
        raise ValueError("no blocks to score")
    return scores
