"""Calibration: the query-gap correction `auto` counts on, and the 422 when nothing fits."""

import pytest

from vecdial.indexer.errors import BudgetError
from vecdial.indexer.plan.calibration import SweepPoint, choose


def point(budget, lower, ms, read=0.0, factor=1.0):
    return SweepPoint(
        budget=budget,
        recall_at_10=min(lower + 0.01, 1.0),
        ms_per_query=ms,
        bytes_read_per_vector=read,
        recall_lower=lower,
        queries=300,
        miss_factor=factor,
    )


def test_a_miss_factor_scales_the_misses_auto_counts_on():
    assert point("b", 0.98, 1.0, factor=3.0).trusted_recall == pytest.approx(0.94)
    assert point("b", 0.98, 1.0).trusted_recall == pytest.approx(0.98)
    assert point("b", 0.5, 1.0, factor=3.0).trusted_recall == 0.0  # never below zero


def test_auto_chooses_by_the_corrected_bound():
    points = [point("cheap", 0.97, 1.0, factor=3.0), point("dear", 0.99, 2.0, factor=3.0)]
    assert choose(points, 0.95).budget == "dear"  # 0.97 on documents is 0.91 on real queries
    assert choose(points, 0.9).budget == "cheap"


def test_the_correction_is_stated_where_the_point_is_described():
    assert "0.940 expected on real queries (misses x3: the query-gap correction)" in point("b", 0.98, 1.0, factor=3.0).describe()
    assert "expected on real queries" not in point("b", 0.98, 1.0).describe()


def test_nothing_within_a_latency_limit_names_the_fastest_point():
    points = [point("fast", 0.9, 0.5), point("slow", 0.99, 5.0)]
    with pytest.raises(
        BudgetError,
        match=r"max_latency_ms=0.1: no measured budget is within those limits at all; the fastest measured budget is fast: .*0.500 ms",
    ):
        choose(points, 0.95, max_latency_ms=0.1)


def test_nothing_within_a_bytes_limit_names_the_point_reading_least():
    points = [point("small", 0.9, 0.5, read=48), point("big", 0.99, 5.0, read=1536)]
    with pytest.raises(
        BudgetError, match=r"no measured budget is within those limits at all; the one reading least is small: .*48 bytes read per vector"
    ):
        choose(points, 0.95, max_bytes_per_vector=8)
