"""Per-query `auto`: each query's budget chosen from its own difficulty (its margin over the
partition centroids), calibrated per difficulty bin, checked against exact search on the demo's
real queries (which the pseudo-query calibration never saw)."""

import dataclasses
import json

import numpy as np
import pytest

import vecdial
from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.disk.layout import sweep_file
from vecdial.indexer.disk.sweep_file import read_bins, read_sweep, write_sweep
from vecdial.indexer.eval.metrics import recall_at_k
from vecdial.indexer.jobs.create import build_collection
from vecdial.indexer.modes.settings import BuildSettings
from vecdial.indexer.plan.calibration import SweepPoint
from vecdial.indexer.plan.per_query import BIN_SLACK, QueryBins, make_bins, plan_per_query

BUDGETS = [
    "binary:rescore=0",
    "binary:rescore=2",
    "binary:rescore=5",
    "binary:rescore=10",
    "binary:rescore=20",
    "rabitq:rescore=2",
    "binary:rescore=20,probe=0.1",
    "binary:rescore=40,probe=0.3",
    "exact",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory, demo_dataset):
    """The demo built with the defaults (partitioned) and swept on its default calibration
    (pseudo-queries), its latencies then replaced by bytes read per vector / 100: a cost that
    does not depend on how busy the machine is, so the choices below are the same every run."""
    root = tmp_path_factory.mktemp("per-query")
    build_collection(Collection(root, "demo"), demo_dataset, BuildSettings(), show_progress=False)
    handle = vecdial.connect(root).open("demo")
    handle.sweep(n=300, budgets=BUDGETS, show_progress=False)
    path = handle._live.snapshot().version.path
    points, source = read_sweep(path)
    steady = [dataclasses.replace(p, ms_per_query=round(p.bytes_read_per_vector / 100, 4)) for p in points]
    write_sweep(path, steady, source, read_bins(path))
    return vecdial.connect(root).open("demo")


@pytest.fixture(scope="module")
def truth(demo, demo_vectors):
    return demo.search(demo_vectors[1], k=10, budget="exact").id_lists()


@pytest.mark.parametrize("target", [0.9, 0.95, 0.99])
def test_held_out_real_queries_get_the_target_on_average(demo, demo_vectors, truth, target):
    hits = demo.search(demo_vectors[1], k=10, budget=f"auto:target_recall={target},per_query=1")
    assert recall_at_k(hits.id_lists(), truth, 10) >= target


def test_a_batch_mixes_budgets_by_the_queries_difficulty(demo, demo_vectors):
    hits = demo.search(demo_vectors[1], k=10, budget="auto:target_recall=0.95,per_query=1")
    spent = hits.explain.per_query
    assert len({q["budget"] for q in spent}) > 1 and hits.explain.budget.startswith("auto:target_recall=0.95,per_query=1 -> per query: ")
    budgets_of_bin: dict[int, set] = {}
    for q in spent:
        budgets_of_bin.setdefault(q["bin"], set()).add(q["budget"])
    assert all(len(budgets) == 1 for budgets in budgets_of_bin.values())  # a bin's queries spend alike


def test_a_batch_answers_as_its_queries_one_at_a_time(demo, demo_vectors):
    queries = demo_vectors[1][:60]
    batch = demo.search(queries, k=10, budget="auto:target_recall=0.95,per_query=1")
    for q, query in enumerate(queries):
        alone = demo.search(query, k=10, budget="auto:target_recall=0.95,per_query=1")
        assert alone.ids[0].tolist() == batch.ids[q].tolist()
        np.testing.assert_allclose(alone.scores[0], batch.scores[q], rtol=1e-5)
        assert alone.explain.per_query == [batch.explain.per_query[q]]


