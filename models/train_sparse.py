"""CPU training loop for the CSR sparse autoencoder.

The objective, per batch x of unit-norm embeddings (NMSE = MSE / data variance):

    L = NMSE(x, x_hat@k) + multi_coef * NMSE(x, x_hat@k_multi)      reconstruction
      + aux_coef * AuxK                                             dead-latent revival
      + contrastive_coef * (InfoNCE on pairs | neighbour distillation)

- Multi-k reconstruction (Gao et al. 2024; CSR's 4k term) keeps the code good
  past k; ``nested_ks`` adds the same term at smaller k so that a code
  truncated to its first ``active`` units (how the index serves small budgets)
  still reconstructs.
- AuxK: latents that have not fired for ``dead_steps`` steps reconstruct the
  residual ``x - x_hat`` with their top ``k_aux``; the gradient pulls them back
  into the data's span.
- Contrastive: with (query, document) pairs, InfoNCE on the codes (CSR's
  retrieval loss). Without pairs, the in-batch neighbour distribution of the
  codes is distilled from the dense one: KL(softmax(x x^T / T) || softmax(s z z^T)),
  with a learnt scale s. Either way the codes' inner products learn to rank
  like the dense cosine, which is what search with them needs.

Training is deterministic for a given seed and thread count (the global RNG
state and the thread count are restored on exit).
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vecdial.models.sparse_autoencoder import SparseAutoencoder, to_dense


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of :func:`train_sparse_autoencoder`; defaults measured on 117k MiniLM vectors.

    Measured (WordNet glosses, all-MiniLM-L6-v2, 100k training rows, 2 CPU cores,
    8 epochs ~27 s each): recall@10 vs exact cosine of code-cosine search at
    8/16/32/64 active units 0.34/0.46/0.56/0.63, against 0.02/0.07/0.23/0.49 for
    PCA-rotated dense truncated to as many dims. Distillation at 0.1 beats none
    (0.51 at 32) and 0.3 (0.55) or 1.0 (0.46, with half the latents dead);
    temperature 0.05 beats 0.02 (0.51) and 0.1 (0.55).
    """

    hidden_mult: int = 8  # hidden = hidden_mult * dim
    k: int = 32  # active units per code
    k_multi: int = 128  # larger k for the multi-k reconstruction term (4k)
    multi_coef: float = 0.125
    nested_ks: tuple[int, ...] = (8, 16)  # smaller k's reconstructed too (truncation)
    nested_coef: float = 0.125
    k_aux: int = 256  # dead latents used by AuxK
    aux_coef: float = 1.0 / 32.0
    dead_steps: int = 50  # a latent silent this many steps counts as dead
    contrastive_coef: float = 0.1  # CSR uses 0.1 too; 0.3 and 1.0 measured worse
    # Balances unit usage ("Minimizing FLOPs to Learn Efficient Sparse Representations"):
    # hidden * sum_j p_j^2, p_j the batch's share of activation mass on unit j; 1 when
    # usage is uniform. Popular units mean long posting lists and slow searches.
    flops_coef: float = 0.0
    temperature: float = 0.05  # dense-similarity temperature (distillation) / InfoNCE temperature
    contrastive_batch: int = 512  # rows per step in the contrastive term
    distill_cosine: bool = True  # distil cosine similarities of codes (else raw inner products)
    batch_size: int = 1024
    lr: float = 1e-3
    lr_schedule: str = "constant"  # "constant" | "cosine" (to lr_min_ratio * lr at max_epochs)
    lr_min_ratio: float = 0.1
    weight_decay: float = 0.0
    max_epochs: int = 20
    patience: int = 3  # epochs without validation improvement before stopping
    min_delta: float = 1e-4  # relative improvement that counts
    val_fraction: float = 0.05
    max_val: int = 10_000
    seed: int = 0
    time_limit_s: float | None = 540.0
    threads: int | None = None  # default: the CPU cores this process may use

    def __post_init__(self) -> None:
        if self.k <= 0 or self.k_multi < self.k:
            raise ValueError(f"need 0 < k <= k_multi, got k={self.k}, k_multi={self.k_multi}")
        if any(not 0 < kn < self.k for kn in self.nested_ks):
            raise ValueError(f"nested_ks must lie in (0, k={self.k}), got {self.nested_ks}")
        if self.hidden_mult <= 0 or self.batch_size <= 1:
            raise ValueError("hidden_mult must be positive and batch_size at least 2")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")


