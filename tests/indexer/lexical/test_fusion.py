"""Fusing ranked lists: RRF and weighted score fusion, checked by hand and on the demo corpus."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.eval.metrics import ndcg_at_k
from vecdial.indexer.plan.fusion import (
    HybridSpec,
    fuse,
    normalized,
    parse_hybrid,
    rrf,
    union_rows,
    weighted,
)


def ranked(rows: list[list[int]], scores: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    rows_a = np.array(rows, dtype=np.int64)
    return rows_a, np.where(rows_a >= 0, np.array(scores, dtype=np.float32), -np.inf)


# --- by hand -------------------------------------------------------------------


def test_rrf_sums_weight_over_rank_plus_c_and_breaks_ties_by_lower_row():
    a = ranked([[1, 2, 3]], [[0.9, 0.8, 0.7]])
    b = ranked([[3, 1, -1]], [[5.0, 4.0, 0.0]])
    rows, scores = rrf([a, b], [1.0, 1.0], k=4, c=60)
    assert rows.tolist() == [[1, 3, 2, -1]]
    assert np.allclose(scores[0, :3], [1 / 61 + 1 / 62, 1 / 63 + 1 / 61, 1 / 62])
    assert np.isneginf(scores[0, 3])
    tied, _ = rrf([ranked([[7]], [[1.0]]), ranked([[4]], [[1.0]])], [1.0, 1.0], k=2)
    assert tied.tolist() == [[4, 7]]


def test_rrf_uses_only_ranks_so_a_signal_weighted_zero_adds_nothing():
    a = ranked([[5, 9, 2]], [[0.3, 0.2, 0.1]])
    b = ranked([[2, 9, 5]], [[900.0, 10.0, 1.0]])
    assert rrf([a, b], [1.0, 0.0], k=3)[0].tolist() == [[5, 9, 2]]
    assert rrf([a, b], [0.0, 1.0], k=3)[0].tolist() == [[2, 9, 5]]


def test_weighted_minmax_scales_each_list_to_0_1_and_a_missing_row_gets_the_floor():
    a = ranked([[1, 2, 3]], [[0.9, 0.5, 0.1]])  # -> 1, 0.5, 0
    b = ranked([[3, 4]], [[10.0, 0.0]])  # -> 1, 0
    rows, scores = weighted([a, b], [0.5, 0.5], k=5, normalize="minmax")
    assert rows.tolist() == [[1, 3, 2, 4, -1]]
    assert np.allclose(scores[0, :4], [0.5, 0.5, 0.25, 0.0])


def test_weighted_zscore_centres_each_list_and_a_single_score_counts_zero():
    a = ranked([[5, 6]], [[3.0, 1.0]])  # mean 2, std 1 -> +1, -1
    b = ranked([[6, -1]], [[7.0, 0.0]])  # one entry -> 0
    rows, scores = weighted([a, b], [1.0, 1.0], k=2, normalize="zscore")
    assert rows.tolist() == [[5, 6]]
    assert np.allclose(scores, [[1.0, -1.0]])  # row 5 is missing from b: b's floor, 0


def test_normalized_ignores_padding_and_handles_an_empty_list():
    rows, scores = ranked([[4, 8, -1], [-1, -1, -1]], [[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert normalized(rows, scores, "minmax").tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


def test_fusion_pads_when_fewer_rows_than_k_and_returns_nothing_for_empty_lists():
    a = ranked([[2, -1], [-1, -1]], [[1.0, 0.0], [0.0, 0.0]])
    b = ranked([[2, 3], [-1, -1]], [[1.0, 0.5], [0.0, 0.0]])
    for fused in (rrf([a, b], [1, 1], k=4), weighted([a, b], [1, 1], k=4)):
        assert fused[0].tolist() == [[2, 3, -1, -1], [-1, -1, -1, -1]]
        assert np.isneginf(fused[1][1]).all() and np.isfinite(fused[1][0, :2]).all()


def test_union_rows_lists_each_candidate_once():
    assert union_rows(np.array([[3, 1, -1]]), np.array([[1, 7]])).tolist() == [[1, 3, 7, -1, -1]]


def test_lists_of_different_shapes_or_weights_are_refused():
    a = ranked([[1, 2]], [[1.0, 0.5]])
    with pytest.raises(InvalidInput, match="one weight per list"):
        rrf([a, a], [1.0], k=2)
    with pytest.raises(InvalidInput, match="shape"):
        rrf([a, (a[0], a[1][:, :1])], [1.0, 1.0], k=2)


# --- the per-query declaration ---------------------------------------------------


def test_a_spec_naming_no_signal_gets_the_measured_default():
    spec = parse_hybrid({})
    assert spec.weights == {"dense": 0.7, "lexical": 0.3} and spec.method == "weighted" and spec.normalize == "zscore"


@pytest.mark.parametrize(
    "spec, weights",
    [
        ({"lexical": 0.5, "method": "rrf"}, {"dense": 0.5, "lexical": 0.5}),
        ({"lexical": 0.3}, {"dense": 0.7, "lexical": 0.3}),
        ({"dense": 0.9}, {"dense": 0.9, "lexical": 0.1}),
        ({"sparse": 0.1}, {"dense": 0.63, "lexical": 0.27, "sparse": 0.1}),
        ({"lexical": 0.5, "sparse": 0.2}, {"dense": 0.3, "lexical": 0.5, "sparse": 0.2}),
    ],
)
def test_the_signals_a_spec_leaves_out_share_the_rest_of_one_as_the_default_does(spec, weights):
    assert parse_hybrid(spec).weights == pytest.approx(weights)


def test_a_spec_giving_one_signal_all_of_one_uses_that_signal_alone():
    assert parse_hybrid({"lexical": 1}).weights == {"lexical": 1.0}
    assert parse_hybrid({"dense": 0}).weights == {"lexical": 1.0}
    assert parse_hybrid({"dense": 0.5, "sparse": 0.5, "method": "rrf"}).weights == {"dense": 0.5, "sparse": 0.5}


def test_named_weights_that_leave_no_signal_for_the_rest_are_scaled_to_sum_to_one():
    assert parse_hybrid({"dense": 0.4, "lexical": 0.1}).weights == pytest.approx({"dense": 0.8, "lexical": 0.2})


def test_sparse_takes_part_only_when_named():
    assert "sparse" not in parse_hybrid({"lexical": 0.2}).weights


def test_the_string_form_parses_to_the_same_spec():
    assert parse_hybrid("lexical=0.3,dense=0.7,method=rrf") == HybridSpec(lexical=0.3, dense=0.7, method="rrf")


@pytest.mark.parametrize(
    "spec, says",
    [
        ({"lexical": -0.1}, "lexical: -0.1 is not a share: a weight is from 0 to 1"),
        ({"lexical": 1e308}, "lexical: 1e+308 is not a share: a weight is from 0 to 1"),
        ({"dense": 0.8, "lexical": 0.8}, "shares of 1 and these sum to 1.6"),
        ({"lexical": True}, "not true/false"),
        ({"dense": float("nan")}, "dense: nan is not a share"),
        ({"lexical": 0, "dense": 0}, "at least one signal"),
        ({"method": "max"}, "method: Input should be 'rrf' or 'weighted'"),
        ({"bm25": 0.3}, "bm25: Extra inputs are not permitted"),
        ({"dense": "lots"}, "dense: Input should be a valid number"),
        ("lexical", "name=value"),
    ],
)
def test_an_invalid_spec_raises_invalid_input_saying_what_is_wrong(spec, says):
    with pytest.raises(InvalidInput, match="invalid hybrid") as raised:
        parse_hybrid(spec)
    assert says in str(raised.value)


def test_fuse_needs_results_for_every_weighted_signal():
    a = ranked([[1]], [[1.0]])
    with pytest.raises(InvalidInput, match="sparse"):
        fuse({"dense": a, "lexical": a}, HybridSpec(dense=0.5, sparse=0.5), k=1)


# --- weights of any size -----------------------------------------------------------

WEIGHTS = st.one_of(st.sampled_from([0.0, 5e-324, 1e-300, 1.0, 1e300, 1e308, 1.7976931348623157e308]), st.floats(0, 1e308))


@settings(deadline=None, max_examples=50)
@given(a=WEIGHTS, b=WEIGHTS, method=st.sampled_from(["rrf", "weighted"]))
def test_any_finite_weights_fuse_to_finite_descending_scores_over_the_input_rows(demo_signals, a, b, method):
    lists, _ = demo_signals
    fused = rrf if method == "rrf" else weighted
    rows, scores = fused([(rows[:100], scores[:100]) for rows, scores in (lists["dense"], lists["lexical"])], [a, b], k=10)
    if a == b == 0:
        return
    assert (rows >= 0).all() and np.isfinite(scores).all()
    assert all(len(set(row)) == 10 for row in rows.tolist())
    assert (scores[:, :-1] >= scores[:, 1:]).all()


@pytest.mark.parametrize("method", ["rrf", "weighted"])
def test_a_weight_that_dwarfs_the_other_gives_back_its_signals_own_ranking(demo_signals, method):
    lists, _ = demo_signals
    fused = rrf if method == "rrf" else weighted
    rows, _ = fused([lists["dense"], lists["lexical"]], [1e308, 1e-300], k=10)
    assert np.array_equal(rows, lists["dense"][0][:, :10])
    rows, _ = fused([lists["dense"], lists["lexical"]], [5e-324, 1e308], k=10)
    full = (lists["lexical"][0][:, :10] >= 0).all(axis=1)  # BM25 found 10: past that, dense fills in
    assert full.sum() > 900 and np.array_equal(rows[full], lists["lexical"][0][full, :10])


def test_weights_scaled_together_rank_the_same(demo_signals):
    lists, _ = demo_signals
    pair = [lists["dense"], lists["lexical"]]
    for fused in (rrf, weighted):
        assert np.array_equal(fused(pair, [0.7, 0.3], k=10)[0], fused(pair, [0.7e300, 0.3e300], k=10)[0])


# --- on the shipped demo corpus ----------------------------------------------------


@pytest.fixture(scope="module")
def demo_signals(demo_corpus, demo_vectors, demo_lexical):
    """Dense (exact cosine) and BM25 top-100 per demo query, and both over their union."""
    docs, queries = demo_vectors
    cosine = queries @ docs.T
    dense_rows = np.argsort(-cosine, axis=1, kind="stable")[:, :100]
    dense = (dense_rows, np.take_along_axis(cosine, dense_rows, axis=1))
    lexical = demo_lexical.search(demo_corpus.query_texts, 100)
    union = union_rows(dense[0], lexical[0])
    union_cosine = np.where(union >= 0, np.take_along_axis(cosine, np.maximum(union, 0), axis=1), -np.inf)
    completed = {"dense": (union, union_cosine), "lexical": (union, demo_lexical.scores_for(demo_corpus.query_texts, union))}
    return {"dense": dense, "lexical": lexical}, completed


def test_fused_rows_come_from_the_input_lists_and_agreeing_first_hits_stay_first(demo_signals):
    lists, _ = demo_signals
    rows, scores = rrf([lists["dense"], lists["lexical"]], [0.5, 0.5], k=10)
    inputs = np.concatenate([lists["dense"][0], lists["lexical"][0]], axis=1)
    assert all(set(r[r >= 0]) <= set(i[i >= 0]) for r, i in zip(rows, inputs))
    agree = lists["dense"][0][:, 0] == lists["lexical"][0][:, 0]
    assert agree.sum() > 50 and (rows[agree, 0] == lists["dense"][0][agree, 0]).all()
    assert (scores[:, :-1] >= scores[:, 1:]).all()


def test_weighting_one_signal_alone_gives_back_its_own_ranking(demo_signals):
    lists, _ = demo_signals
    for method in ("rrf", "weighted"):
        rows, _ = fuse(lists, HybridSpec(dense=1, method=method), k=10)
        assert np.array_equal(rows, lists["dense"][0][:, :10])


@pytest.mark.quality
def test_hybrid_with_the_default_setting_beats_the_better_single_signal_on_the_demo_qrels(demo_signals, demo_corpus):
    lists, completed = demo_signals
    qrels = [demo_corpus.qrels.get(qid, {}) for qid in demo_corpus.query_ids]

    def ndcg(rows: np.ndarray) -> float:
        return ndcg_at_k([[demo_corpus.doc_ids[r] for r in row[:10] if r >= 0] for row in rows], qrels, 10)

    best_single = max(ndcg(lists["dense"][0]), ndcg(lists["lexical"][0]))  # dense 0.598, BM25 0.461
    assert ndcg(fuse(completed, HybridSpec(), k=10)[0]) >= best_single  # measured 0.622
    assert ndcg(fuse(lists, HybridSpec(), k=10)[0]) >= best_single  # without completing the lists: 0.634
