"""A reindex with `min_recall` swaps in only a version whose calibrated recall meets it, and
leaves every reindexed version swept, so `auto` keeps working."""

import pytest

import vecdial
from vecdial.indexer.disk.sweep_file import read_sweep
from vecdial.indexer.errors import BudgetError, InvalidInput
from vecdial.indexer.jobs.reindex import start_reindex


@pytest.fixture
def col(tiny_data_dir):
    return vecdial.connect(tiny_data_dir).open("tiny")


def test_a_version_meeting_the_gate_is_swapped_in_with_its_sweep(col, tiny_dataset):
    job = col.reindex({"dtype": "float16"}, min_recall=0.5, budget="binary:rescore=20", wait=True, show_progress=False)
    assert job.status.state == "succeeded" and "recall gate met: binary:rescore=20: recall@10" in job.status.message
    assert col.info().version == "v000002" and col.info().settings["dtype"] == "float16"
    points, source = read_sweep(col._live.snapshot().version.path)
    assert "at reindex" in source and any(p.budget == "binary:rescore=20" for p in points)
    assert col.search(tiny_dataset.vectors[0], k=1, budget="auto:target_recall=0.5").explain.calibration


def test_a_version_missing_the_gate_is_discarded_and_the_old_one_keeps_serving(col, tiny_data_dir):
    job = col.reindex({"rotation": "identity"}, min_recall=0.999, budget="dense:dim=8", show_progress=False)
    with pytest.raises(vecdial.JobFailed):
        job.wait(show_progress=False)
    assert job.status.state == "failed"
    assert (
        "misses min_recall=0.999: dense:dim=8: recall@10" in job.status.message and "previous version keeps serving" in job.status.message
    )
    assert col.info().version == "v000001" and col.info().settings["rotation"] == "pca"
    assert sorted(p.name for p in (tiny_data_dir / "tiny" / "versions").iterdir()) == ["v000001"]


def test_a_swept_collection_stays_swept_after_a_plain_reindex(col, tiny_dataset):
    col.sweep(n=40, budgets=["binary:rescore=5", "exact"], show_progress=False)
    col.reindex({"block": 64}, wait=True, show_progress=False)
    assert col.info().version == "v000002" and col.info().swept_on.startswith("pseudo-queries")  # the default calibration
    hits = col.search(tiny_dataset.vectors[0], k=3, budget="auto:target_recall=0.9")
    assert hits.found[0] == 3 and hits.explain.version == "v000002"
    assert hits.explain.budget.startswith("auto:target_recall=0.9 -> ") and hits.explain.calibration is not None


@pytest.mark.parametrize(
    "kwargs, error",
    [({"min_recall": 1.5}, InvalidInput), ({"min_recall": 0.9, "budget": "nope:1"}, BudgetError), ({"budget": "auto:0.9"}, InvalidInput)],
)
def test_bad_gates_are_refused_before_anything_starts(tiny_data_dir, kwargs, error):
    with pytest.raises(error):
        start_reindex(tiny_data_dir, "tiny", {}, **kwargs)