@dataclass
class TrainReport:
    """What happened in :func:`train_sparse_autoencoder`.

    Reconstruction errors are normalised MSE (MSE / data variance) at ``k``;
    ``dead_fraction`` counts latents that never fire on the validation set.
    """

    epochs: int
    seconds: float
    train_nmse: float
    val_nmse: float
    dead_fraction: float
    best_epoch: int
    stopped: str  # "converged" | "max_epochs" | "time_limit"
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


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
    Returns the model with the best validation loss (eval mode) and a report.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 4:
        raise ValueError(f"x must be (n >= 4, dim) float32, got shape {x.shape}")
    if pairs is not None:
        q, d = (np.ascontiguousarray(a, dtype=np.float32) for a in pairs)
        if q.shape != d.shape or q.ndim != 2 or q.shape[1] != x.shape[1] or len(q) < 4:
            raise ValueError(
                f"pairs must be two aligned (m >= 4, {x.shape[1]}) arrays, got {q.shape} and {d.shape}"
            )
        pairs = (q, d)

    # The CPU kernels used here (matmul, topk, embedding_bag) are deterministic
    # for a fixed thread count; torch.use_deterministic_algorithms would only
    # add a multi-second import of torch._inductor, so it is not switched on.
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads or available_cores())
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            return _Trainer(x, pairs, config, show_progress, initial).run()
    finally:
        torch.set_num_threads(prev_threads)


