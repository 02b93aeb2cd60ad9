"""Progress in a log (stderr not a terminal, as under CI, docker or nohup): a few lines in the
project's words, not a line per epoch or the model's own "Batches"."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from vecdial.models.encoder import encode_texts  # noqa: E402
from vecdial.models.sparse_config import TrainConfig  # noqa: E402
from vecdial.models.train_sparse import train_sparse_autoencoder  # noqa: E402


def test_encoding_reports_texts_not_batches(capsys, demo_corpus):
    vectors = encode_texts(demo_corpus.doc_texts[:40], batch_size=4, show_progress=True)
    err = capsys.readouterr().err
    assert vectors.shape == (40, 384)
    assert "encoding texts" in err and "40/40" in err and "Batches" not in err
    assert err.count("\n") <= 2  # tqdm redraws with \r; lines end in \n


def test_training_writes_one_bar_over_epochs_not_a_line_per_epoch(capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    config = TrainConfig(
        hidden_mult=4,
        k=4,
        k_multi=8,
        nested_ks=(2,),
        k_aux=16,
        dead_steps=5,
        contrastive_batch=64,
        batch_size=128,
        max_epochs=12,
        patience=100,
        seed=0,
        threads=1,
        time_limit_s=None,
    )
    _, report = train_sparse_autoencoder(x, config=config, show_progress=True)
    err = capsys.readouterr().err
    assert report.epochs == 12
    assert "training sparse codes" in err and "epoch" in err and "sae epoch" not in err
    assert err.count("\n") <= 2
