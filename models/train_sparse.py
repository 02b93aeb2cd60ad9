"""CPU training loop for the CSR sparse autoencoder.

One call, :func:`train_sparse_autoencoder`: split off a validation set, run
epochs of Adam steps on the objective of :mod:`~vecdial.models.sparse_objective`
(learning-rate schedule, dead-latent bookkeeping, decoder renormalisation),
validate after each epoch, keep the best model and stop on convergence, the
epoch cap or the time limit.

The pieces live next door: the knobs and the report in ``sparse_config``, the
loss terms in ``sparse_objective``, the data split and pair batches in
``sparse_batches``, the measures in ``sparse_metrics``, thread control in
``torch_threads``. The names callers use are importable from here too.

Training is deterministic for a given seed and thread count. The global RNG
state and the torch thread count are restored on exit.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict

import numpy as np
import torch

from vecdial.models.encoder import progress_bar
from vecdial.models.sparse_autoencoder import SparseAutoencoder
from vecdial.models.sparse_batches import PairSampler, split_train_val
from vecdial.models.sparse_config import TrainConfig, TrainReport
from vecdial.models.sparse_metrics import evaluate, reconstruction_nmse
from vecdial.models.sparse_objective import SparseObjective, sparse_gram
from vecdial.models.torch_threads import torch_threads

__all__ = [
    "TrainConfig",
    "TrainReport",
    "reconstruction_nmse",
    "sparse_gram",
    "train_sparse_autoencoder",
]


def train_sparse_autoencoder(
    x: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
    config: TrainConfig = TrainConfig(),
    show_progress: bool = True,
    initial: SparseAutoencoder | None = None,
) -> tuple[SparseAutoencoder, TrainReport]:
    """Fit a CSR sparse autoencoder to embeddings.

    x: (n, dim) float32, unit-norm rows (the corpus the codes will index).
    pairs: optional aligned (queries (m, dim), documents (m, dim)) float32; when
        given, the contrastive term is InfoNCE on their codes and the queries
        are reconstructed too; otherwise it is in-batch neighbour distillation.
    initial: optional model to continue from (e.g. the previous version's, on
        reindex); it is copied, not modified. Its dim must match x; its hidden
        and k override ``hidden_mult`` and ``k``.
    Runs on ``config.threads`` torch threads (None: ``OMP_NUM_THREADS`` if set,
    else torch's current count); the caller's count is restored on return.
    Returns the model with the best validation loss (eval mode) and a report.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 4:
        raise ValueError(f"x must be (n >= 4, dim) float32, got shape {x.shape}")
    if pairs is not None:
        q, d = (np.ascontiguousarray(a, dtype=np.float32) for a in pairs)
        if q.shape != d.shape or q.ndim != 2 or q.shape[1] != x.shape[1] or len(q) < 4:
            raise ValueError(f"pairs must be two aligned (m >= 4, {x.shape[1]}) arrays, got {q.shape} and {d.shape}")
        pairs = (q, d)

    # The CPU kernels used here (matmul, topk, embedding_bag) are deterministic
    # for a fixed thread count; torch.use_deterministic_algorithms would only
    # add a multi-second import of torch._inductor, so it is not switched on.
    with torch_threads(config.threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return _Trainer(x, pairs, config, show_progress, initial).run()


class _Trainer:
    def __init__(self, x, pairs, cfg: TrainConfig, show_progress: bool, initial=None) -> None:
        self.cfg = cfg
        self.show_progress = show_progress
        self.rng = np.random.default_rng(cfg.seed)
        n, dim = x.shape
        train_idx, val_idx = split_train_val(n, cfg, self.rng)
        self.x_train = torch.from_numpy(x[train_idx])
        self.x_val = torch.from_numpy(x[val_idx])
        self.pair_sampler = self.pairs_val = None
        if pairs is not None:
            p_train, p_val = split_train_val(len(pairs[0]), cfg, self.rng)
            self.pair_sampler = PairSampler(tuple(torch.from_numpy(a[p_train]) for a in pairs), self.rng)
            self.pairs_val = tuple(torch.from_numpy(a[p_val]) for a in pairs)

        if initial is not None:
            if initial.dim != dim:
                raise ValueError(f"initial model has dim {initial.dim}, data has dim {dim}")
            self.model = copy.deepcopy(initial).train()
        else:
            hidden = cfg.hidden_mult * dim
            self.model = SparseAutoencoder(dim, hidden, min(cfg.k, hidden))
            with torch.no_grad():
                self.model.b_pre.copy_(self.x_train.mean(dim=0))
        # Scalar data variance: NMSE = MSE / var is 1 for "predict the mean".
        var = float(self.x_train.var(dim=0, unbiased=False).mean().clamp_min(1e-12))
        self.objective = SparseObjective(self.model, cfg, var, with_pairs=pairs is not None)
        self.opt = torch.optim.Adam(self.objective.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def _set_lr(self, progress: float) -> None:
        """Learning rate at ``progress`` in [0, 1) of the planned ``max_epochs``."""
        cfg = self.cfg
        lr = cfg.lr
        if cfg.lr_schedule == "cosine":
            lr *= cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in self.opt.param_groups:
            group["lr"] = lr

    def _train_step(self, xb: torch.Tensor) -> dict:
        objective = self.objective
        pairs = None
        if self.pair_sampler is not None and self.cfg.contrastive_coef > 0:
            pairs = self.pair_sampler.next(min(self.cfg.contrastive_batch, len(self.pair_sampler)))
        loss, parts, out = objective.batch_loss(xb, pairs)
        objective.record_fired(out)
        aux = objective.aux_loss(out, xb)
        loss = loss + self.cfg.aux_coef * aux
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.model.remove_parallel_decoder_grad_()
        self.opt.step()
        self.model.normalize_decoder_()
        parts["aux"] = aux.item()
        parts["loss"] = loss.item()
        return parts

    def run(self) -> tuple[SparseAutoencoder, TrainReport]:
        cfg = self.cfg
        t0 = time.perf_counter()
        n = len(self.x_train)
        bs = min(cfg.batch_size, n)
        steps_per_epoch = max(1, n // bs)  # drop the ragged tail: equal-size batches
        best_loss, best_state, best_epoch = math.inf, None, 0
        bad_epochs, history, stopped = 0, [], "max_epochs"
        epoch = 0
        # one bar over epochs (it may stop early, when the validation loss stops improving)
        bar = progress_bar(cfg.max_epochs, "training sparse codes", "epoch", self.show_progress)
        for epoch in range(1, cfg.max_epochs + 1):
            self.model.train()
            order = torch.from_numpy(self.rng.permutation(n))
            sums: dict[str, float] = {}
            timed_out = False
            for step in range(steps_per_epoch):
                self._set_lr(((epoch - 1) * steps_per_epoch + step) / (cfg.max_epochs * steps_per_epoch))
                xb = self.x_train[order[step * bs : (step + 1) * bs]]
                parts = self._train_step(xb)
                for key, v in parts.items():
                    sums[key] = sums.get(key, 0.0) + v
                if cfg.time_limit_s is not None and time.perf_counter() - t0 > cfg.time_limit_s:
                    timed_out = True
                    break
            done = step + 1
            self.model.eval()
            val = evaluate(self.objective, self.x_val, self.pairs_val)
            record = {
                "epoch": epoch,
                "seconds": round(time.perf_counter() - t0, 2),
                **{f"train_{key}": v / done for key, v in sums.items()},
                **{f"val_{key}": v for key, v in val.items()},
            }
            history.append(record)
            bar.set_postfix(val_nmse=f"{val['nmse']:.4f}", dead=f"{val['dead_fraction']:.3f}", refresh=False)
            bar.update(1)
            if best_state is None or val["loss"] < best_loss - cfg.min_delta * abs(best_loss):
                best_loss, best_epoch, bad_epochs = val["loss"], epoch, 0
                best_state = copy.deepcopy(self.model.state_dict())
            else:
                bad_epochs += 1
            if timed_out:
                stopped = "time_limit"
                break
            if bad_epochs >= cfg.patience:
                stopped = "converged"
                break
        bar.close()

        if best_state is not None:
            self.model.load_state_dict(best_state)
        self.model.eval()
        train_eval = evaluate(self.objective, self.x_train[: min(n, cfg.max_val)])
        val_eval = evaluate(self.objective, self.x_val, self.pairs_val)
        report = TrainReport(
            epochs=epoch,
            seconds=time.perf_counter() - t0,
            train_nmse=train_eval["nmse"],
            val_nmse=val_eval["nmse"],
            dead_fraction=val_eval["dead_fraction"],
            best_epoch=best_epoch,
            stopped=stopped,
            config=asdict(self.cfg),
            history=history,
        )
        return self.model, report
