"""Specifications of the CSR sparse autoencoder and its training loop."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from vecdial.models.sparse_autoencoder import WEIGHTS_FILE, SparseAutoencoder  # noqa: E402
from vecdial.models.train_sparse import (  # noqa: E402
    TrainConfig,
    reconstruction_nmse,
    train_sparse_autoencoder,
)

DIM = 16


def clustered_unit_vectors(n: int, dim: int = DIM, n_clusters: int = 24, seed: int = 0) -> np.ndarray:
    """Embedding-like data: unit rows around a few cluster centres plus a shared offset."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim)) + 1.5 * rng.normal(size=dim)
    x = centres[rng.integers(0, n_clusters, n)] + 0.35 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def tiny_config(**overrides) -> TrainConfig:
    base = dict(
        hidden_mult=4,
        k=4,
        k_multi=8,
        nested_ks=(2,),
        k_aux=16,
        dead_steps=5,
        contrastive_batch=64,
        batch_size=128,
        lr=3e-3,
        max_epochs=3,
        patience=10,
        seed=0,
        threads=1,
        time_limit_s=None,
    )
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return clustered_unit_vectors(1200)


@pytest.fixture(scope="module")
def trained(data) -> tuple[SparseAutoencoder, object]:
    return train_sparse_autoencoder(data, config=tiny_config(), show_progress=False)


# --- the TopK activation --------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 48), seed=st.integers(0, 2**16))
def test_topk_keeps_exactly_k_nonzeros_on_generic_input(k, seed):
    torch.manual_seed(seed)
    model = SparseAutoencoder(DIM, 48, k)
    with torch.no_grad():
        model.encoder.bias.fill_(10.0)  # every pre-activation positive: ReLU drops none
    z = model.encode(torch.randn(7, DIM))
    assert z.shape == (7, 48)
    assert ((z != 0).sum(dim=1) == k).all()
    assert (z >= 0).all()


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 48), seed=st.integers(0, 2**16))
def test_topk_keeps_the_k_largest_positive_pre_activations(k, seed):
    torch.manual_seed(seed)
    model = SparseAutoencoder(DIM, 48, 8)
    x = torch.randn(5, DIM)
    pre = model.pre_activations(x)
    z = model.encode(x, k=k)
    kth = torch.topk(pre, k, dim=1).values[:, -1:]
    expected = torch.where(pre >= kth, pre.clamp_min(0), torch.zeros_like(pre))
    torch.testing.assert_close(z, expected)


@settings(max_examples=20, deadline=None)
@given(k=st.integers(2, 32), data=st.data())
def test_encode_topk_is_sorted_and_truncates_to_the_top_units(k, data):
    seed = data.draw(st.integers(0, 2**16))
    k_small = data.draw(st.integers(1, k))
    torch.manual_seed(seed)
    model = SparseAutoencoder(DIM, 64, k)
    x = clustered_unit_vectors(9, seed=seed)
    idx, val = model.encode_topk(x, k)
    assert idx.dtype == np.int32 and val.dtype == np.float32
    assert idx.shape == val.shape == (9, k)
    assert (np.diff(val, axis=1) <= 0).all(), "values must be sorted descending"
    assert (val >= 0).all()
    idx_small, val_small = model.encode_topk(x, k_small)
    # Separate calls may block the matrix product differently (shape, threads): values
    # agree to float32 rounding, not bit for bit (a 1-ulp difference was seen under load).
    np.testing.assert_allclose(val_small, val[:, :k_small], rtol=1e-5, atol=1e-6)
    # The first k' columns are the code at k': the dense code agrees.
    with torch.no_grad():
        dense = model.encode(torch.from_numpy(x), k=k_small).numpy()
    rebuilt = np.zeros_like(dense)
    np.put_along_axis(rebuilt, idx[:, :k_small].astype(np.int64), val[:, :k_small], axis=1)
    np.testing.assert_allclose(rebuilt, dense, rtol=1e-5, atol=1e-6)


def test_encode_topk_batches_agree_with_one_pass(data):
    model = SparseAutoencoder(DIM, 64, 6)
    one = model.encode_topk(data[:50], 6)
    batched = model.encode_topk(data[:50], 6, batch_size=7)
    np.testing.assert_array_equal(one[0], batched[0])
    # BLAS blocking depends on the batch: values may differ in the last bit.
    np.testing.assert_allclose(one[1], batched[1], rtol=1e-5, atol=1e-6)


def test_encode_topk_rejects_a_wrong_dimension():
    with pytest.raises(ValueError, match="shape"):
        SparseAutoencoder(DIM, 64, 4).encode_topk(np.zeros((3, DIM + 1), np.float32))


# --- the decoder -------------------------------------------------------------------


def test_initialisation_is_tied_with_unit_decoder_columns():
    model = SparseAutoencoder(DIM, 64, 4)
    norms = model.W_dec.norm(dim=0)
    torch.testing.assert_close(norms, torch.ones(64))
    torch.testing.assert_close(model.encoder.weight, model.W_dec.t())


def test_decoder_columns_stay_unit_norm_after_training(trained):
    model, _ = trained
    torch.testing.assert_close(model.W_dec.norm(dim=0), torch.ones(model.hidden), atol=1e-5, rtol=0)
    assert not torch.allclose(model.encoder.weight, model.W_dec.t()), "encoder and decoder are untied"


def test_sparse_decode_equals_dense_decode(data):
    model = SparseAutoencoder(DIM, 64, 5)
    x = torch.from_numpy(data[:20])
    out = model(x, ks=(5,))
    torch.testing.assert_close(out.recons[0], model.decode(model.encode(x)))


# --- training ------------------------------------------------------------------------


