"""The knobs of sparse-autoencoder training and the report it returns.

Kept apart from the loop so that the measured defaults and their evidence can
be read (and imported, e.g. by the index build) without the training code.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of :func:`~vecdial.models.train_sparse.train_sparse_autoencoder`; defaults
    measured on 117k MiniLM vectors.

    Measured (WordNet glosses, all-MiniLM-L6-v2, 100k training rows, 2 CPU cores,
    8 epochs ~27 s each; since the nested reconstructions share one embedding_bag,
    117k rows at k=64 train 8 epochs in 287 s on one thread of a busy machine,
    where the dense products took 550 s for 4): recall@10 vs exact cosine of code-cosine search at
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
    # Torch threads while training; None: OMP_NUM_THREADS if set, else torch's current
    # count. Set only for the call and restored after (see models.torch_threads).
    threads: int | None = None

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
        if self.threads is not None and self.threads <= 0:
            raise ValueError(f"threads must be positive or None, got {self.threads}")


@dataclass
class TrainReport:
    """What happened in :func:`~vecdial.models.train_sparse.train_sparse_autoencoder`.

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
