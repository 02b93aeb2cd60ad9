"""Rotation learned at build time: PCA without centring, so inner products survive.

MiniLM and most models are not Matryoshka-trained: their first dims carry no more
information than the last. Rotating onto the principal axes of the corpus puts the
variance first, so a prefix of the rotated vector is a good low-dim summary. The
rotation is orthonormal, so at full dim every score is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Rotation:
    """matrix: (dim, dim) float32, orthonormal; columns are axes by falling variance."""

    matrix: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[0])

    @cached_property
    def identity(self) -> bool:
        return bool(np.array_equal(self.matrix, np.eye(self.dim, dtype=self.matrix.dtype)))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """x: (n, dim) float32 -> (n, dim) float32 in the rotated basis (plain truncation: x itself)."""
        if self.identity:
            return np.ascontiguousarray(x, dtype=np.float32)
        return np.ascontiguousarray(x @ self.matrix, dtype=np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"rotation": self.matrix}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Rotation:
        return cls(np.asarray(arrays["rotation"], dtype=np.float32))


def fit_pca_rotation(sample: np.ndarray) -> Rotation:
    """Principal axes of sample (n, dim), sorted by explained variance, descending.

    Signs are fixed (largest-magnitude entry of each axis positive) so that the
    same data always gives the same rotation.
    """
    x = np.asarray(sample, dtype=np.float64)
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred / max(len(x) - 1, 1)
    eigvals, eigvecs = np.linalg.eigh(cov)
    order = np.argsort(eigvals)[::-1]
    axes = eigvecs[:, order]
    pivots = np.abs(axes).argmax(axis=0)
    axes *= np.sign(axes[pivots, np.arange(axes.shape[1])])
    return Rotation(axes.astype(np.float32))


def identity_rotation(dim: int) -> Rotation:
    return Rotation(np.eye(dim, dtype=np.float32))
