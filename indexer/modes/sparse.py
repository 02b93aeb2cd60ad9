"""Sparse mode: `sparse:active=A,rescore=R`, learned k-sparse codes searched through postings.

The query's top-A units meet each document's top-A units (a prefix of every
posting list), so any A up to the trained `max_active` is served from one index.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from vecdial.indexer.errors import BudgetError
from vecdial.indexer.modes.base import Mode, ModeInfo, Part, Query
from vecdial.indexer.plan.knobs import MAX_RESCORE, BudgetModel, FunnelStage

SWEEP_ACTIVES = (8, 16, 32, 64)


class SparseBudget(BudgetModel):
    """Inverted-index search with the query's top `active` sparse units."""

    mode: Literal["sparse"] = "sparse"
    active: int = Field(gt=0, description="Active units used per query and per document.")
    rescore: int = Field(0, ge=0, le=MAX_RESCORE, description="Shortlist multiple of k rescored with full vectors.")


class Sparse(Mode):
    name = "sparse"
    budget = SparseBudget
    knob = "active"

    def funnel(self, budget: SparseBudget) -> list[FunnelStage]:
        return [FunnelStage(kind="sparse", active=budget.active, keep=budget.rescore or None)]

    def max_size(self, version) -> int:
        if version.sparse is None:
            raise BudgetError("this collection has no sparse codes: rebuild it with sparse codes enabled to use sparse budgets")
        return version.sparse.max_active

    def candidates(self, part: Part, query: Query, size: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        units, weights = query.form(("sparse", size), lambda: query.version.sparse.encode(query.unit, size))
        rows, scores, total = part.stores.sparse_index.search(units, weights, size, keep, part.alive)
        return rows, scores, total // max(len(units), 1)

    def describe(self, version) -> ModeInfo | None:
        if version.sparse is None:
            return None
        note = "inverted index: postings of the query's top `active` units; bytes are the index's per vector"
        knobs = {"active": (1, int(version.sparse.max_active)), "rescore": (0, MAX_RESCORE)}
        return ModeInfo("sparse", knobs, int(version.sparse.resident_bytes // max(version.size, 1)), note)

    def sweep_budgets(self, version) -> list[str]:
        if version.sparse is None:
            return []
        actives = [a for a in SWEEP_ACTIVES if a <= version.sparse.max_active]
        return [f"sparse:active={a}" for a in actives] + [f"sparse:active={a},rescore=10" for a in actives]


SPARSE = Sparse()
