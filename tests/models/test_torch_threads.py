"""Torch thread counts: chosen by the caller, one thread for a few queries, always restored."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vecdial.models.sparse_autoencoder import SparseAutoencoder  # noqa: E402
from vecdial.models.torch_threads import SMALL_BATCH, env_threads, torch_threads  # noqa: E402
from vecdial.models.train_sparse import TrainConfig, train_sparse_autoencoder  # noqa: E402

DIM = 16
OUTER = 2  # the caller's torch thread count in these tests; differs from 1 on purpose


@pytest.fixture
def outer_threads(monkeypatch):
    """The caller runs torch on OUTER threads, with OMP_NUM_THREADS unset."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(OUTER)
    yield OUTER
    torch.set_num_threads(before)


def rows(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def threads_seen_by_encoding(model: SparseAutoencoder, monkeypatch) -> list[int]:
    """Patch the model's encoder pass to record torch's thread count at each call."""
    seen: list[int] = []
    original = model.pre_activations

    def recording(x):
        seen.append(torch.get_num_threads())
        return original(x)

    monkeypatch.setattr(model, "pre_activations", recording)
    return seen


def threads_seen_by_training(monkeypatch) -> set[int]:
    """Patch every forward pass to record torch's thread count."""
    seen: set[int] = set()
    original = SparseAutoencoder.forward

    def recording(self, x, ks=None):
        seen.add(torch.get_num_threads())
        return original(self, x, ks)

    monkeypatch.setattr(SparseAutoencoder, "forward", recording)
    return seen


def tiny_config(**overrides) -> TrainConfig:
    base = dict(
        hidden_mult=2,
        k=4,
        k_multi=8,
        nested_ks=(),
        k_aux=8,
        contrastive_batch=32,
        batch_size=64,
        max_epochs=1,
        seed=0,
        time_limit_s=None,
    )
    return TrainConfig(**{**base, **overrides})


# --- encoding ---------------------------------------------------------------------------


def test_one_query_encodes_on_one_thread_and_the_callers_count_is_restored(outer_threads, monkeypatch):
    model = SparseAutoencoder(DIM, 64, 4)
    seen = threads_seen_by_encoding(model, monkeypatch)
    idx, val = model.encode_topk(rows(1))
    assert seen == [1]
    assert torch.get_num_threads() == OUTER
    assert idx.shape == val.shape == (1, 4)


def test_a_large_batch_encodes_on_the_callers_threads(outer_threads, monkeypatch):
    model = SparseAutoencoder(DIM, 64, 4)
    seen = threads_seen_by_encoding(model, monkeypatch)
    model.encode_topk(rows(SMALL_BATCH - 1))
    model.encode_topk(rows(SMALL_BATCH))
    assert seen == [1, OUTER]
    assert torch.get_num_threads() == OUTER


def test_encoding_takes_an_explicit_thread_count_then_omp_num_threads(outer_threads, monkeypatch):
    model = SparseAutoencoder(DIM, 64, 4)
    seen = threads_seen_by_encoding(model, monkeypatch)
    model.encode_topk(rows(1), threads=3)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    model.encode_topk(rows(SMALL_BATCH))
    assert seen == [3, 3]
    assert torch.get_num_threads() == OUTER


def test_one_query_does_not_touch_torch_when_it_already_runs_on_one_thread(monkeypatch):
    """The cheap path: a serving thread already capped at 1 pays no set_num_threads call."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    model = SparseAutoencoder(DIM, 64, 4)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    calls: list[int] = []
    real_set = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real_set(n)))
    try:
        model.encode_topk(rows(1))
    finally:
        real_set(before)
    assert calls == []


def test_a_failing_encode_still_restores_the_count(outer_threads, monkeypatch):
    model = SparseAutoencoder(DIM, 64, 4)

    def broken(x):
        raise RuntimeError("boom")

    monkeypatch.setattr(model, "pre_activations", broken)
    with pytest.raises(RuntimeError, match="boom"):
        model.encode_topk(rows(1))
    assert torch.get_num_threads() == OUTER


# --- training ---------------------------------------------------------------------------


def test_training_respects_omp_num_threads_and_restores_the_count(outer_threads, monkeypatch):
    seen = threads_seen_by_training(monkeypatch)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    train_sparse_autoencoder(rows(200), config=tiny_config(threads=None), show_progress=False)
    assert seen == {1}
    assert torch.get_num_threads() == OUTER


def test_training_without_a_count_keeps_torchs_current_one(outer_threads, monkeypatch):
    seen = threads_seen_by_training(monkeypatch)
    train_sparse_autoencoder(rows(200), config=tiny_config(threads=None), show_progress=False)
    assert seen == {OUTER}


def test_an_explicit_training_count_wins_over_omp_num_threads(outer_threads, monkeypatch):
    seen = threads_seen_by_training(monkeypatch)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    train_sparse_autoencoder(rows(200), config=tiny_config(threads=1), show_progress=False)
    assert seen == {1}
    assert torch.get_num_threads() == OUTER


def test_config_rejects_a_non_positive_thread_count():
    with pytest.raises(ValueError, match="threads"):
        TrainConfig(threads=0)


# --- the context itself -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [("3", 3), (" 2 ", 2), ("4,2", 4), ("", None), ("zero", None), ("0", None), ("-1", None)],
)
def test_omp_num_threads_parsing(monkeypatch, value, expected):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert env_threads() == expected


def test_torch_threads_restores_after_an_exception(outer_threads):
    with pytest.raises(KeyError):
        with torch_threads(1) as inside:
            assert inside == torch.get_num_threads() == 1
            raise KeyError("x")
    assert torch.get_num_threads() == OUTER
