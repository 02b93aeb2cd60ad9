"""RaBitQ mode: `rabitq:rescore=R,probe=P`, a shortlist of k x R rows by RaBitQ's corrected
distance estimate (stores/rabitq.py), rescored with the full float vectors (R=0: the
estimate's order alone).

Against sign bits (`binary`) at equal code size the estimate ranks the true
neighbours higher, so the same recall needs a shorter shortlist, and its codes
live per cell, so `probe` reads only the probed cells' codes. Rows written since
the version was built are few and have no cells: they are scored exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from vecdial.indexer.errors import BudgetError
from vecdial.indexer.modes.base import Mode, ModeInfo, Part, Query
from vecdial.indexer.modes.dense import DENSE
from vecdial.indexer.plan.knobs import MAX_RESCORE, BudgetModel, FunnelStage, probe_field
from vecdial.indexer.stores.rabitq import RabitqStore, empty_index

SWEEP_RESCORES = (0, 2, 5, 10, 20, 40)
# (rescore, probe) points a partitioned version is also measured at.
SWEEP_PROBED = ((10, 0.05), (10, 0.1), (20, 0.2), (20, 0.3))


class RabitqBudget(BudgetModel):
    """Shortlist of k x rescore rows by RaBitQ estimate, rescored with full vectors (0: no rescoring)."""

    mode: Literal["rabitq"] = "rabitq"
    rescore: int = Field(10, ge=0, le=MAX_RESCORE, description="Shortlist size as a multiple of k.")
    probe: int | float | None = probe_field()


class Rabitq(Mode):
    name = "rabitq"
    budget = RabitqBudget
    size_label = "bits"
    refine = "rescore"

    def funnel(self, budget: RabitqBudget) -> list[FunnelStage]:
        return [FunnelStage(kind="rabitq", keep=budget.rescore or None)]

    def max_size(self, version) -> int:
        if version.store("rabitq") is None:
            raise BudgetError("rabitq: this collection has no RaBitQ codes (built with rabitq_bits=0, or before them); reindex it with rabitq_bits=1")
        return version.dim * version.store("rabitq").bits

    def candidates(self, part: Part, query: Query, size: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        index = part.stores.store("rabitq")
        if index is None:  # the write segment: exact over its rows
            return DENSE.candidates(part, query, query.version.dim, keep)
        store = index.store
        if part.cells is None:
            cells = query.form("rabitq-cells", lambda: np.tile(np.arange(store.cells, dtype=np.int64), (len(query.unit), 1)))
            read = part.stores.size
        else:
            cells = part.cells
            read = int((part.ranges[1] - part.ranges[0]).sum()) // len(cells)
        rows, scores = store.search(query.unit, keep, cells, part.alive)
        return rows, scores, read * store.code_bytes

    def describe(self, version) -> ModeInfo | None:
        index = version.store("rabitq")
        if index is None:
            return None
        full = version.dense.bytes_per_vector(version.dim)
        note = f"RaBitQ shortlist ({index.bits} bit a dim) of k x rescore, each candidate rescored reads {full} bytes"
        return ModeInfo("rabitq", {"rescore": (0, MAX_RESCORE)}, index.store.code_bytes, note)

    def sweep_budgets(self, version) -> list[str]:
        if version.store("rabitq") is None:
            return []
        probed = [f"rabitq:rescore={r},probe={p}" for r, p in SWEEP_PROBED] if version.partitions is not None else []
        return [f"rabitq:rescore={r}" for r in SWEEP_RESCORES] + probed

    def builder(self, sample: np.ndarray, n: int, out: Path, settings: Any, partitions: Any = None) -> "RabitqBuilder | None":
        if settings.rabitq_bits == 0:
            return None
        centroids = partitions.centroids if partitions is not None else None
        return RabitqBuilder(RabitqStore(empty_index(centroids, sample.shape[1], settings.rabitq_bits, sample)), out, settings.rabitq_bits)

    def open(self, path: Path, params: dict[str, Any], manifest: Any, codecs: dict[str, np.ndarray]) -> "RabitqIndex":
        return RabitqIndex(RabitqStore.open(path, manifest.count, manifest.dim), int(params["bits"]))


class RabitqIndex:
    """store: every version row's code in its cell's list; bits: bits a dim of each code."""

    def __init__(self, store: RabitqStore, bits: int):
        self.store, self.bits = store, bits


class RabitqBuilder:
    """Adds every input batch to the trained index; writes it once at the end."""

    def __init__(self, store: RabitqStore, out: Path, bits: int):
        self.store, self.out, self.bits = store, out, bits

    def add(self, start: int, unit: np.ndarray) -> None:
        self.store.add(start, unit)

    def finish(self, vectors: np.ndarray, show_progress: bool) -> dict[str, Any]:
        self.store.save(self.out)
        return {"bits": self.bits, "cells": self.store.cells}

    def codec_arrays(self) -> dict[str, np.ndarray]:
        return {}


RABITQ = Rabitq()
