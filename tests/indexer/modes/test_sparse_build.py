"""The sparse build's thread count: explicit, else OMP_NUM_THREADS, else every core but one."""

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vecdial.indexer.modes import sparse_build  # noqa: E402
from vecdial.indexer.modes.settings import SparseSettings  # noqa: E402


def test_an_explicit_count_wins_then_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert sparse_build.build_threads(5) == 5
    assert sparse_build.build_threads() == 3


def test_without_a_setting_a_build_leaves_one_core_free(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert sparse_build.build_threads() == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert sparse_build.build_threads() == 1


@pytest.fixture
def two_torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_training_and_encoding_run_on_the_builds_threads(tmp_path, monkeypatch, demo_vectors, two_torch_threads):
    """On two cores with nothing set, torch runs on one inside the build, and on two again after."""
    from vecdial.models import sparse_autoencoder, train_sparse

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    seen = []
    step, encode = train_sparse._Trainer._train_step, sparse_autoencoder.SparseAutoencoder.encode_topk

    def spy_step(self, xb):
        seen.append(("train", torch.get_num_threads()))
        return step(self, xb)

    def spy_encode(self, x, *args, **kwargs):
        result = encode(self, x, *args, **kwargs)
        seen.append(("encode", kwargs.get("threads")))
        return result

    monkeypatch.setattr(train_sparse._Trainer, "_train_step", spy_step)
    monkeypatch.setattr(sparse_autoencoder.SparseAutoencoder, "encode_topk", spy_encode)
    docs = np.ascontiguousarray(demo_vectors[0][:400])
    settings = SparseSettings(max_active=8, hidden_mult=1, max_epochs=1, min_steps=2)
    sparse_build.build_sparse(docs, docs, tmp_path, settings, show_progress=False)
    assert seen and {count for _, count in seen} == {1}
    assert torch.get_num_threads() == 2
