"""RaBitQ mode: `rabitq:rescore=R`, a shortlist of k x R rows by RaBitQ's corrected distance
estimate (stores/rabitq.py), rescored with the full float vectors (R=0: the estimate's
order alone).

Against sign bits (`binary`) the estimate ranks the true neighbours higher from a
smaller code, so the same recall needs a much shorter shortlist (WordNet: R@10 0.974
at R=5, sign bits 0.957 at R=20). It scans every code: probing cells, which needs
per-cell codes, measured slower than this flat scan. Rows written since the version
was built are scored exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from vecdial.indexer.errors import BudgetError
from vecdial.indexer.modes.base import Mode, ModeInfo, Part, Query
from vecdial.indexer.modes.dense import DENSE
from vecdial.indexer.plan.knobs import MAX_RESCORE, BudgetModel, FunnelStage
from vecdial.indexer.stores.lazy import CodesIndex, Lazy
from vecdial.indexer.stores.rabitq import RabitqStore, check_header, empty_index

SWEEP_RESCORES = (0, 1, 2, 5, 10, 20)


class RabitqBudget(BudgetModel):
    """Shortlist of k x rescore rows by RaBitQ estimate, rescored with full vectors (0: no rescoring)."""

    mode: Literal["rabitq"] = "rabitq"
    rescore: int = Field(5, ge=0, le=MAX_RESCORE, description="Shortlist size as a multiple of k.")


class Rabitq(Mode):
    name = "rabitq"
    budget = RabitqBudget
    size_label = "bits"
    refine = "rescore"

    def funnel(self, budget: RabitqBudget) -> list[FunnelStage]:
        return [FunnelStage(kind="rabitq", keep=budget.rescore or None)]

    def max_size(self, version) -> int:
        if version.store("rabitq") is None:
            raise BudgetError("rabitq: this collection has no RaBitQ codes (built with rabitq=false, or before them); reindex it with rabitq=true")
        return version.dim

    def candidates(self, part: Part, query: Query, size: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        index = part.stores.store("rabitq")
        if index is None:  # the write segment: exact over its rows
            return DENSE.candidates(part, query, query.version.dim, keep)
        rows, scores = index.store.search(query.unit, keep, part.alive)
        return rows, scores, part.stores.size * index.store.code_bytes

    def describe(self, version) -> ModeInfo | None:
        index = version.store("rabitq")
        if index is None:
            return None
        full = version.dense.bytes_per_vector(version.dim)
        note = f"RaBitQ shortlist (1 bit a dim, corrected estimate) of k x rescore, each candidate rescored reads {full} bytes"
        return ModeInfo("rabitq", {"rescore": (0, MAX_RESCORE)}, index.code_bytes, note)

    def sweep_budgets(self, version) -> list[str]:
        if version.store("rabitq") is None:
            return []
        return [f"rabitq:rescore={r}" for r in SWEEP_RESCORES]

    def builder(self, sample: np.ndarray, n: int, out: Path, settings: Any) -> "RabitqBuilder | None":
        if not settings.rabitq:
            return None
        return RabitqBuilder(RabitqStore(empty_index(sample.shape[1], sample)), out)

    def open(self, path: Path, params: dict[str, Any], manifest: Any, codecs: dict[str, np.ndarray]) -> CodesIndex[RabitqStore]:
        code_bytes = check_header(path, manifest.count, manifest.dim)  # the codes load on first use
        return CodesIndex(Lazy(lambda: RabitqStore.open(path, manifest.count, manifest.dim)), code_bytes)


class RabitqBuilder:
    """Adds every input batch to the trained index; writes it once at the end."""

    def __init__(self, store: RabitqStore, out: Path):
        self.store, self.out = store, out

    def add(self, start: int, unit: np.ndarray) -> None:
        self.store.add(start, unit)

    def finish(self, vectors: np.ndarray, show_progress: bool) -> dict[str, Any]:
        self.store.save(self.out)
        return {"bits": 1}

    def codec_arrays(self) -> dict[str, np.ndarray]:
        return {}


RABITQ = Rabitq()
