"""Binary mode: `binary:rescore=R`, a Hamming shortlist of k x R sign-bit codes (FAISS),
rescored with the full float vectors (R=0: Hamming order alone)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from vecdial.indexer.modes.base import Mode, ModeInfo, Part, Query
from vecdial.indexer.plan.knobs import MAX_RESCORE, BudgetModel, FunnelStage

SWEEP_RESCORES = (0, 2, 5, 10, 20)


class BinaryBudget(BudgetModel):
    """Hamming shortlist of k x rescore codes, rescored with full vectors (0: no rescoring)."""

    mode: Literal["binary"] = "binary"
    rescore: int = Field(10, ge=0, le=MAX_RESCORE, description="Shortlist size as a multiple of k.")


class Binary(Mode):
    name = "binary"
    budget = BinaryBudget
    size_label = "bits"

    def funnel(self, budget: BinaryBudget) -> list[FunnelStage]:
        return [FunnelStage(kind="binary", keep=budget.rescore or None)]

    def max_size(self, version) -> int:
        return version.dim

    def candidates(self, part: Part, query: Query, size: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        codes = query.form("binary", lambda: query.version.binary_codec.encode(query.unit))
        store = part.stores.binary
        rows, distances = store.search(codes, keep, part.alive)
        scores = np.where(rows >= 0, 1.0 - 2.0 * distances.astype(np.float32) / size, -np.inf).astype(np.float32)
        return rows, scores, part.stores.size * store.code_bytes

    def describe(self, version) -> ModeInfo:
        full = version.dense.bytes_per_vector(version.dim)
        note = f"Hamming shortlist of k x rescore, each candidate rescored reads {full} bytes"
        return ModeInfo("binary", {"rescore": (0, MAX_RESCORE)}, version.binary.code_bytes, note)

    def sweep_budgets(self, version) -> list[str]:
        return [f"binary:rescore={r}" for r in SWEEP_RESCORES]


BINARY = Binary()
