"""The one executor: exact means exact, parts merge into one ranking, deletions never cost hits,
and single queries stay on one native thread."""

import dataclasses
import re
import threading

import faiss
import numpy as np
import pytest

from vecdial.indexer.modes import MODES
from vecdial.indexer.plan.execute import View, search

FUNNELS = ["funnel:binary*20>128*4>full", "funnel:rabitq*20>128*4>full"]  # stages over the modes: not a mode of their own


@pytest.fixture(scope="module")
def view(demo_collection):
    version = demo_collection.open()
    return View(version, version.name)


def test_exact_equals_brute_force_cosine_on_real_vectors(view, demo_dataset, demo_vectors, same_knn):
    queries = demo_vectors[1][:50]
    hits = search(view, queries, k=10, budget="exact")
    docs = np.asarray(demo_dataset.vectors)
    brute = queries @ docs.T
    best = np.argsort(-brute, axis=1)[:, :10]
    same_knn(demo_dataset.ids[best], np.take_along_axis(brute, best, axis=1), hits.ids, hits.scores, atol=1e-5)


@pytest.mark.parametrize("mode", [*MODES, "funnel"])
def test_hits_are_best_first_with_one_row_per_query(view, demo_collection, demo_vectors, mode, mode_budgets):
    for budget in FUNNELS if mode == "funnel" else mode_budgets(demo_collection, mode):
        hits = search(view, demo_vectors[1][:20], k=7, budget=budget)
        assert hits.ids.shape == hits.scores.shape == (20, 7), budget
        assert (np.diff(hits.scores, axis=1) <= 1e-6).all(), budget
        assert (hits.found == 7).all() and len(hits) == 20 and len(hits[3]) == 7, budget


@pytest.mark.parametrize("budget", ["exact", "funnel:binary*20>128*4>full"])
def test_explain_as_a_dict_carries_every_field(view, demo_vectors, budget):
    explain = search(view, demo_vectors[1][:2], k=5, budget=budget).explain
    every = dataclasses.asdict(explain)
    assert every.pop("shards") is None and every.pop("partial") is None  # a sharded collection's fields, written only there
    assert explain.to_dict() == every
    assert len(explain.to_dict()["stages"]) == len(explain.stages) >= 1


@pytest.mark.parametrize("mode", [*MODES, "funnel"])
def test_a_stored_vector_finds_itself_first_in_every_mode(view, demo_collection, demo_dataset, mode, mode_budgets):
    for budget in FUNNELS if mode == "funnel" else mode_budgets(demo_collection, mode):
        assert search(view, demo_dataset.vectors[123], k=1, budget=budget).ids[0, 0] == demo_dataset.ids[123], budget


def test_k_above_the_collection_size_returns_every_item_once(tiny_data_dir, live):
    hits = live.search(np.asarray(live.snapshot().version.dense.blocks[0, 0:1, :1].repeat(384, axis=1)) + 0.01, k=1000)
    assert hits.found[0] == 300 and len(set(hits.id_lists()[0])) == 300


def test_a_single_query_never_starts_a_thread_team(view, demo_vectors):
    seen = []

    def one_query() -> None:
        faiss.omp_set_num_threads(2)
        search(view, demo_vectors[1][0], k=10, budget="binary:rescore=10")
        seen.append(faiss.omp_get_max_threads())
        search(view, demo_vectors[1][:64], k=10, budget="exact", threads=2)
        seen.append(faiss.omp_get_max_threads())

    worker = threading.Thread(target=one_query)
    worker.start()
    worker.join()
    assert seen == [1, 1], "one query runs on one thread; a batch's threads are given back"


def test_a_batch_with_threads_answers_like_one_thread(view, demo_vectors):
    queries = demo_vectors[1][:200]
    one = search(view, queries, k=10, budget="binary:rescore=10")
    two = search(view, queries, k=10, budget="binary:rescore=10", threads=2)
    assert one.id_lists() == two.id_lists()


@pytest.mark.parametrize("mode", MODES)
def test_every_sweep_point_of_every_mode_finds_exacts_hits_and_scores_rescored_ones_exactly(
    view, demo_collection, demo_dataset, demo_vectors, mode, mode_budgets
):
    """The registry's sweep budgets on 20 real queries: most of exact's top 10 found, and a budget
    that rescores (rescore >= 1) gives each hit its exact cosine."""
    queries = demo_vectors[1][:20]
    truth = search(view, queries, k=10, budget="exact").id_lists()
    row_of = {item: row for row, item in enumerate(demo_dataset.ids.tolist())}
    docs = np.asarray(demo_dataset.vectors)
    for budget in mode_budgets(demo_collection, mode, "sweep"):
        hits = search(view, queries, k=10, budget=budget)
        found = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hits.id_lists(), truth)])
        assert found >= 0.5, (budget, found)
        if budget == "exact" or re.search(r"rescore=[1-9]", budget):
            rows = np.vectorize(row_of.get)(hits.ids)
            np.testing.assert_allclose(hits.scores, np.einsum("qd,qkd->qk", queries, docs[rows]), atol=1e-5, err_msg=budget)


@pytest.mark.parametrize(("budget", "floor"), [("rabitq:rescore=0", 0.7), ("rabitq:rescore=2", 0.88), ("rabitq:rescore=4", 0.94)])
def test_rabitq_shortlists_find_exacts_hits_at_their_measured_recall(view, demo_vectors, same_knn, budget, floor):
    """Measured on all 1,000 demo queries: 0.78, 0.95 and 0.99 (tests/quality/test_rabitq_quality.py);
    here 100 of them, with room for the sample."""
    queries = demo_vectors[1][:100]
    truth = search(view, queries, k=10, budget="exact").id_lists()
    found = search(view, queries, k=10, budget=budget).id_lists()
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]) >= floor
