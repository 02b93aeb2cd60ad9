"""The block store serves any prefix of dims from one copy, scoring like truncation would."""

import numpy as np
import pytest

from vecdial.indexer.codecs.matryoshka import truncate
from vecdial.indexer.stores.blocks import BlockStore, prefix_sq_norms, split_blocks


def make_store(x: np.ndarray, block: int) -> BlockStore:
    return BlockStore(split_blocks(x, block), prefix_sq_norms(x, block), x.shape[1])


@pytest.fixture
def vectors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 70)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("dim", [1, 16, 32, 33, 64, 70])
def test_scan_scores_equal_truncate_then_cosine(vectors, dim):
    store = make_store(vectors, block=16)
    queries = vectors[:7] + 0.05
    rows, scores = store.scan(queries, dim, k=20)
    expected = truncate(queries, dim) @ truncate(vectors, dim).T
    best = np.argsort(-expected, axis=1)[:, :20]
    np.testing.assert_allclose(scores, np.take_along_axis(expected, best, axis=1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(expected, rows, axis=1), scores, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dim", [10, 32, 70])
def test_rescoring_rows_matches_scanning_them(vectors, dim):
    store = make_store(vectors, block=32)
    queries = vectors[:4]
    rows = np.array([[5, 9, 200, -1], [0, 1, 2, 3], [499, 7, 7, 8], [-1, -1, 3, 4]])
    scores = store.score_rows(queries, rows, dim)
    expected = truncate(queries, dim) @ truncate(vectors, dim).T
    valid = rows >= 0
    np.testing.assert_allclose(scores[valid], np.take_along_axis(expected, np.where(valid, rows, 0), axis=1)[valid], rtol=1e-4, atol=1e-5)
    assert np.isneginf(scores[~valid]).all()


def test_bytes_read_follow_the_dim(vectors):
    store = make_store(vectors, block=32)
    assert store.bytes_per_vector(32) == 32 * 4 + 4
    assert store.bytes_per_vector(64) == 64 * 4 + 4
    assert store.bytes_per_vector(33) == store.bytes_per_vector(64)


def test_float16_store_scores_close_to_float32(vectors):
    store32 = make_store(vectors, block=32)
    store16 = BlockStore(split_blocks(vectors, 32).astype(np.float16), prefix_sq_norms(vectors, 32), 70)
    _, s32 = store32.scan(vectors[:5], 70, k=5)
    _, s16 = store16.scan(vectors[:5], 70, k=5)
    np.testing.assert_allclose(s16, s32, atol=2e-3)
