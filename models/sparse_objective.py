"""The loss that trains the CSR sparse autoencoder, one batch at a time.

The objective, per batch x of unit-norm embeddings (NMSE = MSE / data variance):

    L = NMSE(x, x_hat@k) + multi_coef * NMSE(x, x_hat@k_multi)      reconstruction
      + aux_coef * AuxK                                             dead-latent revival
      + contrastive_coef * (InfoNCE on pairs | neighbour distillation)
      + flops_coef * FLOPs                                          balanced unit usage

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

Kept apart from the loop (``train_sparse``) so that each term can be read,
and changed, next to the others without the bookkeeping of epochs and stopping.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vecdial.models.sparse_autoencoder import SAEOutput, SparseAutoencoder, to_dense
from vecdial.models.sparse_config import TrainConfig


class SparseObjective:
    """The loss terms for ``model`` under ``cfg``, plus the state they keep.

    State: the learnt scale of the distillation term (``log_scale``) and, per
    latent, the steps since it last fired (what AuxK calls dead).
    ``var`` is the training data's scalar variance: NMSE = MSE / var is 1 for
    "predict the mean". ``with_pairs``: the contrastive term is InfoNCE on
    (query, document) pairs rather than neighbour distillation.
    """

    def __init__(self, model: SparseAutoencoder, cfg: TrainConfig, var: float, with_pairs: bool) -> None:
        self.model = model
        self.cfg = cfg
        self.var = var
        self.with_pairs = with_pairs
        hidden = model.hidden
        self.k = model.k
        self.k_multi = min(max(cfg.k_multi, self.k), hidden)
        self.nested = tuple(sorted({kn for kn in cfg.nested_ks if kn < self.k}))
        self.ks = tuple(sorted({*self.nested, self.k, self.k_multi}))
        # The code-similarity scale of the distillation term (log-parametrised).
        self.log_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)))
        self.steps_since_fired = torch.zeros(hidden, dtype=torch.long)

    def parameters(self) -> list[torch.nn.Parameter]:
        """What the optimiser trains: the model's parameters, and the distillation scale if used."""
        params = list(self.model.parameters())
        if self.cfg.contrastive_coef > 0 and not self.with_pairs:
            params.append(self.log_scale)
        return params

    # ---------------------------------------------------------- reconstruction
    def nmse(self, recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (recon - x).pow(2).sum(dim=1).mean() / (self.var * x.shape[1])

    def recon_losses(self, out: SAEOutput, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(NMSE at k, weighted sum of the multi-k and nested terms)."""
        cfg = self.cfg
        main = extra = None
        for k, recon in zip(out.ks, out.recons):
            err = self.nmse(recon, x)
            if k == self.k:
                main = err
            else:
                w = cfg.nested_coef / len(self.nested) if k in self.nested else cfg.multi_coef
                extra = w * err if extra is None else extra + w * err
        return main, (extra if extra is not None else main.new_zeros(()))

    # -------------------------------------------------------------------- AuxK
    @torch.no_grad()
    def record_fired(self, out: SAEOutput) -> None:
        """Count one more step for every latent silent in ``out``'s codes at k; reset the rest."""
        fired = torch.zeros_like(self.steps_since_fired)
        act = out.indices[:, : self.k][out.values[:, : self.k] > 0]
        fired[act] = 1
        self.steps_since_fired.add_(1).mul_(1 - fired)

    def aux_loss(self, out: SAEOutput, x: torch.Tensor) -> torch.Tensor:
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

    # ------------------------------------------------------------- contrastive
    def distill_loss(self, out: SAEOutput, x: torch.Tensor) -> torch.Tensor:
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

    def infonce_loss(self, q: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(InfoNCE of query codes against in-batch document codes, query+doc NMSE at k)."""
        out_q = self.model(q, ks=(self.k,))
        out_d = self.model(d, ks=(self.k,))
        zq = F.normalize(to_dense(out_q.indices, out_q.values, self.model.hidden), dim=1)
        zd = F.normalize(to_dense(out_d.indices, out_d.values, self.model.hidden), dim=1)
        logits = zq @ zd.t() / self.cfg.temperature
        nce = F.cross_entropy(logits, torch.arange(len(q)))
        recon = 0.5 * (self.nmse(out_q.recons[0], q) + self.nmse(out_d.recons[0], d))
        return nce, recon

    # -------------------------------------------------------------------- FLOPs
    def flops_loss(self, out: SAEOutput) -> torch.Tensor:
        """hidden * sum_j p_j^2 over the codes at k: 1 for uniform unit usage, larger when skewed."""
        k = self.cfg.k
        mass = torch.zeros(self.model.hidden, dtype=out.values.dtype).index_add(
            0, out.indices[:, :k].reshape(-1), out.values[:, :k].reshape(-1)
        )
        share = mass / mass.sum().clamp_min(1e-12)
        return self.model.hidden * (share**2).sum()

    # -------------------------------------------------------------- the sum
    def batch_loss(self, xb: torch.Tensor, pairs: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict, SAEOutput]:
        """(loss without AuxK, its parts as floats, the forward pass) for one batch.

        ``pairs``: this step's (queries, documents), or None; with pairs in
        training but none for this batch, there is no contrastive term.
        """
        cfg = self.cfg
        out = self.model(xb, ks=self.ks)
        main, extra = self.recon_losses(out, xb)
        loss = main + extra
        parts = {"nmse": main.item()}
        if cfg.flops_coef > 0:
            flops = self.flops_loss(out)
            loss = loss + cfg.flops_coef * flops
            parts["flops"] = flops.item()
        if cfg.contrastive_coef > 0:
            if pairs is not None:
                nce, recon_pairs = self.infonce_loss(*pairs)
                loss = loss + recon_pairs + cfg.contrastive_coef * nce
                parts["contrastive"] = nce.item()
            elif not self.with_pairs:
                dist = self.distill_loss(out, xb)
                loss = loss + cfg.contrastive_coef * dist
                parts["contrastive"] = dist.item()
        return loss, parts, out


def sparse_gram(indices: torch.Tensor, values: torch.Tensor, hidden: int) -> torch.Tensor:
    """Inner products z_a . z_b of sparse codes (m, k) -> (m, m), in O(m^2 k).

    Row a's k units pick k rows of the dense codes' transpose, so the dense
    (m, hidden) x (hidden, m) product is never formed; one embedding_bag sums
    them without materialising the (m, k, m) gather either.
    """
    m, k = indices.shape
    dense_t = to_dense(indices, values, hidden).t().contiguous()  # (hidden, m)
    offsets = torch.arange(m, dtype=torch.long) * k
    return F.embedding_bag(indices.reshape(-1), dense_t, offsets, mode="sum", per_sample_weights=values.reshape(-1))
