"""Evaluation reports each budget's quality at the k it is quoted for."""

from vecdial.indexer.eval.metrics import recall_at_k


def test_recall_at_10_comes_from_a_k_10_search(demo_collection, demo_vectors, handle):
    demo = handle(demo_collection)
    queries = demo_vectors[1][:200]
    (row,) = demo.evaluate(queries, ["binary:rescore=2"])
    exact = demo.search(queries, 10, "exact").id_lists()
    assert row.recall_at_10 == recall_at_k(demo.search(queries, 10, "binary:rescore=2").id_lists(), exact, 10)
    assert row.recall_at_10 < 0.95, "a k=100 search (shortlist 200) would report ~1.0"
