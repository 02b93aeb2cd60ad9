"""Sweep and auto budgets: measured trade-offs, the Pareto front, and picking by target recall."""

import json

import pytest

import vecdial
from vecdial.indexer.disk.sweep_file import read_sweep
from vecdial.indexer.errors import BudgetError
from vecdial.indexer.eval.sweep import refine_budgets, run_sweep, sample_documents
from vecdial.indexer.jobs.create import build_collection
from vecdial.indexer.plan.calibration import SweepPoint, choose, mark_pareto


def point(budget, recall, ms, lower=None, read=0):
    return SweepPoint(
        budget=budget,
        recall_at_10=recall,
        ms_per_query=ms,
        bytes_read_per_vector=read,
        recall_lower=lower,
        queries=None if lower is None else 200,
    )


def test_pareto_front_keeps_only_points_nothing_beats():
    points = mark_pareto([point("a", 0.6, 1.0), point("b", 0.5, 2.0), point("c", 0.9, 3.0), point("d", 1.0, 9.0)])
    assert [p.budget for p in points if p.pareto] == ["a", "c", "d"]


def test_choose_takes_the_fastest_point_meeting_the_target():
    points = [point("a", 0.6, 1.0), point("c", 0.9, 3.0), point("c2", 0.95, 2.5), point("d", 1.0, 9.0)]
    assert choose(points, 0.9).budget == "c2"
    assert choose(points, 0.5).budget == "a"


def test_choose_trusts_the_lower_bound_not_the_mean():
    points = [point("lucky", 0.951, 1.0, lower=0.93), point("sure", 0.97, 2.0, lower=0.955)]
    assert choose(points, 0.95).budget == "sure"
    assert choose(points, 0.93).budget == "lucky"


def test_choose_keeps_within_latency_and_bytes_limits():
    points = [point("fast", 0.9, 0.5, 0.89, read=64), point("big", 0.99, 1.0, 0.985, read=1536), point("slow", 0.99, 5.0, 0.985, read=80)]
    assert choose(points, 0.95).budget == "big"
    assert choose(points, 0.95, max_bytes_per_vector=100).budget == "slow"
    assert choose(points, 0.85, max_latency_ms=0.6).budget == "fast"


def test_no_point_meeting_the_target_is_a_budget_error_naming_the_closest():
    points = [point("a", 0.6, 1.0, 0.55), point("b", 0.8, 2.0, 0.78)]
    with pytest.raises(
        BudgetError, match=r"target_recall=0.99: the closest within those limits is b: recall@10 0.800 \(95% lower bound 0.780"
    ):
        choose(points, 0.99)
    with pytest.raises(BudgetError, match="max_latency_ms=1.5: the closest within those limits is a"):
        choose(points, 0.7, max_latency_ms=1.5)


@pytest.fixture(scope="module")
def swept(tmp_path_factory, demo_dataset):
    from vecdial.indexer.disk.collection import Collection
    from vecdial.indexer.modes.settings import BuildSettings

    collection = Collection(tmp_path_factory.mktemp("sweep"), "demo")
    build_collection(collection, demo_dataset, BuildSettings(), show_progress=False)
    points = vecdial.connect(collection.path.parent).open("demo").sweep(n=150, show_progress=False)
    return collection, points


def test_sampled_documents_are_the_stored_vectors(swept, demo_dataset):
    collection, _ = swept
    version = collection.open()
    rows, vectors = sample_documents(version, 20)
    position = {item: i for i, item in enumerate(demo_dataset.ids.tolist())}  # rows are stored cell by cell
    expected = demo_dataset.vectors[[position[item] for item in version.ids[rows].tolist()]]
    assert abs(vectors - expected).max() < 1e-5


def test_sweep_measures_every_budget_and_exact_is_perfect(swept):
    _, points = swept
    recall = {p.budget: p.recall_at_10 for p in points}
    assert recall["exact"] == 1.0
    assert recall["dense:dim=32"] < recall["dense:dim=128"] < 1.0
    assert recall["binary:rescore=0"] < recall["binary:rescore=10"]
    front = {p.budget for p in points if p.pareto}
    assert "exact" in front or recall["exact"] <= max(p.recall_at_10 for p in points if p.pareto)
    for p in points:  # nothing on the front is beaten on both axes
        if p.budget in front:
            assert not any(q.recall_at_10 > p.recall_at_10 and q.ms_per_query < p.ms_per_query for q in points)


def test_auto_budget_resolves_to_the_swept_choice(swept):
    collection, points = swept
    version = collection.open()
    assert read_sweep(version.path)[0] == tuple(points)
    result = vecdial.connect(collection.path.parent).open("demo").search(sample_documents(version, 3)[1], 10, "auto:target_recall=0.9")
    chosen = choose(points, 0.9)
    assert result.explain.budget == f"auto:target_recall=0.9 -> {chosen.budget}"
    assert chosen.recall_lower >= 0.9 and chosen.queries == 150 and chosen.recall_lower <= chosen.recall_at_10
    assert result.explain.calibration.startswith(f"{chosen.budget}: recall@10 ") and "95% lower bound" in result.explain.calibration