def test_explain_says_per_query_what_was_spent_and_the_recall_expected(demo, demo_vectors):
    hits = demo.search(demo_vectors[1][:5], k=10, budget="auto:target_recall=0.95,per_query=1")
    assert len(hits.explain.per_query) == 5
    for q, spent in enumerate(hits.explain.per_query):
        assert set(spent) == {"budget", "bin", "margin", "expected_recall"}
        assert spent["expected_recall"] >= 0.95 - BIN_SLACK
        alone = demo.search(demo_vectors[1][q], k=10, budget="auto:target_recall=0.95,per_query=1").explain
        assert alone.budget == f"auto:target_recall=0.95,per_query=1 -> {spent['budget']}"
    assert "per query by difficulty" in hits.explain.calibration and "calibrated on pseudo-queries" in hits.explain.calibration


def test_explain_per_query_travels_in_the_json_shape(demo, demo_vectors):
    body = json.loads(json.dumps(demo.search(demo_vectors[1][:2], k=3, budget="auto:target_recall=0.9,per_query=1").to_dict()))
    assert [set(q) for q in body["explain"]["per_query"]] == [{"budget", "bin", "margin", "expected_recall"}] * 2


def test_a_sweep_from_before_bins_still_serves_auto_with_one_budget(demo, demo_vectors):
    path = demo._live.snapshot().version.path
    saved = sweep_file(path).read_text()
    old = json.loads(saved)
    old.pop("bins")
    for point in old["points"]:
        point.pop("bin_recall"), point.pop("bin_sd")
    try:
        sweep_file(path).write_text(json.dumps(old))
        fresh = vecdial.connect(demo._live.collection.path.parent).open("demo")  # reads the sweep anew
        hits = fresh.search(demo_vectors[1][:20], k=10, budget="auto:target_recall=0.95,per_query=1")
        assert hits.explain.per_query is None and " -> per query" not in hits.explain.budget
        assert "calibrated on pseudo-queries" in hits.explain.calibration
    finally:
        sweep_file(path).write_text(saved)


def point(budget, ms, bins, factor=1.0):
    mean = float(np.mean(bins))
    return SweepPoint(
        budget, mean, ms, 0.0, recall_lower=mean, queries=400, miss_factor=factor, bin_recall=tuple(bins), bin_sd=(0.0,) * len(bins)
    )


BINS = QueryBins(8, (0.1,), (200, 200))


def test_easy_queries_get_the_cheap_budget_and_hard_ones_the_dear():
    points = [point("cheap", 1.0, [0.80, 0.99]), point("dear", 3.0, [0.99, 1.0])]
    fixed = points[1]  # the only one meeting 0.95 on average
    chosen = plan_per_query(points, BINS, 0.95, fixed)
    assert [p.budget for p in chosen.points] == ["dear", "cheap"] and chosen.ms == 2.0


def test_no_bin_is_left_far_below_the_target_for_the_others_to_make_up():
    points = [point("cheap", 1.0, [0.90, 1.0]), point("dear", 3.0, [0.99, 1.0])]
    chosen = plan_per_query(points, BINS, 0.95, points[1])
    assert chosen.points[0].budget == "dear"  # 0.90 is more than BIN_SLACK below 0.95, though the mean is 0.95


def test_one_budget_for_all_when_per_query_is_not_faster():
    points = [point("even", 1.0, [0.96, 0.96]), point("dear", 3.0, [0.99, 1.0])]
    assert plan_per_query(points, BINS, 0.95, points[0]) is None


def test_auto_without_per_query_runs_one_budget_for_all(demo, demo_vectors):
    hits = demo.search(demo_vectors[1][:50], k=10, budget="auto:target_recall=0.95")
    assert hits.explain.per_query is None and " -> per query" not in hits.explain.budget


def test_no_bins_no_per_query():
    assert plan_per_query([point("a", 1.0, [0.99, 0.99])], None, 0.9, None) is None


def test_too_few_partitions_make_no_bins(demo_vectors):
    class Few:
        count = 4

    assert make_bins(Few(), demo_vectors[1][:300]) is None
