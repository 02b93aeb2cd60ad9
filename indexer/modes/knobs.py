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
    """One stage of a funnel: a registered mode (`binary`, `sparse` with `active`, `dense` with `dim`)
    that finds candidates, or, after the first stage, `dense` rescoring."""

    kind: str = Field(description="A mode that finds candidates: dense, binary, sparse.")
    dim: int | None = Field(None, gt=0, description="Dims for a dense stage; default all.")
    active: int | None = Field(None, gt=0, description="Active units for a sparse stage.")
    keep: int | None = Field(None, gt=0, le=MAX_RESCORE, description="Candidates kept, as a multiple of k; the last stage keeps k.")
