"""RaBitQ codes of every row in stored order (FAISS `IndexRaBitQFastScan`).

A RaBitQ code is one bit a dim of the row's offset from the data's centre plus
two corrective factors (56 bytes at 384 dims), so the distance estimate is
unbiased with a bounded error (Gao & Long, SIGMOD 2024) where plain sign bits
are not: a shorter shortlist reaches the same recall after rescoring. FAISS's
fast-scan kernel scores 32 codes at a time from one lookup table per query.

The codes are one flat list for budgets that read every row. FAISS's per-cell variant
codes each row against its own cell's centroid, so every probed cell costs a new
lookup table; on WordNet (686 cells) a scan of every cell that way ran 4x slower than
this flat scan (measured, bench/peers_bench.py). A partitioned version keeps that
variant too (`CellsStore`, below), for `probe`: it pays while a query reads few cells.
The flat index takes no row selector, so with masked rows (deletions, filters) it
fetches a longer list and drops them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from vecdial.indexer.errors import CorruptIndex
from vecdial.indexer.stores.alive import AliveRows

INDEX_FILE = "rabitq.faiss"
TYPE_TAG = b"Irfn"  # FAISS's tag for IndexRaBitQFastScan, then int32 dim and int64 rows
HEADER_BYTES = 16
FACTOR_BYTES = 8  # two float32 corrective factors a code
# With masked rows, the first fetch is keep / (live share) x WIDEN + WIDEN_ROWS rows: enough
# for a random mask almost always, so the doubling retry is rare.
WIDEN = 1.5
WIDEN_ROWS = 16


def check_header(directory: Path, count: int, dim: int) -> int:
    """Check the index file's header (FAISS's type tag, dim, rows) and size against the
    manifest without reading the codes -> bytes a code takes. CorruptIndex names the file."""
    path = directory / INDEX_FILE
    with open(path, "rb") as handle:
        head = handle.read(HEADER_BYTES)
    tag, found_dim, found_rows = head[:4], np.frombuffer(head[4:8], "<i4"), np.frombuffer(head[8:16], "<i8")
    if len(head) < HEADER_BYTES or tag != TYPE_TAG or int(found_dim[0]) != dim or int(found_rows[0]) != count:
        raise CorruptIndex(
            f"{path}: not an IndexRaBitQFastScan of {count} codes of dim {dim} (header {head[:16].hex()}); rebuild the index"
        )
    code_bytes = dim // 8 + (1 if dim % 8 else 0) + FACTOR_BYTES
    if path.stat().st_size < count * code_bytes:
        raise CorruptIndex(f"{path}: {path.stat().st_size} bytes cannot hold {count} codes of {code_bytes} bytes; rebuild the index")
    return code_bytes


def empty_index(dim: int, sample: np.ndarray) -> faiss.IndexRaBitQFastScan:
    """A trained index with no rows; sample: (s, dim) unit rows its centre is fitted on."""
    index = faiss.IndexRaBitQFastScan(dim, faiss.METRIC_L2)  # unit rows: L2 order is cosine order
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


@dataclass
class RabitqStore:
    """index: every row's code, row r at position r."""

    index: faiss.IndexRaBitQFastScan

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def code_bytes(self) -> int:
        return int(self.index.code_size)  # type: ignore[attr-defined]  # faiss's stubs omit IndexFastScan.code_size

    def add(self, start: int, unit: np.ndarray) -> None:
        """Rows start.., as (b, dim) float32 unit vectors; rows come in order (row r at position r)."""
        if start != self.size:
            raise ValueError(f"RaBitQ rows are added in order: got rows from {start}, expected {self.size}")
        self.index.add(np.ascontiguousarray(unit, dtype=np.float32))

    def save(self, directory: Path) -> None:
        faiss.write_index(self.index, str(directory / INDEX_FILE))

    @classmethod
    def open(cls, directory: Path, count: int, dim: int) -> RabitqStore:
        """The store of a version directory (check_header first: this reads every code)."""
        path = directory / INDEX_FILE
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise CorruptIndex(f"{path}: not a readable RaBitQ index ({str(exc).splitlines()[-1]}); rebuild the index") from None
        if not isinstance(index, faiss.IndexRaBitQFastScan) or index.ntotal != count or index.d != dim:
            raise CorruptIndex(
                f"{path}: a {type(index).__name__} of {index.ntotal} codes of dim {index.d}, expected an IndexRaBitQFastScan of {count} of {dim}; rebuild the index"
            )
        return cls(index)

    def search(self, unit: np.ndarray, keep: int, alive: AliveRows | None) -> tuple[np.ndarray, np.ndarray]:
        """The best `keep` live rows by estimated cosine.

        unit: (nq, dim) float32 unit queries -> rows (nq, keep) int64 (-1 pad), scores
        (nq, keep) float32 (-inf pad). The index takes no row selector, so with masked rows
        (deletions, filters) it fetches keep / live share (and more, doubling, until every
        query has `keep` live rows or every row was fetched) and drops the masked ones.
        """
        x = np.ascontiguousarray(unit, dtype=np.float32)
        live = self.size if alive is None else alive.count
        wide = min(self.size, keep if live == self.size else math.ceil(keep * self.size / max(live, 1) * WIDEN) + WIDEN_ROWS)
        while True:
            distances, rows = self.index.search(x, wide)
            scores = 1.0 - 0.5 * distances  # unit rows: |q - x|^2 = 2 - 2 cos
            valid = rows >= 0
            if alive is not None and live < self.size:
                valid &= ~alive.dead[np.maximum(rows, 0)]
            if wide >= self.size or valid.sum(axis=1).min() >= min(keep, live):
                break
            wide = min(self.size, 2 * wide)
        scores[~valid] = -np.inf
        first = np.argsort(~valid, axis=1, kind="stable")[:, :keep]  # live rows first, order kept
        rows, scores = np.take_along_axis(rows, first, axis=1), np.take_along_axis(scores, first, axis=1)
        rows[~np.isfinite(scores)] = -1
        if rows.shape[1] < keep:
            rows = np.pad(rows, ((0, 0), (0, keep - rows.shape[1])), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, keep - scores.shape[1])), constant_values=-np.inf)
        return rows, scores