def test_training_reduces_reconstruction_error(data, trained):
    model, report = trained
    untrained = SparseAutoencoder(DIM, model.hidden, model.k)
    with torch.no_grad():
        untrained.b_pre.copy_(torch.from_numpy(data.mean(axis=0)))
    before = reconstruction_nmse(untrained, data)
    after = reconstruction_nmse(model, data)
    assert after < 0.6 * before
    assert report.val_nmse < 0.5
    assert report.epochs == len(report.history) == 3
    assert 0.0 <= report.dead_fraction < 1.0


def test_training_is_deterministic_with_a_seed(data, trained):
    again, _ = train_sparse_autoencoder(data, config=tiny_config(), show_progress=False)
    first = trained[0].state_dict()
    for name, tensor in again.state_dict().items():
        assert torch.equal(tensor, first[name]), name


def test_training_leaves_global_torch_state_alone(data):
    threads = torch.get_num_threads()
    state = torch.get_rng_state()
    train_sparse_autoencoder(data[:300], config=tiny_config(max_epochs=1, threads=1), show_progress=False)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), state)


def test_training_with_query_document_pairs(data):
    rng = np.random.default_rng(1)
    queries = data[:400] + 0.1 * rng.normal(size=(400, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    model, report = train_sparse_autoencoder(data, pairs=(queries, data[:400]), config=tiny_config(max_epochs=2), show_progress=False)
    assert "train_contrastive" in report.history[0]
    assert report.val_nmse < 0.6


def _sabotaged_model(x: np.ndarray, hidden: int, k: int) -> SparseAutoencoder:
    """Half the latents start dead: the other half's bias keeps them out of every TopK."""
    torch.manual_seed(0)
    model = SparseAutoencoder(x.shape[1], hidden, k)
    with torch.no_grad():
        model.b_pre.copy_(torch.from_numpy(x.mean(axis=0)))
        model.encoder.bias[: hidden // 2] = 0.3
        model.encoder.bias[hidden // 2 :] = -0.1
    return model


def _dead_share_of_sabotaged(model: SparseAutoencoder, x: np.ndarray) -> float:
    idx, val = model.encode_topk(x)
    fired = np.zeros(model.hidden, dtype=bool)
    fired[idx[val > 0]] = True
    return 1.0 - fired[model.hidden // 2 :].mean()


def test_auxk_revives_dead_latents(data):
    hidden, k = 64, 4
    assert _dead_share_of_sabotaged(_sabotaged_model(data, hidden, k), data) == 1.0
    cfg = dict(
        k_multi=8,
        nested_ks=(),
        k_aux=4,
        contrastive_coef=0.0,
        max_epochs=6,
        dead_steps=5,
        lr=1e-2,
        batch_size=64,
    )
    without, _ = train_sparse_autoencoder(
        data,
        config=tiny_config(aux_coef=0.0, **cfg),
        show_progress=False,
        initial=_sabotaged_model(data, hidden, k),
    )
    with_aux, _ = train_sparse_autoencoder(
        data,
        config=tiny_config(aux_coef=1.0, **cfg),
        show_progress=False,
        initial=_sabotaged_model(data, hidden, k),
    )
    dead_without = _dead_share_of_sabotaged(without, data)
    dead_with = _dead_share_of_sabotaged(with_aux, data)
    # Without AuxK a dead latent gets no gradient; most stay dead (measured 0.75
    # vs 0.09 here); with it, they learn the residual and win TopK slots again.
    assert dead_with < dead_without - 0.3, (dead_with, dead_without)


def test_config_rejects_nested_ks_outside_k():
    with pytest.raises(ValueError, match="nested_ks"):
        TrainConfig(k=8, nested_ks=(8,))


# --- storage ---------------------------------------------------------------------------


def test_save_load_round_trip_gives_identical_codes(tmp_path, data, trained):
    model, _ = trained
    cfg = model.save(tmp_path)
    assert (tmp_path / WEIGHTS_FILE).is_file()
    assert cfg == model.config() and cfg["hidden"] == model.hidden
    loaded = SparseAutoencoder.load(tmp_path)
    for a, b in zip(model.encode_topk(data), loaded.encode_topk(data)):
        np.testing.assert_array_equal(a, b)
    rebuilt = SparseAutoencoder.from_config(cfg, model.state_dict())
    np.testing.assert_array_equal(model.encode_topk(data)[1], rebuilt.encode_topk(data)[1])


def test_saved_weights_load_without_pickle(tmp_path, trained):
    trained[0].save(tmp_path)
    with np.load(tmp_path / WEIGHTS_FILE, allow_pickle=False) as archive:
        assert {"b_pre", "encoder.weight", "encoder.bias", "W_dec"} <= set(archive.files)


def test_load_reports_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=WEIGHTS_FILE):
        SparseAutoencoder.load(tmp_path)


def _usage_skew(model: SparseAutoencoder, x: np.ndarray) -> float:
    """hidden * sum_j p_j^2 of activation mass: 1 when every unit carries the same share."""
    units, values = model.encode_topk(x)
    mass = np.bincount(units.reshape(-1), weights=values.reshape(-1), minlength=model.hidden)
    share = mass / mass.sum()
    return float(model.hidden * (share**2).sum())


def test_flops_regulariser_balances_unit_usage(data):
    """Popular units mean long posting lists; the FLOPs term spreads the mass out."""
    plain, _ = train_sparse_autoencoder(data, config=tiny_config(flops_coef=0.0), show_progress=False)
    balanced, _ = train_sparse_autoencoder(data, config=tiny_config(flops_coef=1.0), show_progress=False)
    assert _usage_skew(balanced, data) < 0.8 * _usage_skew(plain, data)
