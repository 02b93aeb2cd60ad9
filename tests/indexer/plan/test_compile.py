"""Compiling budgets into plans: one candidate stage, then rescoring stages, checked before any work."""

import pytest

from vecdial.indexer.errors import BudgetError
from vecdial.indexer.plan.budget import parse_budget
from vecdial.indexer.plan.compile import compile_plan


@pytest.fixture(scope="module")
def version(demo_collection):
    return demo_collection.open()


def plan(budget: str, version, k: int = 10) -> list[tuple]:
    return [(s.mode, s.size, s.keep, s.rescore) for s in compile_plan(parse_budget(budget), version, k)]


def test_exact_is_one_full_dense_scan(version):
    assert plan("exact", version) == [("dense", 384, 10, False)]


def test_binary_shortlists_k_times_rescore_then_rescores_at_full_dim(version):
    assert plan("binary:rescore=10", version, k=5) == [("binary", 384, 50, False), ("dense", 384, 5, True)]


def test_binary_without_rescoring_is_the_hamming_order_alone(version):
    assert plan("binary:rescore=0", version) == [("binary", 384, 10, False)]


def test_a_funnel_grows_dims_stage_by_stage(version):
    assert plan("funnel:binary*20>128*4>full", version) == [
        ("binary", 384, 200, False),
        ("dense", 128, 40, True),
        ("dense", 384, 10, True),
    ]


def test_labels_name_each_stage_as_explain_shows_it(version):
    labels = [s.label for s in compile_plan(parse_budget("funnel:binary*20>64*4>full"), version, 10)]
    assert labels == ["binary:bits=384", "rescore:dim=64", "rescore:dim=384"]


@pytest.mark.parametrize(
    "budget, says",
    [
        ("dense:dim=385", "dim=385 is out of range"),
        ("funnel:binary*4>binary", "only the first stage"),
        ("sparse:active=8", "no sparse codes"),
        ("funnel:600*2>full", "dim=600 is out of range"),
    ],
)
def test_budgets_this_version_cannot_serve_fail_before_any_work(version, budget, says):
    with pytest.raises(BudgetError, match=says):
        compile_plan(parse_budget(budget), version, 10)


def test_auto_must_be_resolved_first(version):
    with pytest.raises(BudgetError, match="resolved"):
        compile_plan(parse_budget("auto:target_recall=0.9"), version, 10)
