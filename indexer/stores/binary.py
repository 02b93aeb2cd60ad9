"""Hamming search over packed sign bits with FAISS.

The packed codes are small (dim / 8 bytes a vector) and are the only part of a
binary search that must sit in RAM; full vectors for rescoring stay memory-mapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

CODES_FILE = "binary_codes.npy"
HNSW_FILE = "binary_hnsw.faiss"


def build_hnsw(codes: np.ndarray, m: int = 32, ef_construction: int = 64) -> faiss.IndexBinaryHNSW:
    """codes: (N, bytes) uint8 -> a binary HNSW graph, for sub-linear Hamming search."""
    index = faiss.IndexBinaryHNSW(codes.shape[1] * 8, m)
    index.hnsw.efConstruction = ef_construction
    index.add(np.ascontiguousarray(codes))
    return index


@dataclass
class BinaryStore:
    """index: a FAISS binary index holding every code; rows follow the store order."""

    index: faiss.IndexBinary
    code_bytes: int
    kind: str

    @classmethod
    def open(cls, directory: Path, kind: str = "flat") -> "BinaryStore":
        codes = np.load(directory / CODES_FILE)
        if kind == "hnsw":
            index = faiss.read_index_binary(str(directory / HNSW_FILE))
        else:
            index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
            index.add(np.ascontiguousarray(codes))
        return cls(index, int(codes.shape[1]), kind)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def search(self, codes: np.ndarray, k: int, ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """codes: (nq, bytes) uint8 -> rows (nq, k) int64 (-1 padding), Hamming distances (nq, k) int32."""
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = max(ef_search or 0, k)
        distances, rows = self.index.search(np.ascontiguousarray(codes), min(k, self.size))
        return rows.astype(np.int64), distances
