"""Matryoshka truncation: keep the first `dim` dims and renormalise."""

from __future__ import annotations

import numpy as np


def truncate(x: np.ndarray, dim: int) -> np.ndarray:
    """x: (n, D) -> (n, dim) float32 with unit-norm rows (zero rows stay zero)."""
    prefix = np.asarray(x[:, :dim], dtype=np.float32)
    norms = np.linalg.norm(prefix, axis=1, keepdims=True)
    return np.divide(prefix, norms, out=np.zeros_like(prefix), where=norms > 0)
