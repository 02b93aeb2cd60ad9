"""Codecs are pure functions of arrays: their properties hold for any input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vecdial.indexer.codecs.binary import code_bytes_for, fit_binary, unpack
from vecdial.indexer.codecs.matryoshka import truncate
from vecdial.indexer.codecs.rotation import fit_pca_rotation

finite = st.floats(-10, 10, allow_nan=False, width=32)


@given(arrays(np.float32, st.tuples(st.integers(1, 20), st.integers(2, 40)), elements=finite), st.data())
def test_truncation_keeps_prefix_direction_with_unit_norm(x, data):
    dim = data.draw(st.integers(1, x.shape[1]))
    out = truncate(x, dim)
    norms = np.linalg.norm(x[:, :dim], axis=1)
    nonzero = norms > 1e-3
    assert out.shape == (len(x), dim)
    np.testing.assert_allclose(np.linalg.norm(out[nonzero], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out[nonzero] * norms[nonzero, None], x[nonzero, :dim], rtol=1e-4, atol=1e-4)


@given(arrays(np.float32, st.tuples(st.integers(1, 30), st.integers(1, 70)), elements=finite))
def test_binary_codes_pack_and_unpack_to_the_same_bits(x):
    codec = fit_binary(x, center=False)
    codes = codec.encode(x)
    assert codes.dtype == np.uint8 and codes.shape == (len(x), code_bytes_for(x.shape[1]))
    np.testing.assert_array_equal(unpack(codes, x.shape[1]), x > 0)
    assert not unpack(codes, codes.shape[1] * 8)[:, x.shape[1] :].any(), "padding bits must be zero"


@pytest.mark.parametrize("dim, width", [(8, 4), (100, 16), (384, 64), (768, 96), (1024, 128)])
def test_codes_are_padded_to_widths_with_fast_hamming_kernels(dim, width):
    assert code_bytes_for(dim) == width


def test_centred_binary_splits_every_dim_evenly(demo_vectors):
    docs, _ = demo_vectors
    codec = fit_binary(docs, center=True)
    ones = unpack(codec.encode(docs), docs.shape[1]).mean(axis=0)
    assert np.abs(ones - 0.5).max() < 0.01


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(4, 48))
def test_pca_rotation_is_orthonormal_and_preserves_scores(seed, dim):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((200, dim)).astype(np.float32) * rng.uniform(0.1, 3, dim).astype(np.float32)
    rotation = fit_pca_rotation(x)
    np.testing.assert_allclose(rotation.matrix.T @ rotation.matrix, np.eye(dim), atol=1e-5)
    rx = rotation.apply(x)
    np.testing.assert_allclose(rx @ rx[:10].T, x @ x[:10].T, rtol=1e-3, atol=1e-3)


def test_pca_rotation_puts_variance_first(demo_vectors):
    docs, _ = demo_vectors
    rotated = fit_pca_rotation(docs).apply(docs)
    variance = rotated.var(axis=0)
    assert (np.diff(variance) <= 1e-6).all()
    assert variance[:64].sum() > 2 * docs.var(axis=0)[:64].sum()


def test_pca_rotation_is_deterministic():
    x = np.random.default_rng(1).standard_normal((300, 16)).astype(np.float32)
    np.testing.assert_array_equal(fit_pca_rotation(x).matrix, fit_pca_rotation(x.copy()).matrix)
