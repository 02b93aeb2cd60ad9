"""Calibration: measured (recall, latency) points of budgets, their Pareto front, and how
`auto:target_recall=R` picks one. Pure: the sweep that measures them is in `eval.sweep`,
the file they are stored in is owned by `disk`."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from vecdial.indexer.errors import BudgetError
from vecdial.indexer.plan.budget import AutoBudget, parse_budget


@dataclass(frozen=True)
class SweepPoint:
    budget: str
    recall_at_10: float
    ms_per_query: float
    bytes_read_per_vector: float
    pareto: bool = False


def mark_pareto(points: list[SweepPoint]) -> list[SweepPoint]:
    """Flag the points no other point beats on both latency and recall."""
    best = -1.0
    front = set()
    for point in sorted(points, key=lambda p: (p.ms_per_query, -p.recall_at_10)):
        if point.recall_at_10 > best:
            front.add(point.budget)
            best = point.recall_at_10
    return [SweepPoint(**{**asdict(p), "pareto": p.budget in front}) for p in points]


def choose(points: list[SweepPoint] | tuple[SweepPoint, ...], target_recall: float) -> SweepPoint:
    """The fastest point that met the target; if none did, the most accurate one."""
    meeting = [p for p in points if p.recall_at_10 >= target_recall]
    if meeting:
        return min(meeting, key=lambda p: p.ms_per_query)
    return max(points, key=lambda p: (p.recall_at_10, -p.ms_per_query))


def resolve_budget(budget, sweep: tuple[SweepPoint, ...] | None):
    """Replace `auto` by the budget the sweep chose; other budgets pass through."""
    if not isinstance(budget, AutoBudget):
        return budget
    if not sweep:
        raise BudgetError("auto budgets need a sweep of this collection: run `vecdial sweep -c <name>` first")
    return parse_budget(choose(sweep, budget.target_recall).budget)
