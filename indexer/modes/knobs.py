"""The pieces every budget is made of: the frozen model budgets share, and funnel stages.

Kept apart from `plan.budget` so that each mode module can declare its own
budget model without importing the registry that collects them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_RESCORE = 1000


def probe_field() -> Any:
    """The `probe` knob every budget that finds candidates takes (see codecs/partition.py)."""
    return Field(
        None,
        gt=0,
        description="Partitions read per query: a count (16), or a fraction of them below 1 (0.05); unset: every row.",
    )


class BudgetModel(BaseModel):
    """Base of every budget: immutable (hashable, so parsed budgets can be cached) and strict."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FunnelStage(BudgetModel):
    """One stage of a funnel: a registered mode that finds candidates, or, after the first stage,
    the mode that rescores. Its size is given under that mode's own knob (`Mode.knob`:
    `{"kind": "dense", "dim": 128}`, `{"kind": "sparse", "active": 32}`), which `FunnelBudget`
    checks against the registry: no stage knob is declared here, so a new mode brings its own."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str = Field(description="A registered mode that finds candidates (dense, binary, rabitq, sparse).")
    keep: int | None = Field(None, gt=0, le=MAX_RESCORE, description="Candidates kept, as a multiple of k; the last stage keeps k.")

    def size(self, knob: str | None) -> int | None:
        """The stage's size under its mode's `knob`; None: not given (the mode's default)."""
        return None if knob is None else (self.model_extra or {}).get(knob)

    def __hash__(self) -> int:  # the size knob is an extra, which pydantic's frozen hash leaves out
        return hash((self.kind, self.keep, tuple(sorted((self.model_extra or {}).items()))))
