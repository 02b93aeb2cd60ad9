"""One budget language for the CLI string form and the JSON form."""

import pytest

from vecdial.indexer.errors import BudgetError
from vecdial.indexer.modes.binary import BinaryBudget
from vecdial.indexer.modes.dense import DenseBudget
from vecdial.indexer.modes.sparse import SparseBudget
from vecdial.indexer.plan.budget import FunnelBudget, format_budget, parse_budget


@pytest.mark.parametrize(
    "text",
    [
        "exact",
        "dense:dim=64",
        "binary:rescore=10",
        "binary:rescore=0",
        "sparse:active=32,rescore=5",
        "funnel:binary*40>128*10>full",
        "funnel:sparse16*20>full",
    ],
)
def test_string_form_round_trips(text):
    assert format_budget(parse_budget(text)) == text


def test_string_and_json_forms_agree():
    assert parse_budget("dense:64") == parse_budget({"mode": "dense", "dim": 64}) == DenseBudget(dim=64)
    assert parse_budget("binary") == BinaryBudget(rescore=10)
    assert parse_budget({"mode": "sparse", "active": 8}) == SparseBudget(active=8, rescore=0)
    funnel = parse_budget("funnel:binary*40>128*10>full")
    assert isinstance(funnel, FunnelBudget)
    assert [(s.kind, s.size("dim"), s.keep) for s in funnel.stages] == [("binary", None, 40), ("dense", 128, 10), ("dense", None, None)]


@pytest.mark.parametrize(
    "bad, says",
    [
        ("dense", "dim"),
        ("warp:speed=9", "warp"),
        ("dense:dim=0", "greater than 0"),
        ("binary:rescore=x", "key=number"),
        ("binary:rescore=100000", "less than or equal"),
        ("funnel:teleport", "funnel stage"),
        ({"mode": "dense", "dim": 64, "colour": "red"}, "colour"),
        ("binry:rescore=10", "unknown mode 'binry' \\(did you mean 'binary'\\?\\): use one of exact, dense, binary"),
        ("binary:rescroe=10", "binary has no knob 'rescroe' \\(did you mean 'rescore'\\?\\): it takes rescore, probe"),
        ("exact:dim=64", "exact has no knob 'dim': it takes no knobs"),
        ({"mode": "funnel", "stages": [{"kind": "binary", "dim": 64}]}, "a binary stage has no knob 'dim': it takes keep"),
        ({"mode": "funnel", "stages": [{"kind": "dense", "active": 8}]}, "a dense stage has no knob 'active': it takes dim and keep"),
        ({"mode": "funnel", "stages": [{"kind": "sparse", "active": 0}]}, "active=0 is not valid: use a whole number > 0"),
    ],
)
def test_bad_budgets_fail_with_a_message_naming_the_problem(bad, says):
    with pytest.raises(BudgetError, match=says):
        parse_budget(bad)


def test_a_funnel_stage_is_sized_by_its_own_modes_knob_and_hashes_by_it():
    stages = parse_budget(
        {"mode": "funnel", "stages": [{"kind": "sparse", "active": "16", "keep": 10}, {"kind": "dense", "dim": 64}]}
    ).stages
    assert [(s.kind, s.size("active"), s.size("dim")) for s in stages] == [("sparse", 16, None), ("dense", None, 64)]
    assert hash(parse_budget("funnel:64*10>full")) != hash(parse_budget("funnel:128*10>full"))  # plans are cached by budget
