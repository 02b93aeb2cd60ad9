"""End-to-end quality on the shipped corpus: real MiniLM vectors, real relevance judgments.

Floors sit a little below what was measured (2,032 docs, 1,000 queries, k=10),
so a regression fails while float noise does not. Measured with PCA rotation:
recall@10 vs exact: dense 256 0.979, 128 0.876, 64 0.735, 32 0.554;
binary alone 0.640, rescore=4 0.931, rescore=10 0.988; funnel binary*20>128*4 0.996.
Plain truncation: 128 0.649, 64 0.480, 32 0.299. nDCG@10 exact 0.598.
"""

import numpy as np
import pytest

from vecdial.indexer.eval.metrics import ndcg_at_k, recall_at_k

pytestmark = pytest.mark.quality  # measured floors: the slower set, which CI runs too


@pytest.fixture(scope="module")
def queries(demo_vectors):
    return demo_vectors[1]


@pytest.fixture(scope="module")
def qrels(demo_corpus):
    return [demo_corpus.qrels[q] for q in demo_corpus.query_ids]


@pytest.fixture(scope="module")
def rotated(demo_collection, handle):
    return handle(demo_collection)


@pytest.fixture(scope="module")
def plain(plain_demo_collection, handle):
    return handle(plain_demo_collection)


@pytest.fixture(scope="module")
def exact_rows(rotated, queries):
    return rotated.search(queries, k=10, budget="exact").id_lists()


def recall(searcher, queries, exact_rows, budget) -> float:
    return recall_at_k(searcher.search(queries, k=10, budget=budget).id_lists(), exact_rows, 10)


def test_exact_search_agrees_with_brute_force_cosine(rotated, queries, demo_vectors, demo_corpus, exact_rows):
    docs = demo_vectors[0]
    brute = np.asarray(demo_corpus.doc_ids)[np.argsort(-(queries @ docs.T), axis=1)[:, :10]].tolist()
    assert recall_at_k(exact_rows, brute, 10) > 0.999


def test_exact_search_finds_relevant_documents(rotated, queries, qrels):
    assert ndcg_at_k(rotated.search(queries, k=10, budget="exact").id_lists(), qrels) >= 0.58


def test_more_dims_never_recall_less(rotated, queries, exact_rows):
    by_dim = [recall(rotated, queries, exact_rows, f"dense:dim={d}") for d in (384, 256, 64)]
    assert by_dim == sorted(by_dim, reverse=True)
    assert by_dim[0] == pytest.approx(1.0)


@pytest.mark.parametrize("dim, floor", [(256, 0.96), (128, 0.85), (64, 0.70), (32, 0.52)])
def test_rotated_truncation_recall_floors(rotated, queries, exact_rows, dim, floor):
    assert recall(rotated, queries, exact_rows, f"dense:dim={dim}") >= floor


@pytest.mark.parametrize("dim", [32, 64, 128])
def test_pca_rotation_beats_plain_truncation_on_minilm(rotated, plain, queries, exact_rows, qrels, dim):
    """MiniLM is not Matryoshka-trained: its raw prefixes are poor, the rotated ones are not."""
    budget = f"dense:dim={dim}"
    assert recall(rotated, queries, exact_rows, budget) >= recall(plain, queries, exact_rows, budget) + 0.15
    assert ndcg_at_k(rotated.search(queries, 10, budget).id_lists(), qrels) > ndcg_at_k(plain.search(queries, 10, budget).id_lists(), qrels)


def test_rescoring_never_ranks_worse_than_the_shortlist_alone(rotated, queries, exact_rows):
    alone = recall(rotated, queries, exact_rows, "binary:rescore=0")
    rescored = [recall(rotated, queries, exact_rows, f"binary:rescore={m}") for m in (1, 4, 10)]
    assert alone <= rescored[0] <= rescored[1] <= rescored[2]


def test_rescoring_keeps_the_best_of_the_shortlist_per_query(rotated, queries):
    """Per query: the rescored top-k is the exact top-k of the Hamming shortlist."""
    version = rotated._live.snapshot().version
    shortlist = version.store("binary").store.search(version.store("binary").codec.encode(queries), 40)[0]
    rescored = rotated.search(queries, k=10, budget="binary:rescore=4")
    docs = version.rotation.apply(queries)
    for q in range(0, len(queries), 50):
        full = np.asarray(version.dense.score_rows(docs[q : q + 1], shortlist[q : q + 1], version.dim))[0]
        expected = shortlist[q][np.argsort(-full, kind="stable")[:10]]
        assert set(rescored.ids[q].tolist()) == set(version.ids[expected].tolist())


@pytest.mark.parametrize(
    "budget, floor",
    [("binary:rescore=0", 0.60), ("binary:rescore=4", 0.90), ("binary:rescore=10", 0.97), ("funnel:binary*20>128*4>full", 0.98)],
)
def test_binary_recall_floors(rotated, queries, exact_rows, budget, floor):
    assert recall(rotated, queries, exact_rows, budget) >= floor


def test_binary_rescoring_recovers_exact_relevance(rotated, queries, qrels):
    exact = ndcg_at_k(rotated.search(queries, 10, "exact").id_lists(), qrels)
    assert ndcg_at_k(rotated.search(queries, 10, "binary:rescore=10").id_lists(), qrels) >= exact - 0.005


def test_explain_reports_bytes_that_follow_the_budget(rotated, queries):
    full = rotated.search(queries[:2], 10, "exact").explain.stages[0].bytes_read
    dim64 = rotated.search(queries[:2], 10, "dense:dim=64").explain.stages[0].bytes_read
    assert dim64 / full == pytest.approx(64 / 384, rel=0.05)


def test_one_query_scans_skip_blocks_that_cannot_reach_the_top_k_and_stay_exact(rotated, queries, demo_vectors, demo_corpus):
    docs, ids = demo_vectors[0], np.asarray(demo_corpus.doc_ids)
    every_block = rotated.search(queries[:2], 10, "exact").explain.stages[0].bytes_read
    for query in queries[:200]:
        hits = rotated.search(query, 10, "exact")
        scores = docs @ query
        assert hits.explain.stages[0].bytes_read < 0.7 * every_block
        assert hits.id_lists()[0] == ids[np.argsort(-scores, kind="stable")[:10]].tolist() or np.allclose(
            np.sort(scores)[-10:][::-1], hits.scores[0], atol=1e-5
        )
