"""RaBitQ codes kept per partition cell (FAISS `IndexIVFRaBitQFastScan`).

A RaBitQ code is one bit a dim of the row's offset from its cell's centroid,
plus two corrective factors, so the distance estimate is unbiased with a
bounded error (Gao & Long, SIGMOD 2024) where plain sign bits are not: a
shorter shortlist reaches the same recall after rescoring. FAISS's fast-scan
kernel scores 32 codes at a time from lookup tables.

The index's lists are the version's own cells (its quantizer holds the
partitions' centroids and every row is added under its row number), so a probed
search hands FAISS the cells the executor already chose (`search_preassigned`):
one centroid search serves every stage. A version without partitions keeps all
rows in one list around the origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from vecdial.indexer.errors import CorruptIndex
from vecdial.indexer.stores.alive import AliveRows

INDEX_FILE = "rabitq.faiss"
BLOCK = 32  # codes a fast-scan step scores: FAISS's only supported block size for these codes


def empty_index(centroids: np.ndarray | None, dim: int, bits: int, sample: np.ndarray) -> faiss.IndexIVFRaBitQFastScan:
    """A trained index with no rows. centroids: (P, dim) unit cells or None (one cell at the
    origin); sample: (s, dim) unit rows the codes' factors are trained on."""
    cells = np.zeros((1, dim), dtype=np.float32) if centroids is None else centroids
    quantizer = faiss.IndexFlatL2(dim)  # unit centroids: nearest by L2 is nearest by cosine
    quantizer.add(np.ascontiguousarray(cells, dtype=np.float32))
    index = faiss.IndexIVFRaBitQFastScan(quantizer, dim, len(cells), faiss.METRIC_L2, BLOCK, True, bits)
    index.own_fields = True
    quantizer.this.disown()  # the index frees it
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


@dataclass
class RabitqStore:
    """index: every row's code under its row number, in the list of its cell."""

    index: faiss.IndexIVFRaBitQFastScan

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def code_bytes(self) -> int:
        return int(self.index.code_size)

    @property
    def cells(self) -> int:
        return int(self.index.nlist)

    def add(self, start: int, unit: np.ndarray) -> None:
        """Rows start.. as (b, dim) float32 unit vectors."""
        ids = np.arange(start, start + len(unit), dtype=np.int64)
        self.index.add_with_ids(np.ascontiguousarray(unit, dtype=np.float32), ids)

    def save(self, directory: Path) -> None:
        faiss.write_index(self.index, str(directory / INDEX_FILE))

    @classmethod
    def open(cls, directory: Path, count: int, dim: int) -> "RabitqStore":
        """The store of a version directory, checked against the manifest's count and dim."""
        path = directory / INDEX_FILE
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise CorruptIndex(f"{path}: not a readable RaBitQ index ({str(exc).splitlines()[-1]}); rebuild the index") from None
        if not isinstance(index, faiss.IndexIVFRaBitQFastScan) or index.ntotal != count or index.d != dim:
            raise CorruptIndex(f"{path}: holds {index.ntotal} codes of dim {index.d}, expected {count} of {dim}; rebuild the index")
        return cls(index)

    def search(self, unit: np.ndarray, keep: int, cells: np.ndarray, alive: AliveRows | None) -> tuple[np.ndarray, np.ndarray]:
        """The best `keep` rows of the listed cells by estimated cosine.

        unit: (nq, dim) float32 unit queries; cells: (nq, P) int64 cell numbers to read.
        -> rows (nq, keep) int64 (-1 pad), scores (nq, keep) float32 (-inf pad).
        """
        nq, probe = cells.shape
        x = np.ascontiguousarray(unit, dtype=np.float32)
        cells = np.ascontiguousarray(cells, dtype=np.int64)
        centroid_distances = np.zeros(cells.shape, dtype=np.float32)  # unused by RaBitQ's estimator
        distances = np.empty((nq, keep), dtype=np.float32)
        rows = np.empty((nq, keep), dtype=np.int64)
        params = faiss.IVFRaBitQSearchParameters()
        params.nprobe = probe
        if alive is not None:
            params.sel = alive.selector
        self.index.search_preassigned_c(
            nq, faiss.swig_ptr(x), keep, faiss.swig_ptr(cells), faiss.swig_ptr(centroid_distances),
            faiss.swig_ptr(distances), faiss.swig_ptr(rows), False, params,
        )
        scores = 1.0 - 0.5 * distances  # unit rows: |q - x|^2 = 2 - 2 cos
        scores[rows < 0] = -np.inf
        return rows, scores
