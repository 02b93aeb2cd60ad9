"""How training data is cut: the train/validation split and the stream of pair batches.

Both draw from the trainer's one numpy generator, in a fixed order, which is
what makes a run reproducible from its seed; keeping the draws here makes
that order visible in one place.
"""

from __future__ import annotations

import numpy as np
import torch

from vecdial.models.sparse_config import TrainConfig


def split_train_val(n: int, cfg: TrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) of n, each sorted; validation is ``val_fraction``
    of n, at least 1 and at most ``max_val`` rows."""
    perm = rng.permutation(n)
    n_val = min(cfg.max_val, max(1, int(round(n * cfg.val_fraction))))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class PairSampler:
    """Batches of aligned (query, document) rows, each pass over the pairs in a fresh order.

    A batch never wraps around: when fewer than ``m`` pairs are left in the
    current order, a new permutation starts.
    """

    def __init__(self, pairs: tuple[torch.Tensor, torch.Tensor], rng: np.random.Generator) -> None:
        self.pairs = pairs
        self.rng = rng
        self.order = np.empty(0, dtype=np.int64)
        self.pos = 0

    def __len__(self) -> int:
        return len(self.pairs[0])

    def next(self, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pos + m > len(self.order):
            self.order = self.rng.permutation(len(self))
            self.pos = 0
        sel = torch.from_numpy(self.order[self.pos : self.pos + m])
        self.pos += m
        return self.pairs[0][sel], self.pairs[1][sel]
