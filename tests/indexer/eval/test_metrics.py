"""Quality metrics on hand-checked cases."""

import numpy as np
import pytest

from vecdial.indexer.eval.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from vecdial.indexer.stores.topk import topk


def test_recall_counts_overlap_with_exact_top_k():
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 3, 9, 9], [5, -1, -1, -1]])
    assert recall_at_k(found, truth, 4) == pytest.approx((2 / 4 + 1 / 4) / 2)


def test_ndcg_and_mrr_reward_the_relevant_document_near_the_top():
    qrels = [{"a": 1}, {"b": 1}, {"c": 1}]
    ranked = [["a", "x"], ["x", "b"], ["x", "y"]]
    assert mrr_at_k(ranked, qrels, 10) == pytest.approx((1 + 0.5 + 0) / 3)
    assert ndcg_at_k(ranked, qrels, 10) == pytest.approx((1 + 1 / np.log2(3) + 0) / 3)


def test_topk_returns_best_first_and_handles_k_beyond_n():
    scores = np.array([[0.1, 0.9, 0.5], [3.0, 2.0, 1.0]], dtype=np.float32)
    rows, best = topk(scores, 2)
    np.testing.assert_array_equal(rows, [[1, 2], [0, 1]])
    rows, best = topk(scores, 10)
    assert rows.shape == (2, 3)
    np.testing.assert_allclose(best[0], [0.9, 0.5, 0.1])
