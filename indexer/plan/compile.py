"""A budget compiled into a plan: one candidate stage, then zero or more rescoring stages.

Every budget is such a plan, so every search explains itself the same way. Stage
sizes are checked against the version here, before any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from vecdial.indexer.errors import BudgetError
from vecdial.indexer.modes import MODES, RESCORER, STAGE_KINDS
from vecdial.indexer.plan.budget import AutoBudget, FunnelBudget, FunnelStage


@dataclass(frozen=True)
class Stage:
    """mode: a registered mode that finds candidates (or the RESCORER, rescoring);
    size: dims, bits or active units; keep: candidates out per query;
    probe: partitions read per query (0: every row); ef: candidates a graph walk keeps
    (0: no walk)."""

    mode: str
    size: int
    keep: int
    rescore: bool
    probe: int = 0
    ef: int = 0

    @cached_property
    def label(self) -> str:
        """How explain names the stage: made once per compiled plan, not per search."""
        mode = MODES[self.mode]
        probe = f",probe={self.probe}" if self.probe else ""
        ef = f",ef={self.ef}" if self.ef else ""
        return f"{'rescore' if self.rescore else self.mode}:{mode.size_label or mode.knob}={self.size}{probe}{ef}"


PLAN_CACHE_SIZE = 256


def compile_cached(budget, version, k: int) -> tuple[Stage, ...]:
    """compile_plan, remembered per version: a plan depends only on (budget, version, k),
    and services repeat the same few budgets."""
    cache = version.plans
    plan = cache.get((budget, k))
    if plan is None:
        if len(cache) >= PLAN_CACHE_SIZE:
            cache.clear()
        plan = cache[(budget, k)] = compile_plan(budget, version, k)
    return plan


def compile_plan(budget, version, k: int) -> tuple[Stage, ...]:
    """Stages valid for this version (each keeps at most k x its multiple), or BudgetError."""
    if isinstance(budget, AutoBudget):
        raise BudgetError("an auto budget must be resolved through the sweep before it is compiled")
    stages = list(budget.stages) if isinstance(budget, FunnelBudget) else MODES[budget.mode].funnel(budget)
    if stages[-1].keep is not None:
        stages.append(FunnelStage(kind=RESCORER))
    plan = []
    for i, stage in enumerate(stages):
        if i > 0 and not MODES[stage.kind].rescores:
            heads = " or ".join(k for k in STAGE_KINDS if not MODES[k].rescores)
            raise BudgetError(f"funnel stage {i + 1} is {stage.kind}: only the first stage may be {heads}")
        mode = MODES[stage.kind]
        largest = mode.max_size(version)
        size = stage.size(mode.knob) or mode.default_size(version)
        if not 0 < size <= largest:
            raise BudgetError(f"{mode.knob}={size} is out of range: this collection serves {mode.knob} 1..{largest}")
        keep = k if i == len(stages) - 1 else k * (stage.keep or 1)
        first = i == 0
        ef = mode.ef_for(budget, version) if first and not isinstance(budget, FunnelBudget) else 0
        plan.append(Stage(stage.kind, size, keep, rescore=i > 0, probe=_cells(budget, version) if first else 0, ef=ef))
    return tuple(plan)


def _cells(budget, version) -> int:
    """Partitions the first stage reads per query, from the budget's `probe` (0: every row)."""
    probe = getattr(budget, "probe", None)
    if probe is None:
        return 0
    if version.partitions is None:
        raise BudgetError(
            "probe: this collection's rows are not partitioned (built before partitions, or with partitions=0); reindex it to use probe"
        )
    return version.partitions.cells_for(probe)