# --- codes per cell: `rabitq:...,probe=P` --------------------------------------------------------

CELLS_FILE = "rabitq_cells.faiss"
# Per-cell tables pay while a query reads at most this share of the cells; above it the flat scan
# of every code is as fast and finds a superset. Measured one query at a time, 117k rows (the demo
# corpus grown, bench/peers_bench.py --dataset demo-117k) in 684 cells, shortlist of 50, per-cell
# fast-scan against the flat scan: 7.7x at 1% of the cells, 3.9x at 5%, 2.0x at 10%, 1.3x at 20%,
# 1.0x at 30%, 0.5x at 50%.
CELLS_PAY_SHARE = 0.25


class CellsBuilder:
    """RaBitQ codes of every row against its own cell's centroid, in FAISS's IVF fast-scan index
    whose lists are the version's cells (row r in list cell(r), id r).

    centroids: (P, dim) the cells' unit centroids; sample: (s, dim) unit rows the codes are fitted on.
    """

    def __init__(self, centroids: np.ndarray, sample: np.ndarray):
        dim = centroids.shape[1]
        quantizer = faiss.IndexFlatL2(dim)
        quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
        self.index = faiss.IndexIVFRaBitQFastScan(quantizer, dim, len(centroids), faiss.METRIC_L2)
        self.index.own_fields = True
        quantizer.this.disown()  # type: ignore[attr-defined]  # faiss's stubs omit SWIG's `this`
        self.index.train(np.ascontiguousarray(sample, dtype=np.float32))  # the quantizer is full: only the codes are fitted

    def add(self, start: int, unit: np.ndarray) -> None:
        """Rows start.. as (b, dim) float32 unit vectors. The index puts each in the list of its
        nearest centroid by L2, which for unit centroids is the cell it was stored in (the fast-scan
        lists are packed by add_with_ids; add_core with given lists would not pack them)."""
        rows = np.arange(start, start + len(unit), dtype=np.int64)
        self.index.add_with_ids(np.ascontiguousarray(unit, dtype=np.float32), rows)

    def finish(self, directory: Path) -> None:
        faiss.write_index(self.index, str(directory / CELLS_FILE))


@dataclass
class CellsStore:
    """index: every row's code in its cell's list; centroids: (P, dim) float32."""

    index: faiss.IndexIVFRaBitQFastScan
    centroids: np.ndarray

    @classmethod
    def open(cls, directory: Path, count: int, dim: int, cells: int) -> CellsStore:
        path = directory / CELLS_FILE
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise CorruptIndex(f"{path}: not a readable RaBitQ cell index ({str(exc).splitlines()[-1]}); rebuild the index") from None
        if not isinstance(index, faiss.IndexIVFRaBitQFastScan) or index.ntotal != count or index.d != dim or index.nlist != cells:
            raise CorruptIndex(
                f"{path}: a {type(index).__name__} of {index.ntotal} codes in {getattr(index, 'nlist', 0)} lists, expected an IndexIVFRaBitQFastScan of {count} in {cells}; rebuild the index"
            )
        quantizer = faiss.downcast_index(index.quantizer)
        return cls(index, quantizer.reconstruct_n(0, cells))

    def search(self, unit: np.ndarray, keep: int, cells: np.ndarray, alive: AliveRows | None) -> tuple[np.ndarray, np.ndarray]:
        """The best `keep` live rows of each query's cells by estimated cosine.

        unit: (nq, dim) float32 unit queries; cells: (nq, P) int64 cells to read (-1: none) ->
        rows (nq, keep) int64 (-1 pad), scores (nq, keep) float32 (-inf pad).
        """
        x = np.ascontiguousarray(unit, dtype=np.float32)
        nq, probes = cells.shape
        picked = self.centroids[np.maximum(cells, 0)]  # (nq, P, dim)
        centre = np.ascontiguousarray(((x[:, None, :] - picked) ** 2).sum(axis=2), dtype=np.float32)
        params = faiss.SearchParametersIVF()
        params.nprobe = probes
        if alive is not None and alive.count < alive.dead.size:
            params.sel = alive.selector
        distances = np.empty((nq, keep), dtype=np.float32)
        rows = np.empty((nq, keep), dtype=np.int64)
        lists = np.ascontiguousarray(cells, dtype=np.int64)
        self.index.search_preassigned_c(  # type: ignore[attr-defined]  # faiss's stubs omit search_preassigned_c
            nq,
            faiss.swig_ptr(x),
            keep,
            faiss.swig_ptr(lists),
            faiss.swig_ptr(centre),
            faiss.swig_ptr(distances),
            faiss.swig_ptr(rows),
            False,
            params,
        )
        scores = 1.0 - 0.5 * distances  # unit rows: |q - x|^2 = 2 - 2 cos
        scores[rows < 0] = -np.inf
        return rows, scores
