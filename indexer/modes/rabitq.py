"""RaBitQ mode: `rabitq:rescore=R`, a shortlist of k x R rows by RaBitQ's corrected distance
estimate (stores/rabitq.py), rescored with the full float vectors (R=0: the estimate's
order alone). `rabitq:rescore=R,ef=E` finds the shortlist by a walk over an HNSW graph
of the same codes keeping E candidates (stores/graph.py: HNSW's efSearch) instead of a
scan of every code: the index for high recall on any query distribution.

Against sign bits (`binary`) the estimate ranks the true neighbours higher from a
smaller code, so the same recall needs a much shorter shortlist (WordNet: R@10 0.974
at R=5, sign bits 0.957 at R=20). Without `ef` or `probe` it scans every code.
`probe=P` reads the codes of the P nearest cells, coded against their own cell's
centroid in FAISS's IVF fast-scan index: faster than the flat scan while a query reads
few cells, as fast at about a quarter of them (stores/rabitq.py, CELLS_PAY_SHARE), so
above that share the flat scan of every code answers. Rows written since the version
was built are scored exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from vecdial.indexer.errors import BudgetError, CorruptIndex
from vecdial.indexer.modes.base import Mode, ModeInfo, Part, Query, VersionView
from vecdial.indexer.modes.dense import DENSE
from vecdial.indexer.modes.knobs import MAX_RESCORE, BudgetModel, FunnelStage, probe_field
from vecdial.indexer.stores.graph import GraphBuilder, GraphStore, check_graph
from vecdial.indexer.stores.lazy import CodesIndex, Lazy
from vecdial.indexer.stores.rabitq import (
    CELLS_FILE,
    CELLS_PAY_SHARE,
    CellsBuilder,
    CellsStore,
    RabitqStore,
    check_header,
    empty_index,
)
from vecdial.indexer.vectors import Rows

SWEEP_RESCORES = (0, 1, 2, 5, 10, 20)
# (rescore, ef) points a version with a graph is also measured at.
SWEEP_GRAPH = ((2, 32), (5, 64), (5, 128), (10, 128), (10, 256), (20, 512))
MAX_EF = 10_000
# (rescore, probe) points a partitioned version is also measured at.
SWEEP_PROBED = ((5, 0.02), (5, 0.05), (10, 0.1), (10, 0.2))


class RabitqBudget(BudgetModel):
    """Shortlist of k x rescore rows by RaBitQ estimate, rescored with full vectors (0: no rescoring)."""

    mode: Literal["rabitq"] = "rabitq"
    rescore: int = Field(5, ge=0, le=MAX_RESCORE, description="Shortlist size as a multiple of k.")
    ef: int | None = Field(
        None,
        ge=1,
        le=MAX_EF,
        description="Find the shortlist by walking the graph over the codes, keeping this many candidates (HNSW's efSearch; at least the shortlist); unset: scan every code.",
    )
    probe: int | float | None = probe_field()


class Rabitq(Mode):
    name = "rabitq"
    budget = RabitqBudget
    size_label = "bits"
    refine = "rescore"

    def funnel(self, budget: BudgetModel) -> list[FunnelStage]:
        assert isinstance(budget, RabitqBudget)  # the registry parses this mode's budgets as its `budget`
        return [FunnelStage(kind="rabitq", keep=budget.rescore or None)]

    def max_size(self, version: VersionView) -> int:
        if version.store("rabitq") is None:
            raise BudgetError(
                "rabitq: this collection has no RaBitQ codes (built with rabitq=false, or before them); reindex it with rabitq=true"
            )
        return version.dim

    def candidates(self, part: Part, query: Query, size: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        index = part.stores.store("rabitq")
        if index is None:  # the write segment: exact over its rows
            return DENSE.candidates(part, query, query.version.dim, keep)
        if part.ef:
            return _walk(index, part, query, keep)
        partitions = query.version.partitions
        if part.ranges is not None and index.cells is not None and partitions is not None:
            starts, stops = part.ranges
            if starts.shape[1] <= CELLS_PAY_SHARE * len(partitions.centroids):
                return _probe(index.cells.get(), starts, stops, partitions.offsets, part, query, keep)
        rows, scores = index.store.search(query.unit, keep, part.alive)  # every code: above the share, as fast
        return rows, scores, part.stores.size * index.store.code_bytes

    def refine_knob(self, budget: BudgetModel) -> str | None:
        """A walk's recall turns on its breadth: a sweep bisects `ef` between graph points of one
        rescore, `rescore` between scans."""
        assert isinstance(budget, RabitqBudget)
        return "ef" if budget.ef is not None else self.refine

    def ef_for(self, budget: BudgetModel, version: VersionView) -> int:
        """The graph breadth a budget asks for (0: none); BudgetError if the version has no graph."""
        assert isinstance(budget, RabitqBudget)
        if budget.ef is None:
            return 0
        if budget.probe is not None:
            raise BudgetError("ef and probe: give one (ef walks the graph, probe reads the nearest cells)")
        index = version.store("rabitq")
        if index is None or index.graph is None:
            raise BudgetError(
                "ef: this collection has no graph over its RaBitQ codes (built with graph=0, or before graphs); reindex it with graph=16"
            )
        return budget.ef

    def describe(self, version: VersionView) -> ModeInfo | None:
        index = version.store("rabitq")
        if index is None:
            return None
        full = version.dense.bytes_per_vector(version.dim)
        note = f"RaBitQ shortlist (1 bit a dim, corrected estimate) of k x rescore, each candidate rescored reads {full} bytes"
        knobs: dict[str, tuple[int | float, int | float]] = {"rescore": (0, MAX_RESCORE)}
        if index.cells is not None and version.partitions is not None:
            knobs["probe"] = (0, version.partitions.count)
            note += "; with probe, the codes of the nearest cells (each coded against its cell's centre)"
        if index.graph is not None:
            knobs["ef"] = (1, MAX_EF)
            note += f"; with ef, a walk over an HNSW graph of the codes ({index.graph_links} links a row) reads a few thousand codes instead of all"
        return ModeInfo("rabitq", knobs, index.code_bytes, note)

    def warm_budgets(self, version: VersionView) -> list[str]:
        index = version.store("rabitq")
        if index is None:
            return []
        walked = ["rabitq:rescore=1,ef=8"] if index.graph is not None else []
        probed = ["rabitq:rescore=1,probe=1"] if index.cells is not None else []
        return ["rabitq:rescore=1", "rabitq:rescore=0", *walked, *probed]

    def sweep_budgets(self, version: VersionView) -> list[str]:
        index = version.store("rabitq")
        if index is None:
            return []
        walked = [f"rabitq:rescore={r},ef={e}" for r, e in SWEEP_GRAPH] if index.graph is not None else []
        probed = [f"rabitq:rescore={r},probe={p}" for r, p in SWEEP_PROBED] if index.cells is not None else []
        return [f"rabitq:rescore={r}" for r in SWEEP_RESCORES] + walked + probed

    def builder(self, sample: np.ndarray, n: int, out: Path, settings: Any, cells: Any = None) -> RabitqBuilder | None:
        if not settings.rabitq:
            return None
        graph = GraphBuilder(sample.shape[1], settings.graph, sample) if settings.graph else None
        per_cell = CellsBuilder(cells.centroids, sample) if cells is not None else None
        return RabitqBuilder(RabitqStore(empty_index(sample.shape[1], sample)), graph, per_cell, out)

    def recorded_settings(self, params: dict[str, Any] | None) -> dict[str, Any]:
        return {"rabitq": params is not None, "graph": int((params or {}).get("graph", 0))}

    def open(self, path: Path, params: dict[str, Any], manifest: Any, codecs: dict[str, np.ndarray]) -> RabitqIndex:
        code_bytes = check_header(path, manifest.count, manifest.dim)  # the codes load on first use
        links = int(params.get("graph", 0))
        graph = None
        if links:
            check_graph(path, manifest.count)  # the graph loads on first use of ef
            graph = CodesIndex(Lazy(lambda: GraphStore.open(path, manifest.count, manifest.dim)), code_bytes)
        per_cell = None
        if params.get("cells"):
            if not (path / CELLS_FILE).is_file():
                raise CorruptIndex(f"{path}: {CELLS_FILE} is missing; rebuild the index")
            per_cell = Lazy(lambda: CellsStore.open(path, manifest.count, manifest.dim, manifest.partitions))
        return RabitqIndex(Lazy(lambda: RabitqStore.open(path, manifest.count, manifest.dim)), code_bytes, graph, links, per_cell)


class RabitqIndex(CodesIndex[RabitqStore]):
    """The flat codes (`store`), and if built, the graph over the same codes (`graph`) and the
    codes per cell (`cells`, for probe), each loaded on first use; graph_links: the graph's
    HNSW M (0: none)."""

    def __init__(
        self,
        store: Lazy[RabitqStore],
        code_bytes: int,
        graph: CodesIndex[GraphStore] | None,
        graph_links: int,
        cells: Lazy[CellsStore] | None = None,
    ):
        super().__init__(store, code_bytes)
        self.graph, self.graph_links, self.cells = graph, graph_links, cells


def _probe(
    store: CellsStore, starts: np.ndarray, stops: np.ndarray, offsets: np.ndarray, part: Part, query: Query, keep: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """The shortlist from the codes of each query's probed cells: their row ranges starts, stops
    (nq, P) int64 (part.ranges), in a version whose cells' rows start at offsets (cells + 1,)."""
    cells = np.where(stops > starts, np.searchsorted(offsets, starts, side="right") - 1, -1)
    rows, scores = store.search(query.unit, keep, cells, part.alive)
    return rows, scores, int((stops - starts).sum()) // len(rows) * int(store.index.code_size)


