"""Coarse partitions: k-means cells that a version's rows are stored in, cell after cell.

A build learns `count` centroids on the codec sample (FAISS spherical k-means)
and stores every row in the cell of its nearest centroid, cells contiguous, so
a cell is one row range of every store (dense blocks at any dim, binary codes).
A search with `probe=P` reads only the row ranges of the P cells nearest its
query: one stored copy, and every mode sub-linear. Centroids live in the input
space: cosine is the same before and after the dense store's rotation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import faiss
import numpy as np

from vecdial.indexer.errors import BudgetError

# Below this many rows a scan is already cheap: no partitions unless asked for.
AUTO_MIN_ROWS = 1024
# Training points per centroid: FAISS warns below 39; more buys little for coarse cells.
POINTS_PER_CENTROID = 48
KMEANS_ITERATIONS = 12


def auto_count(n: int) -> int:
    """Cells for n rows when the settings leave it to us: 2 sqrt(n) (about 170 rows a cell at
    117k, 500 at 1M), none for small collections."""
    return 0 if n < AUTO_MIN_ROWS else int(round(2 * math.sqrt(n)))


@dataclass(frozen=True)
class Partitions:
    """centroids: (P, dim) float32 unit vectors; offsets: (P + 1,) int64, cell c holds rows
    offsets[c] .. offsets[c + 1] - 1 of every store."""

    centroids: np.ndarray
    offsets: np.ndarray

    @property
    def count(self) -> int:
        return int(self.centroids.shape[0])

    def cells_for(self, probe: float) -> int:
        """The number of cells a `probe` knob asks for: a count (>= 1) or a fraction (< 1)."""
        if probe < 1:
            return max(1, math.ceil(probe * self.count))
        if probe != int(probe):
            raise BudgetError(f"probe={probe}: give a whole number of partitions, or a fraction below 1")
        return min(int(probe), self.count)

    @cached_property
    def index(self) -> faiss.IndexFlatIP:
        return centroid_index(self.centroids)

    def nearest(self, unit: np.ndarray, cells: int) -> np.ndarray:
        """unit: (nq, dim) float32 unit queries -> (nq, cells) int64 cell numbers, nearest first."""
        return self.index.search(np.ascontiguousarray(unit), cells)[1]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"partition_centroids": self.centroids, "partition_offsets": self.offsets}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Partitions | None:
        if "partition_centroids" not in arrays:
            return None
        return cls(
            np.ascontiguousarray(arrays["partition_centroids"], dtype=np.float32), np.asarray(arrays["partition_offsets"], dtype=np.int64)
        )


def fit_centroids(sample: np.ndarray, count: int, seed: int) -> np.ndarray:
    """(count, dim) float32 unit centroids of spherical k-means on `sample` (s, dim) unit rows."""
    count = min(count, len(sample))
    rng = np.random.default_rng(seed)
    train = (
        sample
        if len(sample) <= count * POINTS_PER_CENTROID
        else sample[np.sort(rng.choice(len(sample), count * POINTS_PER_CENTROID, replace=False))]
    )
    kmeans = faiss.Kmeans(sample.shape[1], count, niter=KMEANS_ITERATIONS, spherical=True, seed=seed, verbose=False)
    kmeans.cp.min_points_per_centroid = 1  # small samples are fine: cells only need to be coherent
    kmeans.train(np.ascontiguousarray(train, dtype=np.float32))
    return np.ascontiguousarray(kmeans.centroids, dtype=np.float32)


def centroid_index(centroids: np.ndarray) -> faiss.IndexFlatIP:
    """A FAISS flat inner-product index over (P, dim) centroids: the nearest cell of a unit row."""
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(centroids)
    return index
