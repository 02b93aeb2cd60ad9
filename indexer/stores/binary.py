"""Hamming search over packed sign bits with FAISS.

The packed codes are small (dim / 8 bytes a vector) and are the only part of a
binary search that must sit in RAM; full vectors for rescoring stay memory-mapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from vecdial.indexer.errors import BudgetError
from vecdial.indexer.stores import kernels
from vecdial.indexer.stores.alive import AliveRows

CODES_FILE = "binary_codes.npy"
HNSW_FILE = "binary_hnsw.faiss"


def build_hnsw(codes: np.ndarray, m: int = 32, ef_construction: int = 64) -> faiss.IndexBinaryHNSW:
    """codes: (N, bytes) uint8 -> a binary HNSW graph, for sub-linear Hamming search."""
    index = faiss.IndexBinaryHNSW(codes.shape[1] * 8, m)
    index.hnsw.efConstruction = ef_construction
    index.add(np.ascontiguousarray(codes))
    return index


def binary_scores(distances: np.ndarray, rows: np.ndarray, bits: int) -> np.ndarray:
    """Hamming distances (nq, k) -> scores 1 - 2 distance / bits (nq, k) float32, -inf where rows < 0."""
    scores = distances.astype(np.float32)
    scores *= -2.0 / bits
    scores += 1.0
    scores[rows < 0] = -np.inf
    return scores


@dataclass
class BinaryStore:
    """index: a FAISS binary index holding every code; rows follow the store order."""

    index: faiss.IndexBinary
    code_bytes: int
    kind: str

    @classmethod
    def open(cls, directory: Path, kind: str = "flat") -> BinaryStore:
        codes = np.load(directory / CODES_FILE)
        if kind == "hnsw":
            return cls(faiss.read_index_binary(str(directory / HNSW_FILE)), int(codes.shape[1]), kind)
        return cls.from_codes(codes)

    @classmethod
    def from_codes(cls, codes: np.ndarray) -> BinaryStore:
        """A flat store over (N, bytes) uint8 codes held in RAM (copied into FAISS)."""
        index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
        index.add(np.ascontiguousarray(codes))
        return cls(index, int(codes.shape[1]), "flat")

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def search_ranges(
        self, codes: np.ndarray, k: int, starts: np.ndarray, stops: np.ndarray, bits: int, alive: AliveRows | None = None
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Nearest k live codes among rows starts[q, p] .. stops[q, p] - 1 (the probed cells).

        codes: (nq, bytes) uint8 queries. Returns rows (nq, k) int64 (-1 pad), scores
        1 - 2 Hamming / bits (nq, k) float32 (-inf pad), and the codes compared.
        """
        if self.kind != "flat":
            raise BudgetError("probe needs the flat binary index: this collection's binary codes are in a graph (binary_index=hnsw)")
        word = np.uint64 if self.code_bytes % 8 == 0 else np.uint32  # every fast width is whole 32-bit words
        codes_ptr = self.index.xb.data()  # type: ignore[attr-defined]  # faiss's stubs omit IndexBinaryFlat.xb
        stored = faiss.rev_swig_ptr(codes_ptr, self.size * self.code_bytes).view(word).reshape(self.size, -1)
        queries = np.ascontiguousarray(codes).view(word)
        rows = np.empty((len(codes), k), dtype=np.int64)
        scores = np.empty((len(codes), k), dtype=np.float32)
        dead = alive.dead if alive is not None else np.zeros(0, dtype=bool)
        compared = kernels.hamming_ranges(stored, queries, bits, starts, stops, dead, rows, scores)
        return rows, scores, int(compared)

    def search_one(self, code: np.ndarray, k: int, alive: AliveRows | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`search` for one query of a flat index, straight into FAISS's search_c: the numpy
        wrapper's checks and the search parameters cost more than a small scan.

        code: (1, bytes) uint8, C-contiguous. Returns rows (1, k') int64 and Hamming distances
        (1, k') int32, k' = min(k, size); the same FAISS call `search` makes.
        """
        k = min(k, self.size)
        distances = np.empty((1, k), dtype=np.int32)
        rows = np.empty((1, k), dtype=np.int64)
        self.index.search_c(  # type: ignore[attr-defined]  # faiss's stubs omit search_c
            1, faiss.swig_ptr(code), k, faiss.swig_ptr(distances), faiss.swig_ptr(rows), None if alive is None else alive.params
        )
        return rows, distances

    def search(
        self, codes: np.ndarray, k: int, alive: AliveRows | None = None, ef_search: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """codes: (nq, bytes) uint8 -> rows (nq, k) int64 (-1 padding), Hamming distances (nq, k) int32.

        alive: the rows that may be returned; FAISS skips the others inside the
        scan (or the graph walk), so k live rows come back whenever k exist.
        """
        params = None
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # faiss's stubs omit it
            params.efSearch = max(ef_search or 0, k)
        if alive is not None and params is not None:
            params.sel = alive.selector
        elif alive is not None:
            params = alive.params
        distances, rows = self.index.search(np.ascontiguousarray(codes), min(k, self.size), params=params)
        return np.asarray(rows, dtype=np.int64), distances  # FAISS labels are int64 already: no copy
