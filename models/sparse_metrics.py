"""Measures of a sparse autoencoder: reconstruction NMSE, validation loss, dead latents.

Used both inside training (the per-epoch validation that picks the best
model and decides when to stop) and from outside it (tests, benchmarks), so
they live apart from the loop. All run without gradients.
"""

from __future__ import annotations

import numpy as np
import torch

from vecdial.models.sparse_autoencoder import SparseAutoencoder
from vecdial.models.sparse_objective import SparseObjective


@torch.no_grad()
def reconstruction_nmse(model: SparseAutoencoder, x: np.ndarray, k: int | None = None, batch_size: int = 4096) -> float:
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


@torch.no_grad()
def evaluate(
    objective: SparseObjective,
    x: torch.Tensor,
    pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
    batch_size: int | None = None,
) -> dict:
    """Mean loss (no AuxK) and its parts over x, and ``dead_fraction``: the share of
    latents that never fire in the codes at k.

    The batch of x starting at row s is scored with pairs s .. s +
    ``contrastive_batch`` (none once fewer than 2 are left). Means are
    weighted by rows.
    """
    cfg = objective.cfg
    bs = batch_size or cfg.batch_size
    k = objective.k
    fired = torch.zeros(objective.model.hidden, dtype=torch.bool)
    sums: dict[str, float] = {}
    n_rows = 0
    for start in range(0, len(x), bs):
        xb = x[start : start + bs]
        pb = None
        if pairs is not None:
            pb = tuple(a[start : start + cfg.contrastive_batch] for a in pairs)
            if len(pb[0]) < 2:
                pb = None
        loss, parts, out = objective.batch_loss(xb, pb)
        act = out.indices[:, :k][out.values[:, :k] > 0]
        fired[act] = True
        parts["loss"] = loss.item()
        for key, v in parts.items():
            sums[key] = sums.get(key, 0.0) + v * len(xb)
        n_rows += len(xb)
    res = {key: v / n_rows for key, v in sums.items()}
    res["dead_fraction"] = float(1.0 - fired.float().mean())
    return res
