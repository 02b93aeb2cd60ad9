"""Calibration: measured (recall, latency) points of budgets, their Pareto front, and how
`auto:target_recall=R` picks one. Pure: the sweep that measures them is in `eval.sweep`,
the file they are stored in is owned by `disk`.

A recall measured on a few hundred queries is an estimate: `auto` trusts a budget
only when the one-sided 95% lower bound of its recall meets the target, so the
choice holds on queries like the calibration ones rather than on average over
the lucky ones.

Calibration queries that are not real ones (stored documents, pseudo-queries cut from the
stored texts) are easier than real queries, so their points carry a `miss_factor`: `auto`
trusts 1 - miss_factor x (1 - lower bound), the misses real queries were measured to make
per calibration miss on the bundled sets (bench/auto_bench.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vecdial.indexer.errors import BudgetError
from vecdial.indexer.plan.budget import AutoBudget, parse_budget

# Real queries miss this many times the true top-10 neighbours the calibration queries miss:
# real misses / the calibration's lower-bound misses, over swept budgets with real recall@10
# in 0.80..0.999 (bench/auto_bench.py). On the demo's 1,000 judged queries: documents as
# queries median 1.69, largest 2.38; pseudo-queries median 0.61, largest 0.89. On the demo
# grown to 100k rows (synthetic children of each document, as collections grown past their
# texts are), documents are far easier still: median 5.50, largest 11.43 (rabitq:rescore=10);
# pseudo-queries median 0.97, largest 1.18. On WordNet's 1,000 real lemma queries (117k
# glosses): documents median 2.29, largest 3.84; pseudo-queries median 1.43, largest 1.65
# (binary:rescore=15). The largest over the sets, rounded up.
DOCUMENTS_MISS_FACTOR = 12.0
PSEUDO_MISS_FACTOR = 1.7


@dataclass(frozen=True)
class SweepPoint:
    """One measured budget. recall_lower: one-sided 95% lower bound of recall@10 over the
    `queries` calibration queries (None in sweeps made before bounds: the mean stands in);
    documents_recall: when the queries were real, recall@10 of stored documents as queries,
    so the optimism of document calibration is measured, not assumed."""

    budget: str
    recall_at_10: float
    ms_per_query: float
    bytes_read_per_vector: float
    pareto: bool = False
    recall_lower: float | None = None
    queries: int | None = None
    documents_recall: float | None = None  # with real queries: the same budget's recall on stored documents (the gap)
    miss_factor: float = 1.0  # calibrated on other than real queries: real ones miss this many times more
    bin_recall: tuple[float, ...] | None = None  # per QueryBins bin: mean recall@10 of its calibration queries
    bin_sd: tuple[float, ...] | None = None  # and their standard deviation (sweeps before per-query auto: None)

    def __post_init__(self) -> None:
        for name in ("bin_recall", "bin_sd"):  # read back from JSON as lists: keep the point hashable
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def trusted_recall(self) -> float:
        """What `auto` counts on for real queries: the lower bound (the mean in old sweeps),
        its misses scaled by miss_factor."""
        measured = self.recall_at_10 if self.recall_lower is None else self.recall_lower
        return max(1.0 - self.miss_factor * (1.0 - measured), 0.0)

    def describe(self) -> str:
        bound = f" (95% lower bound {self.recall_lower:.3f} over {self.queries} queries)" if self.recall_lower is not None else ""
        gap = (
            f", {self.trusted_recall:.3f} expected on real queries (misses x{self.miss_factor:g}: the query-gap correction)"
            if self.miss_factor != 1.0
            else ""
        )
        return f"{self.budget}: recall@10 {self.recall_at_10:.3f}{bound}{gap}, {self.ms_per_query:.3f} ms, {self.bytes_read_per_vector:g} bytes read per vector"


def recall_lower_bound(per_query: Sequence[float]) -> float:
    """One-sided 95% lower bound of the mean of per-query recalls (normal approximation,
    clipped to [0, 1]): mean - 1.645 sd / sqrt(n)."""
    values = np.asarray(per_query, dtype=np.float64)
    if len(values) < 2:
        return float(values.mean()) if len(values) else 0.0
    bound = values.mean() - 1.645 * values.std(ddof=1) / math.sqrt(len(values))
    return float(min(max(bound, 0.0), 1.0))


def mark_pareto(points: list[SweepPoint]) -> list[SweepPoint]:
    """Flag the points no other point beats on both latency and recall."""
    best = -1.0
    front = set()
    for point in sorted(points, key=lambda p: (p.ms_per_query, -p.recall_at_10)):
        if point.recall_at_10 > best:
            front.add(point.budget)
            best = point.recall_at_10
    return [SweepPoint(**{**asdict(p), "pareto": p.budget in front}) for p in points]


def choose(
    points: Sequence[SweepPoint], target_recall: float, max_latency_ms: float | None = None, max_bytes_per_vector: float | None = None
) -> SweepPoint:
    """The fastest point whose recall lower bound meets the target within the limits given;
    BudgetError naming the closest point when none does."""
    within = [
        p
        for p in points
        if (max_latency_ms is None or p.ms_per_query <= max_latency_ms)
        and (max_bytes_per_vector is None or p.bytes_read_per_vector <= max_bytes_per_vector)
    ]
    meeting = [p for p in within if p.trusted_recall >= target_recall]
    if meeting:
        return min(meeting, key=lambda p: (p.ms_per_query, -p.trusted_recall))
    limits = "".join(
        f", {name}={value:g}"
        for name, value in (("max_latency_ms", max_latency_ms), ("max_bytes_per_vector", max_bytes_per_vector))
        if value is not None
    )
    advice = "Ask for less, or sweep with more candidates or your own queries (`vecdial sweep --queries`)"
    if within:
        closest = max(within, key=lambda p: (p.trusted_recall, -p.ms_per_query))
        raise BudgetError(
            f"no calibrated budget meets target_recall={target_recall:g}{limits}: the closest within those limits is {closest.describe()}. {advice}"
        )
    nearest = []
    if max_latency_ms is not None:
        nearest.append(f"the fastest measured budget is {min(points, key=lambda p: p.ms_per_query).describe()}")
    if max_bytes_per_vector is not None:
        nearest.append(f"the one reading least is {min(points, key=lambda p: p.bytes_read_per_vector).describe()}")
    raise BudgetError(
        f"no calibrated budget meets target_recall={target_recall:g}{limits}: no measured budget is within those limits at all; "
        f"{'; '.join(nearest)}. Raise the limits, or sweep with more candidates (`vecdial sweep`)"
    )


def resolve_budget(budget, sweep: tuple[SweepPoint, ...] | None) -> tuple[Any, SweepPoint | None]:
    """(the budget to run, the sweep point it was chosen by): `auto` is replaced by the budget
    the sweep chose; other budgets pass through with None."""
    if not isinstance(budget, AutoBudget):
        return budget, None
    if not sweep:
        raise BudgetError("auto budgets need a sweep of this collection: run `vecdial sweep -c <name>` first")
    point = choose(sweep, budget.target_recall, budget.max_latency_ms, budget.max_bytes_per_vector)
    return parse_budget(point.budget), point