def test_every_swept_point_carries_its_lower_bound(swept):
    _, points = swept
    assert all(0 <= p.recall_lower <= p.recall_at_10 <= 1 and p.queries == 150 for p in points)
    assert any(p.recall_lower < p.recall_at_10 - 0.005 for p in points)  # bounds are not the mean


def test_auto_budget_without_a_sweep_says_how_to_get_one(tmp_path, tiny_dataset):
    from vecdial.indexer.disk.collection import Collection

    collection = Collection(tmp_path, "c")
    build_collection(collection, tiny_dataset, show_progress=False)
    with pytest.raises(BudgetError, match="vecdial sweep"):
        vecdial.connect(tmp_path).open("c").search(tiny_dataset.vectors[:1], 10, "auto")


def test_refinement_bisects_the_knob_between_points_that_bracket_a_target():
    points = [
        point("binary:rescore=5", 0.93, 1.0, 0.92),
        point("binary:rescore=20", 0.97, 2.0, 0.96),
        point("binary:rescore=40", 0.995, 3.0, 0.99),
    ]
    assert refine_budgets(points) == ["binary:rescore=12", "binary:rescore=30"]  # 0.95 lies in 5..20, 0.99 in 20..40
    probed = [point("binary:rescore=10,probe=8", 0.85, 1.0, 0.84), point("binary:rescore=20,probe=8", 0.93, 2.0, 0.92)]
    assert refine_budgets(probed) == ["binary:rescore=15,probe=8"]  # a family keeps its other knobs
    assert refine_budgets([point("dense:dim=64", 0.5, 1.0, 0.5), point("dense:dim=65", 0.95, 1.0, 0.95)]) == []  # nothing between


def test_refinement_bisects_a_graph_walks_breadth_at_one_rescore():
    walked = [
        point("rabitq:rescore=5,ef=64", 0.93, 1.0, 0.92),
        point("rabitq:rescore=5,ef=128", 0.97, 2.0, 0.96),
        point("rabitq:rescore=10,ef=128", 0.98, 2.5, 0.97),
    ]
    assert refine_budgets(walked) == ["rabitq:rescore=5,ef=96"]  # 0.95 lies in ef 64..128 at rescore 5


def test_a_refined_sweep_measures_the_points_between(swept):
    collection, _ = swept
    view = vecdial.connect(collection.path.parent).open("demo")._live.snapshot().view
    queries = sample_documents(view.version, 60)
    grid = ["binary:rescore=0", "binary:rescore=40"]
    points = run_sweep(view, queries[1], grid, queries[0])
    assert [p.budget for p in points][:2] == grid and len(points) > 2  # bisected toward the targets
    assert all(p.budget.startswith("binary:rescore=") for p in points)
    assert run_sweep(view, queries[1], grid, queries[0], max_seconds=0) == []  # bounded: nothing past the deadline


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path, tiny_dataset, monkeypatch):
    import vecdial.indexer.eval.sweep as sweep_module
    from vecdial.indexer.disk.layout import PARTIAL_SWEEP_FILE

    col = vecdial.connect(tmp_path).create("t", vectors=tiny_dataset.vectors, ids=tiny_dataset.ids, show_progress=False)
    budgets = ["binary:rescore=0", "binary:rescore=5", "dense:dim=64", "exact"]
    saved = sweep_module.write_partial

    def killed_after_two(path, key, points):
        saved(path, key, points)
        if len(points) == 2:
            raise KeyboardInterrupt  # the sweep is killed here

    monkeypatch.setattr(sweep_module, "write_partial", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        col.sweep(n=30, budgets=budgets, show_progress=False)
    first_two = json.loads((col._live.snapshot().version.path / PARTIAL_SWEEP_FILE).read_text())["points"]
    monkeypatch.setattr(sweep_module, "write_partial", saved)
    points = col.sweep(n=30, budgets=budgets, show_progress=False)
    assert [p.ms_per_query for p in points[:2]] == [p["ms_per_query"] for p in first_two]  # reused, not measured again
    assert [p.budget for p in points[:4]] == budgets and not (col._live.snapshot().version.path / PARTIAL_SWEEP_FILE).exists()


@pytest.fixture
def graph_binary(tiny_data_dir):
    """The tiny collection reindexed into partitions with its binary codes in an HNSW graph."""
    col = vecdial.connect(tiny_data_dir).open("tiny")
    col.reindex({"partitions": 8, "binary_index": "hnsw"}, wait=True, show_progress=False)
    return col


def test_a_sweep_skips_budgets_the_version_cannot_serve(graph_binary):
    budgets = {p.budget for p in graph_binary.sweep(n=30, show_progress=False)}
    assert "binary:rescore=10" in budgets and "dense:dim=64,probe=0.2" in budgets
    assert not any(b.startswith("binary:") and "probe=" in b for b in budgets)  # probed binary needs the flat index


def test_a_recall_gated_reindex_works_over_a_graph_binary_index(graph_binary):
    status = graph_binary.reindex({"seed": 1}, min_recall=0.5, budget="exact", wait=True, show_progress=False).status
    assert status.state == "succeeded", status.message
    assert graph_binary.sweep_points()[1]  # the new version is swept: auto keeps working