def _walk(index: RabitqIndex, part: Part, query: Query, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The graph's shortlist of the version's rows; queries whose walk finds fewer than `keep`
    live rows (a selector that leaves few near them) take the flat scan's instead."""
    assert index.graph is not None  # ef_for refuses ef on a version without a graph
    rows, scores, read, short = index.graph.store.search(query.unit, keep, part.ef, part.alive)
    if short.any():
        again = np.flatnonzero(short)
        rows[again], scores[again] = index.store.search(query.unit[again], keep, part.alive)
        read += len(again) * part.stores.size * index.code_bytes
    return rows, scores, read // len(rows)


class RabitqBuilder:
    """Adds every input batch to the trained index (and the graph); writes them once at the end."""

    def __init__(self, store: RabitqStore, graph: GraphBuilder | None, cells: CellsBuilder | None, out: Path):
        self.store, self.graph, self.cells, self.out = store, graph, cells, out

    def add(self, start: int, unit: np.ndarray) -> None:
        self.store.add(start, unit)
        for extra in (self.graph, self.cells):
            if extra is not None:
                extra.add(start, unit)

    def finish(self, vectors: Rows, show_progress: bool) -> dict[str, Any]:
        self.store.save(self.out)
        params: dict[str, Any] = {"bits": 1}
        if self.graph is not None:
            self.graph.finish(self.out)
            params["graph"] = self.graph.links
        if self.cells is not None:
            self.cells.finish(self.out)
            params["cells"] = True
        return params

    def codec_arrays(self) -> dict[str, np.ndarray]:
        return {}


RABITQ = Rabitq()