def _split(n: int, cfg: TrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    n_val = min(cfg.max_val, max(1, int(round(n * cfg.val_fraction))))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class _Trainer:
    def __init__(self, x, pairs, cfg: TrainConfig, show_progress: bool, initial=None) -> None:
        self.cfg = cfg
        self.show_progress = show_progress
        self.rng = np.random.default_rng(cfg.seed)
        n, dim = x.shape
        train_idx, val_idx = _split(n, cfg, self.rng)
        self.x_train = torch.from_numpy(x[train_idx])
        self.x_val = torch.from_numpy(x[val_idx])
        self.pairs_train = self.pairs_val = None
        if pairs is not None:
            p_train, p_val = _split(len(pairs[0]), cfg, self.rng)
            self.pairs_train = tuple(torch.from_numpy(a[p_train]) for a in pairs)
            self.pairs_val = tuple(torch.from_numpy(a[p_val]) for a in pairs)

        if initial is not None:
            if initial.dim != dim:
                raise ValueError(f"initial model has dim {initial.dim}, data has dim {dim}")
            self.model = copy.deepcopy(initial).train()
            hidden = self.model.hidden
        else:
            hidden = cfg.hidden_mult * dim
            self.model = SparseAutoencoder(dim, hidden, min(cfg.k, hidden))
            with torch.no_grad():
                self.model.b_pre.copy_(self.x_train.mean(dim=0))
        self.k = self.model.k
        self.k_multi = min(max(cfg.k_multi, self.k), hidden)
        self.nested = tuple(sorted({kn for kn in cfg.nested_ks if kn < self.k}))
        self.ks = tuple(sorted({*self.nested, self.k, self.k_multi}))
        # Scalar data variance: NMSE = MSE / var is 1 for "predict the mean".
        self.var = float(self.x_train.var(dim=0, unbiased=False).mean().clamp_min(1e-12))
        # The code-similarity scale of the distillation term (log-parametrised).
        self.log_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)))
        params = list(self.model.parameters())
        if cfg.contrastive_coef > 0 and pairs is None:
            params.append(self.log_scale)
        self.opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.steps_since_fired = torch.zeros(hidden, dtype=torch.long)
        self.pair_order = np.empty(0, dtype=np.int64)
        self.pair_pos = 0

    # ------------------------------------------------------------- losses
    def _nmse(self, recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (recon - x).pow(2).sum(dim=1).mean() / (self.var * x.shape[1])

    def _recon_losses(self, out, x) -> tuple[torch.Tensor, torch.Tensor]:
        """(NMSE at k, weighted sum of the multi-k and nested terms)."""
        cfg = self.cfg
        main = extra = None
        for k, recon in zip(out.ks, out.recons):
            err = self._nmse(recon, x)
            if k == self.k:
                main = err
            else:
                w = cfg.nested_coef / len(self.nested) if k in self.nested else cfg.multi_coef
                extra = w * err if extra is None else extra + w * err
        return main, (extra if extra is not None else main.new_zeros(()))

    def _aux_loss(self, out, x: torch.Tensor) -> torch.Tensor:
        """Dead latents' top ``k_aux`` reconstruct the residual (normalised MSE)."""
        dead = torch.nonzero(self.steps_since_fired > self.cfg.dead_steps).squeeze(1)
        if len(dead) == 0 or self.cfg.aux_coef == 0:
            return x.new_zeros(())
        k_aux = min(self.cfg.k_aux, len(dead))
        # Work on the dead columns only: the cost follows the number of dead latents.
        top = torch.topk(out.pre_acts[:, dead], k_aux, dim=1, sorted=False)
        z = torch.zeros(len(x), len(dead)).scatter(1, top.indices, F.relu(top.values))
        e_hat = F.linear(z, self.model.W_dec[:, dead])
        e = x - out.recons[out.ks.index(self.k)].detach()
        denom = (e - e.mean(dim=0)).pow(2).sum(dim=1).mean().clamp_min(1e-12)
        return (e_hat - e).pow(2).sum(dim=1).mean() / denom

    def _distill_loss(self, out, x: torch.Tensor) -> torch.Tensor:
        """KL(dense in-batch neighbour distribution || code one), diagonal excluded."""
        m = min(self.cfg.contrastive_batch, x.shape[0])
        eye = torch.eye(m, dtype=torch.bool)
        teacher = (x[:m] @ x[:m].t() / self.cfg.temperature).masked_fill(eye, float("-inf"))
        sims = sparse_gram(out.indices[:m, : self.k], out.values[:m, : self.k], self.model.hidden)
        if self.cfg.distill_cosine:
            norms = sims.diagonal().clamp_min(1e-12).sqrt()
            sims = sims / norms[:, None] / norms[None, :]
        student = (self.log_scale.exp() * sims).masked_fill(eye, float("-inf"))
        log_p = F.log_softmax(teacher, dim=1)
        log_q = F.log_softmax(student, dim=1)
        return (log_p.exp() * (log_p - log_q)).masked_fill(eye, 0.0).sum(dim=1).mean()

    def _infonce_loss(self, q: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(InfoNCE of query codes against in-batch document codes, query+doc NMSE at k)."""
        out_q = self.model(q, ks=(self.k,))
        out_d = self.model(d, ks=(self.k,))
        zq = F.normalize(to_dense(out_q.indices, out_q.values, self.model.hidden), dim=1)
        zd = F.normalize(to_dense(out_d.indices, out_d.values, self.model.hidden), dim=1)
        logits = zq @ zd.t() / self.cfg.temperature
        nce = F.cross_entropy(logits, torch.arange(len(q)))
        recon = 0.5 * (self._nmse(out_q.recons[0], q) + self._nmse(out_d.recons[0], d))
        return nce, recon

    def _next_pairs(self, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        n_pairs = len(self.pairs_train[0])
        if self.pair_pos + m > len(self.pair_order):
            self.pair_order = self.rng.permutation(n_pairs)
            self.pair_pos = 0
        sel = torch.from_numpy(self.pair_order[self.pair_pos : self.pair_pos + m])
        self.pair_pos += m
        return self.pairs_train[0][sel], self.pairs_train[1][sel]

    def _flops_loss(self, out) -> torch.Tensor:
        """hidden * sum_j p_j^2 over the codes at k: 1 for uniform unit usage, larger when skewed."""
        k = self.cfg.k
        mass = torch.zeros(self.model.hidden, dtype=out.values.dtype).index_add(
            0, out.indices[:, :k].reshape(-1), out.values[:, :k].reshape(-1)
        )
        share = mass / mass.sum().clamp_min(1e-12)
        return self.model.hidden * (share**2).sum()

    def _batch_loss(self, xb: torch.Tensor, pairs=None) -> tuple[torch.Tensor, dict]:
        cfg = self.cfg
        out = self.model(xb, ks=self.ks)
        main, extra = self._recon_losses(out, xb)
        loss = main + extra
        parts = {"nmse": main.item()}
        if cfg.flops_coef > 0:
            flops = self._flops_loss(out)
            loss = loss + cfg.flops_coef * flops
            parts["flops"] = flops.item()
        if cfg.contrastive_coef > 0:
            if pairs is not None:
                nce, recon_pairs = self._infonce_loss(*pairs)
                loss = loss + recon_pairs + cfg.contrastive_coef * nce
                parts["contrastive"] = nce.item()
            elif self.pairs_train is None:
                dist = self._distill_loss(out, xb)
                loss = loss + cfg.contrastive_coef * dist
                parts["contrastive"] = dist.item()
        return loss, parts, out

    # ------------------------------------------------------------ the loop
    def _set_lr(self, progress: float) -> None:
        """Learning rate at ``progress`` in [0, 1) of the planned ``max_epochs``."""
        cfg = self.cfg
        lr = cfg.lr
        if cfg.lr_schedule == "cosine":
            lr *= cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in self.opt.param_groups:
            group["lr"] = lr

    def _train_step(self, xb: torch.Tensor) -> dict:
        pairs = None
        if self.pairs_train is not None and self.cfg.contrastive_coef > 0:
            pairs = self._next_pairs(min(self.cfg.contrastive_batch, len(self.pairs_train[0])))
        loss, parts, out = self._batch_loss(xb, pairs)
        with torch.no_grad():
            fired = torch.zeros_like(self.steps_since_fired)
            act = out.indices[:, : self.k][out.values[:, : self.k] > 0]
            fired[act] = 1
            self.steps_since_fired.add_(1).mul_(1 - fired)
        aux = self._aux_loss(out, xb)
        loss = loss + self.cfg.aux_coef * aux
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.model.remove_parallel_decoder_grad_()
        self.opt.step()
        self.model.normalize_decoder_()
        parts["aux"] = aux.item()
        parts["loss"] = loss.item()
        return parts

    @torch.no_grad()
    def _evaluate(self, x: torch.Tensor, pairs=None, batch_size: int | None = None) -> dict:
        """Mean validation loss (no AuxK), NMSE at k and the fraction of silent latents."""
        bs = batch_size or self.cfg.batch_size
        fired = torch.zeros(self.model.hidden, dtype=torch.bool)
        sums: dict[str, float] = {}
        n_batches = 0
        for start in range(0, len(x), bs):
            xb = x[start : start + bs]
            pb = None
            if pairs is not None:
                pb = tuple(a[start : start + self.cfg.contrastive_batch] for a in pairs)
                if len(pb[0]) < 2:
                    pb = None
            loss, parts, out = self._batch_loss(xb, pb)
            act = out.indices[:, : self.k][out.values[:, : self.k] > 0]
            fired[act] = True
            parts["loss"] = loss.item()
            for key, v in parts.items():
                sums[key] = sums.get(key, 0.0) + v * len(xb)
            n_batches += len(xb)
        res = {key: v / n_batches for key, v in sums.items()}
        res["dead_fraction"] = float(1.0 - fired.float().mean())
        return res

    def run(self) -> tuple[SparseAutoencoder, TrainReport]:
        cfg = self.cfg
        t0 = time.perf_counter()
        n = len(self.x_train)
        bs = min(cfg.batch_size, n)
        steps_per_epoch = max(1, n // bs)  # drop the ragged tail: equal-size batches
        best_loss, best_state, best_epoch = math.inf, None, 0
        bad_epochs, history, stopped = 0, [], "max_epochs"
        epoch = 0
        for epoch in range(1, cfg.max_epochs + 1):
            self.model.train()
            order = torch.from_numpy(self.rng.permutation(n))
            sums: dict[str, float] = {}
            bar = tqdm(
                range(steps_per_epoch), desc=f"sae epoch {epoch}/{cfg.max_epochs}",
                disable=not self.show_progress, leave=False,
            )
            timed_out = False
            for step in bar:
                self._set_lr(((epoch - 1) * steps_per_epoch + step) / (cfg.max_epochs * steps_per_epoch))
                xb = self.x_train[order[step * bs : (step + 1) * bs]]
                parts = self._train_step(xb)
                for key, v in parts.items():
                    sums[key] = sums.get(key, 0.0) + v
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{parts['loss']:.4f}", nmse=f"{parts['nmse']:.4f}")
                if cfg.time_limit_s is not None and time.perf_counter() - t0 > cfg.time_limit_s:
                    timed_out = True
                    break
            bar.close()
            done = step + 1
            self.model.eval()
            val = self._evaluate(self.x_val, self.pairs_val)
            record = {
                "epoch": epoch,
                "seconds": round(time.perf_counter() - t0, 2),
                **{f"train_{key}": v / done for key, v in sums.items()},
                **{f"val_{key}": v for key, v in val.items()},
            }
            history.append(record)
            if self.show_progress:
                tqdm.write(
                    f"sae epoch {epoch}: train nmse {record['train_nmse']:.4f} "
                    f"val loss {val['loss']:.4f} nmse {val['nmse']:.4f} dead {val['dead_fraction']:.3f}"
                )
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

        if best_state is not None:
            self.model.load_state_dict(best_state)
        self.model.eval()
        sample = self.x_train[: min(n, cfg.max_val)]
        train_eval = self._evaluate(sample)
        val_eval = self._evaluate(self.x_val, self.pairs_val)
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


@torch.no_grad()
def reconstruction_nmse(
    model: SparseAutoencoder, x: np.ndarray, k: int | None = None, batch_size: int = 4096
) -> float:
    """Normalised MSE of ``model``'s reconstruction of x (n, dim) at ``k`` active units.

    1.0 means no better than predicting the mean of x; 0.0 is exact.
    """
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    var = float(xt.var(dim=0, unbiased=False).sum().clamp_min(1e-12))
    k = model.k if k is None else k
    total = 0.0
    for start in range(0, len(xt), batch_size):
        xb = xt[start : start + batch_size]
        recon = model(xb, ks=(k,)).recons[0]
        total += float((recon - xb).pow(2).sum())
    return total / (len(xt) * var)


def sparse_gram(indices: torch.Tensor, values: torch.Tensor, hidden: int) -> torch.Tensor:
    """Inner products z_a . z_b of sparse codes (m, k) -> (m, m), in O(m^2 k).

    Row a's k units pick k rows of the dense codes' transpose, so the dense
    (m, hidden) x (hidden, m) product is never formed.
    """
    dense_t = to_dense(indices, values, hidden).t().contiguous()  # (hidden, m)
    return torch.bmm(values.unsqueeze(1), dense_t[indices]).squeeze(1)
