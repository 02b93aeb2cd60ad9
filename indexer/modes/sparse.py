"""Sparse mode: `sparse:active=A,rescore=R`, learned k-sparse codes searched through postings.

The query's top-A units meet each document's top-A units (a prefix of every
posting list), so any A up to the trained `max_active` is served from one index.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from vecdial.indexer.errors import BudgetError, CorruptIndex
from vecdial.indexer.modes.base import Mode, ModeInfo, Part, Query, VersionView
from vecdial.indexer.modes.knobs import MAX_RESCORE, BudgetModel, FunnelStage
from vecdial.indexer.modes.settings import recorded_sparse
from vecdial.indexer.stores.rows import room_for
from vecdial.indexer.stores.sparse import SparseIndex, SparseStore, open_sparse_store
from vecdial.indexer.vectors import Rows

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

    def funnel(self, budget: BudgetModel) -> list[FunnelStage]:
        assert isinstance(budget, SparseBudget)  # the registry parses this mode's budgets as its `budget`
        return [FunnelStage(kind="sparse", active=budget.active, keep=budget.rescore or None)]

    def max_size(self, version: VersionView) -> int:
        if version.store("sparse") is None:
            raise BudgetError("this collection has no sparse codes: rebuild it with sparse codes enabled to use sparse budgets")
        return version.store("sparse").max_active

    def candidates(self, part: Part, query: Query, size: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        units, weights = query.form(("sparse", size), lambda: query.version.store("sparse").encode(query.unit, size))
        rows, scores, total = part.stores.store("sparse").index.search(units, weights, size, keep, part.alive)
        return rows, scores, total // max(len(units), 1)

    def describe(self, version: VersionView) -> ModeInfo | None:
        store = version.store("sparse")
        if store is None:
            return None
        note = "inverted index: postings of the query's top `active` units; bytes are the index's per vector"
        knobs: dict[str, tuple[int | float, int | float]] = {"active": (1, int(store.max_active)), "rescore": (0, MAX_RESCORE)}
        return ModeInfo("sparse", knobs, int(store.resident_bytes // max(version.size, 1)), note)

    def warm_budgets(self, version: VersionView) -> list[str]:
        return [] if version.store("sparse") is None else ["sparse:active=1,rescore=1"]

    def sweep_budgets(self, version: VersionView) -> list[str]:
        store = version.store("sparse")
        if store is None:
            return []
        actives = [a for a in SWEEP_ACTIVES if a <= store.max_active]
        return [f"sparse:active={a}" for a in actives] + [f"sparse:active={a},rescore=10" for a in actives]

    def builder(self, sample: np.ndarray, n: int, out: Path, settings: Any, cells: Any = None) -> SparseBuilder | None:
        return None if settings.sparse is None else SparseBuilder(sample, out, settings.sparse)

    def recorded_settings(self, params: dict[str, Any] | None) -> dict[str, Any]:
        return {"sparse": recorded_sparse((params or {}).get("settings"))}

    def open(self, path: Path, params: dict[str, Any], manifest: Any, codecs: dict[str, np.ndarray]) -> SparseStore:
        try:
            store = open_sparse_store(path, params, manifest.count)
        except (OSError, ValueError, KeyError) as exc:
            raise CorruptIndex(f"{path}: cannot read the sparse codes ({exc}); rebuild the index") from None
        if store.index.size != manifest.count or len(store.index.indptr) != store.model.hidden + 1:
            raise CorruptIndex(f"{path}: sparse index does not match its model or the collection size")
        return store

    def segment_rows(self, version: VersionView) -> SparseRows | None:
        store = version.store("sparse")
        return None if store is None else SparseRows(store)


class SparseBuilder:
    """Trains the sparse autoencoder on the frozen embeddings once every other file is written,
    then encodes every vector and inverts the codes into postings."""

    def __init__(self, sample: np.ndarray, out: Path, settings: Any):
        self.sample, self.out, self.settings = sample, out, settings

    def add(self, start: int, unit: np.ndarray) -> None:
        pass  # trained and encoded in finish(): the model needs the whole sample first

    def finish(self, vectors: Rows, show_progress: bool) -> dict[str, Any]:
        from vecdial.indexer.modes.sparse_build import build_sparse

        return build_sparse(vectors, self.sample, self.out, self.settings, show_progress)

    def codec_arrays(self) -> dict[str, np.ndarray]:
        return {}  # the model's weights are files of their own


class SparseRows:
    """Rows written since a version was built: encoded by its model when a search first needs
    them (only sparse searches do), once, then indexed like the version's postings."""

    def __init__(self, store: SparseStore):
        self.model_store = store
        dim = int(store.model.dim)
        self._unit = np.zeros((0, dim), dtype=np.float32)
        self._lock = threading.Lock()
        self._codes: tuple[np.ndarray, np.ndarray] | None = None  # (units, weights) of the rows encoded so far

    def add(self, start: int, unit: np.ndarray) -> None:
        stop = start + len(unit)
        self._unit = room_for(self._unit, start, stop)
        self._unit[start:stop] = unit

    def store(self, n: int) -> SparseStore:
        with self._lock:
            codes = self._codes
            done = 0 if codes is None else len(codes[0])
            if codes is None or done < n:
                units, weights = self.model_store.encode(self._unit[done:n])
                parts = [] if codes is None else [codes]
                parts.append((np.asarray(units, dtype=np.int32), np.asarray(weights, dtype=np.float32)))
                codes = self._codes = (np.concatenate([u for u, _ in parts]), np.concatenate([w for _, w in parts]))
            units, weights = codes[0][:n], codes[1][:n]
        index = SparseIndex.from_codes(units, weights, int(self.model_store.model.hidden))
        return SparseStore(self.model_store.model, index)


SPARSE = Sparse()
