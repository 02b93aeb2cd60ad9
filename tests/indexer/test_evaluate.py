"""Evaluation reports each budget's quality at the k it is quoted for."""

from vecdial.indexer.eval.evaluate import evaluate
from vecdial.indexer.eval.metrics import recall_at_k
from vecdial.indexer.plan.execute import Searcher


def test_recall_at_10_comes_from_a_k_10_search(demo_collection, demo_vectors):
    searcher = Searcher(demo_collection.open())
    queries = demo_vectors[1][:200]
    (row,) = evaluate(searcher, queries, ["binary:rescore=2"])
    exact = searcher.search(queries, 10, "exact").rows
    assert row.recall_at_10 == recall_at_k(searcher.search(queries, 10, "binary:rescore=2").rows, exact, 10)
    assert row.recall_at_10 < 0.95, "a k=100 search (shortlist 200) would report ~1.0"
