"""The inverted index over sparse codes: exact cosine of truncated codes at every active budget."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecdial.indexer.stores.sparse import SparseIndex, build_postings


def random_codes(rng, n: int, hidden: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes like an autoencoder's: k distinct units per row, values sorted descending, some zeros."""
    units = np.stack([rng.choice(hidden, k, replace=False) for _ in range(n)]).astype(np.int32)
    values = -np.sort(-rng.random((n, k)).astype(np.float32), axis=1)
    values[:, -1] = np.where(rng.random(n) < 0.2, 0.0, values[:, -1])
    return units, values


def make_index(units, values, hidden) -> SparseIndex:
    arrays = build_postings(units, values, hidden)
    return SparseIndex(*arrays.values(), size=len(units))


def brute_force(doc_units, doc_values, q_units, q_values, active, hidden) -> np.ndarray:
    """(nq, n) cosine of codes with both sides truncated to `active` units."""

    def dense(units, values):
        out = np.zeros((len(units), hidden), dtype=np.float32)
        np.put_along_axis(out, units[:, :active].astype(np.int64), values[:, :active], axis=1)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)

    return dense(q_units, q_values) @ dense(doc_units, doc_values).T


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 12))
def test_index_scores_equal_brute_force_code_cosines_at_any_budget(seed, active):
    rng = np.random.default_rng(seed)
    hidden, k = 64, 12
    units, values = random_codes(rng, 300, hidden, k)
    index = make_index(units, values, hidden)
    q_units, q_values = random_codes(rng, 5, hidden, k)
    rows, scores, bytes_read = index.search(q_units, q_values, active, keep=10)
    expected = brute_force(units, values, q_units, q_values, active, hidden)
    for q in range(5):
        valid = rows[q] >= 0
        np.testing.assert_allclose(scores[q][valid], expected[q, rows[q][valid]], rtol=1e-5)
        top = np.sort(expected[q][expected[q] > 0])[::-1][: valid.sum()]
        np.testing.assert_allclose(np.sort(scores[q][valid])[::-1], top, rtol=1e-5)
    assert bytes_read > 0


def test_a_document_code_round_trips_through_the_index():
    rng = np.random.default_rng(3)
    units, values = random_codes(rng, 500, 256, 16)
    index = make_index(units, values, 256)
    rows, _, _ = index.search(units[:50], values[:50], active=16, keep=1)
    np.testing.assert_array_equal(rows[:, 0], np.arange(50))


def test_smaller_budgets_touch_fewer_postings():
    rng = np.random.default_rng(4)
    units, values = random_codes(rng, 2000, 128, 32)
    index = make_index(units, values, 128)
    read = [index.search(units[:20], values[:20], active, keep=10)[2] for active in (4, 8, 16, 32)]
    assert read == sorted(read) and read[0] * 8 < read[-1]


def test_rank_counts_describe_posting_prefixes():
    units = np.array([[2, 0], [0, 1], [0, 2]], dtype=np.int32)
    values = np.array([[0.9, 0.1], [0.8, 0.7], [0.5, 0.0]], dtype=np.float32)
    arrays = build_postings(units, values, hidden=3)
    indptr, docs, _, rank_cum, inv_norms = arrays.values()
    # unit 0: rank 0 in docs 1 and 2, rank 1 in doc 0; the zero value of doc 2's unit 2 is dropped.
    np.testing.assert_array_equal(docs[indptr[0] : indptr[1]], [1, 2, 0])
    np.testing.assert_array_equal(rank_cum[0], [0, 2, 3])
    np.testing.assert_array_equal(rank_cum[2], [0, 1, 1])
    np.testing.assert_allclose(inv_norms[:, 1], [1 / 0.8, 1 / np.hypot(0.8, 0.7)], rtol=1e-6)


@pytest.mark.parametrize("active", [1, 5])
def test_queries_without_overlap_return_padding(active):
    units = np.array([[0, 1]], dtype=np.int32)
    values = np.array([[1.0, 0.5]], dtype=np.float32)
    index = make_index(units, values, 4)
    rows, scores, _ = index.search(np.array([[2, 3]]), np.array([[1.0, 1.0]], dtype=np.float32), min(active, 2), keep=3)
    assert (rows == -1).all() and np.isneginf(scores).all()
