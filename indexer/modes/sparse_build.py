"""Build step for learned sparse codes: train the CSR autoencoder, encode, invert.

The autoencoder is trained on the build's sample of frozen embeddings (no
change to the embedding model), then every vector is encoded in batches and
the codes are turned into postings. The weights are stored with the version so
queries are encoded by the same model at search time.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vecdial.indexer.modes.settings import SparseSettings
from vecdial.indexer.stores.sparse import build_postings
from vecdial.indexer.vectors import Rows, normalize_rows, unit_sample


def nested_budgets(k: int, smallest: int = 8) -> tuple[int, ...]:
    """Budgets below k trained to reconstruct well too (k/2, k/4, ... down to `smallest`),
    so that truncated codes served from the same index stay good."""
    budgets = []
    while k // 2 >= smallest:
        k //= 2
        budgets.append(k)
    return tuple(sorted(budgets))


def build_threads(threads: int | None = None) -> int:
    """Torch threads a sparse build trains and encodes with: `threads` if given, else
    OMP_NUM_THREADS if set, else every usable core but one (at least one).

    A build never takes every core by default: the collection's searches and writes
    keep running beside it, and a thread team that waits for a busy core spins.
    Measured on 2 cores beside other work: one training step (1,024 rows, 3,072
    units) took 0.30 s on one thread and 2.5 s on two.
    """
    from vecdial.models.torch_threads import resolve_threads

    wanted = resolve_threads(threads)
    if wanted is not None:
        return wanted
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)


def epochs_for(settings: SparseSettings, n_train: int, batch_size: int) -> int:
    """settings.max_epochs, raised so that training takes at least min_steps steps."""
    steps_per_epoch = -(-n_train // batch_size)
    return max(settings.max_epochs, -(-settings.min_steps // steps_per_epoch))


def build_sparse(
    vectors: Rows,
    sample: np.ndarray,
    out: Path,
    settings: SparseSettings,
    show_progress: bool = True,
    batch_size: int = 8192,
    threads: int | None = None,
) -> dict:
    """Train on up to train_size of vectors (N, dim) (or the codec sample when it already
    holds them all), encode all vectors, write postings.

    threads: torch threads for training and encoding (None: see build_threads); the
    caller's count is restored afterwards. Not part of the manifest: it belongs to the
    machine, not the index (training is reproducible for a given seed and thread count).
    Returns the manifest entry: model config and a training summary.
    """
    from vecdial.models.train_sparse import TrainConfig, train_sparse_autoencoder

    threads = build_threads(threads)
    training = unit_sample(vectors, settings.train_size, settings.seed) if len(vectors) > len(sample) else sample
    config = TrainConfig(
        k=settings.max_active,
        k_multi=4 * settings.max_active,
        nested_ks=nested_budgets(settings.max_active),
        hidden_mult=settings.hidden_mult,
        max_epochs=epochs_for(settings, len(training), TrainConfig.batch_size),
        contrastive_coef=settings.contrastive_coef,
        flops_coef=settings.flops_coef,
        time_limit_s=settings.time_limit_s,
        seed=settings.seed,
        threads=threads,
    )
    model, report = train_sparse_autoencoder(training, config=config, show_progress=show_progress)
    n = len(vectors)
    indices = np.empty((n, model.k), dtype=np.int32)
    values = np.empty((n, model.k), dtype=np.float32)
    with tqdm(total=n, desc="sparse codes", unit="vec", disable=not show_progress) as progress:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            unit = normalize_rows(np.asarray(vectors[start:stop], dtype=np.float32))
            indices[start:stop], values[start:stop] = model.encode_topk(unit, model.k, threads=threads)
            progress.update(stop - start)
    for name, array in build_postings(indices, values, model.hidden).items():
        np.save(out / name, array)
    model_config = model.save(out)
    return {
        "model": model_config,
        "settings": settings.model_dump(),
        "train": {
            "seconds": round(report.seconds, 1),
            "epochs": report.epochs,
            "val_nmse": round(report.val_nmse, 4),
            "dead_fraction": round(report.dead_fraction, 4),
            "stopped": report.stopped,
        },
    }
