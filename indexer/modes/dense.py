"""Dense modes: `exact` and `dense:dim=D`, cosine over the first D rotated dims of the block store.

The same mode rescores every funnel's survivors: a gather of the candidates'
first D dims from the (memory-mapped) blocks.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from vecdial.indexer.modes.base import Mode, ModeInfo, Part, Query
from vecdial.indexer.plan.knobs import BudgetModel, FunnelStage

SWEEP_DIMS = (32, 64, 128, 256)


class ExactBudget(BudgetModel):
    """Every dim of every vector: the reference other budgets are measured against."""

    mode: Literal["exact"] = "exact"


class DenseBudget(BudgetModel):
    """Cosine over the first `dim` (rotated) dims: cost and bytes read follow `dim`."""

    mode: Literal["dense"] = "dense"
    dim: int = Field(gt=0, description="Leading dims to score with.")


class Dense(Mode):
    name = "dense"
    budget = DenseBudget
    knob = "dim"

    def funnel(self, budget: DenseBudget) -> list[FunnelStage]:
        return [FunnelStage(kind="dense", dim=budget.dim)]

    def max_size(self, version) -> int:
        return version.dim

    def candidates(self, part: Part, query: Query, size: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        dense = part.stores.dense
        rows, scores = dense.scan(query.rotated, size, keep, part.alive)
        return rows, scores, part.stores.size * dense.bytes_per_vector(size)

    def rescore(self, part: Part, query: Query, rows: np.ndarray, size: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Candidates rows (nq, c) (-1 pad) rescored at `size` dims; the best `keep` per query."""
        dense = part.stores.dense
        candidates = int(np.count_nonzero(rows >= 0)) // max(len(rows), 1)
        found, scores = keep_best(rows, dense.score_rows(query.rotated, rows, size), keep)
        return found, scores, candidates * dense.bytes_per_vector(size)

    def describe(self, version) -> ModeInfo:
        costs = dense_costs(version)
        return ModeInfo("dense", {"dim": (1, version.dim)}, version.dense.bytes_per_vector(min(64, version.dim)), f"bytes follow dim: {costs}")

    def sweep_budgets(self, version) -> list[str]:
        return [f"dense:dim={d}" for d in SWEEP_DIMS if d < version.dim]


class Exact(Mode):
    name = "exact"
    budget = ExactBudget

    def funnel(self, budget: ExactBudget) -> list[FunnelStage]:
        return [FunnelStage(kind="dense")]

    def describe(self, version) -> ModeInfo:
        return ModeInfo("exact", {}, version.dense.bytes_per_vector(version.dim), "every dim of every vector: the reference")

    def sweep_budgets(self, version) -> list[str]:
        return ["exact"]


def keep_best(rows: np.ndarray, scores: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Reorder candidates (nq, c) by their new scores and keep the best `keep` per query."""
    nq, c = scores.shape
    # Flat indices: take_along_axis costs more in Python than the sort itself at these sizes.
    flat = (np.argsort(-scores, axis=1, kind="stable")[:, :keep] + (np.arange(nq) * c)[:, None]).ravel()
    return rows.ravel()[flat].reshape(nq, -1), scores.ravel()[flat].reshape(nq, -1)


def dense_costs(version) -> dict[int, int]:
    """Bytes a dense scan reads per vector at each block boundary dim."""
    block = version.dense.block
    dims = sorted({*range(block, version.dim + 1, block), version.dim})
    return {dim: version.dense.bytes_per_vector(dim) for dim in dims}


EXACT = Exact()
DENSE = Dense()
