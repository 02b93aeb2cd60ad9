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
    rows, scores, _ = store.scan(queries, dim, k=20)
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
    _, s32, _ = store32.scan(vectors[:5], 70, k=5)
    _, s16, _ = store16.scan(vectors[:5], 70, k=5)
    np.testing.assert_allclose(s16, s32, atol=2e-3)


@pytest.mark.parametrize("dim", [64, 70, 200, 384])
def test_a_one_query_scan_skips_blocks_yet_returns_what_scoring_every_block_does(demo_vectors, dim, same_knn):
    """Real PCA-rotated MiniLM rows: the one-query pass drops rows whose bound falls below its
    running top k; the batch pass scores every block of every row. Both give the same top k."""
    from vecdial.indexer.codecs.rotation import fit_pca_rotation
    from vecdial.indexer.stores.alive import AliveRows

    docs, queries = demo_vectors
    rotation = fit_pca_rotation(docs)
    store = make_store(rotation.apply(docs), block=32)
    dead = np.zeros(len(docs), dtype=bool)
    dead[::7] = True
    for alive in (None, AliveRows(dead)):
        batch_rows, batch_scores, every_byte = store.scan(rotation.apply(queries[:40]), dim, k=10, alive=alive)
        for q, query in enumerate(rotation.apply(queries[:40])):
            rows, scores, read = store.scan(query[None], dim, k=10, alive=alive)
            same_knn(batch_rows[q : q + 1], batch_scores[q : q + 1], rows, scores, atol=1e-6)
            assert read < every_byte if dim > 32 else read <= every_byte


def test_pruning_never_drops_a_row_that_rises_into_the_top_k_through_a_nearly_empty_tail(demo_vectors, same_knn):
    """Rows built from real PCA-rotated queries to sit just above the k-th score, their first two
    blocks just below it and their later blocks nearly zero: |x_rest|^2 = |x|^2 - |x_head|^2
    cancels to 0 in float32, so a bound without slack is the partial score alone and drops them."""
    from vecdial.indexer.codecs.rotation import fit_pca_rotation

    docs, queries = demo_vectors
    rotation = fit_pca_rotation(docs)
    rotated, head = rotation.apply(docs), 64
    for query in rotation.apply(queries[:12]):
        kth = np.sort(rotated @ query / np.linalg.norm(query))[-10]
        q_head, q_tail = query[:head], query[head:]
        across = np.where(np.arange(head) % 2 == 0, 1.0, -1.0)
        across -= across @ q_head / (q_head @ q_head) * q_head
        for tail in (3e-5, 1e-4, 3e-4):
            gap = tail * np.linalg.norm(q_tail) / (2 * np.linalg.norm(query))  # partial score kth - gap, final kth + gap
            along = (kth - gap) * np.linalg.norm(query) / np.linalg.norm(q_head)
            row = np.concatenate(
                [along * q_head / np.linalg.norm(q_head) + np.sqrt(1 - along**2 - tail**2) * across / np.linalg.norm(across)]
                + [tail * q_tail / np.linalg.norm(q_tail)]
            )
            x = np.vstack([rotated, row[None]]).astype(np.float32)
            exact = x.astype(np.float64) @ query / np.linalg.norm(x.astype(np.float64), axis=1) / np.linalg.norm(query)
            best = np.argsort(-exact, kind="stable")[:10]
            assert len(rotated) in best  # the built row is in the exact top k
            rows, scores, _ = make_store(x, block=32).scan(query[None], 384, k=10)
            same_knn(best[None], exact[best][None], rows, scores, atol=1e-5)
