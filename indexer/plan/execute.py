"""The one executor: every search, of a version alone or of a live collection, runs here.

A search validates k, the budget and the queries once, resolves `auto` once
(through the sweep its view carries), compiles the plan once, then runs each
stage over every part of the view (the version's rows minus deletions, and the
rows written since, held in the same store classes) and merges the parts' best
rows with FAISS heaps. Deletions are masked inside the stages, so a search
returns k hits whenever k live items exist.
"""

from __future__ import annotations

import time
from functools import lru_cache
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.modes import MODES, Part, Query
from vecdial.indexer.native import search_threads, single_threaded
from vecdial.indexer.plan.budget import format_budget, parse_budget
from vecdial.indexer.plan.calibration import SweepPoint, resolve_budget
from vecdial.indexer.plan.compile import compile_cached
from vecdial.indexer.stores.alive import AliveRows
from vecdial.indexer.stores.topk import topk
from vecdial.indexer.vectors import as_query_matrix, normalize_rows

MAX_K = 10_000
# Stored documents find their neighbours more easily than real queries do (measured at 1M:
# a budget swept at 0.944 delivered 0.838 on real queries), so explain says so.
OPTIMISTIC = " (stored documents as queries: optimistic for real ones; sweep with your own queries)"


@dataclass
class StageReport:
    stage: str
    candidates: int
    bytes_read: int
    ms: float


@dataclass
class Explain:
    """How a search spent its budget: the budget as run (`auto -> chosen`), the version that
    answered, per stage the candidates kept, bytes read per query and time; the live rows
    searched in the version and in the write segment, the version rows deleted since it was
    built, and for `auto` the calibration it was chosen on."""

    budget: str
    version: str
    stages: list[StageReport] = field(default_factory=list)
    bytes_scanned: int = 0
    total_ms: float = 0.0
    version_rows: int = 0
    segment_rows: int = 0
    deleted_rows: int = 0
    calibration: str | None = None

    def to_dict(self) -> dict:
        """As dataclasses.asdict, written out: asdict deep-copies every field, ~0.1 ms a search."""
        return {
            "budget": self.budget,
            "version": self.version,
            "stages": [{"stage": s.stage, "candidates": s.candidates, "bytes_read": s.bytes_read, "ms": s.ms} for s in self.stages],
            "bytes_scanned": self.bytes_scanned,
            "total_ms": self.total_ms,
            "version_rows": self.version_rows,
            "segment_rows": self.segment_rows,
            "deleted_rows": self.deleted_rows,
            "calibration": self.calibration,
        }


@dataclass(frozen=True)
class View:
    """What one search runs over, never modified: share it between threads.

    version: the serving Version; alive: its rows still served (None: all);
    segment: rows written since it was built (stores plus `ids`, `texts`), or None;
    sweep: the version's measured points, for `auto`; name: the version's name.
    """

    version: Any
    name: str
    alive: AliveRows | None = None
    segment: Any = None
    sweep: tuple[SweepPoint, ...] | None = None
    sweep_source: str | None = None

    def parts(self) -> list[Part]:
        parts = [Part(self.version, self.alive)]
        if self.segment is not None and self.segment.live:
            parts.append(Part(self.segment, self.segment.alive))
        return parts


@dataclass(frozen=True)
class Hits:
    """Best first, per query. ids: (nq, k) array of the collection's ids (int64, or object
    holding str), scores: (nq, k) float32; where a query found fewer than k hits the row
    is padded (score -inf). texts: per query, if asked for."""

    ids: np.ndarray
    scores: np.ndarray
    found: np.ndarray
    texts: list[list[str | None]] | None
    explain: Explain

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, query: int) -> list[dict]:
        """Query `query`'s hits as dicts of id, score (and text)."""
        n = int(self.found[query])
        ids, scores = self.ids[query, :n].tolist(), self.scores[query, :n].tolist()
        texts = self.texts[query] if self.texts is not None else None
        return [{"id": i, "score": s, **({"text": texts[j]} if texts is not None else {})} for j, (i, s) in enumerate(zip(ids, scores))]

    def id_lists(self) -> list[list]:
        """Per query, the ids found (no padding), as Python values."""
        return [self.ids[q, : int(n)].tolist() for q, n in enumerate(self.found)]

    def to_dict(self) -> dict:
        """The JSON shape the CLI prints and the HTTP API returns for a batch."""
        return {"results": [self[q] for q in range(len(self))], "explain": self.explain.to_dict()}


def search(view: View, queries: np.ndarray, k: int = 10, budget: Any = "exact", *, with_text: bool = False, threads: int | None = None) -> Hits:
    """The best k live items per query under the budget. queries: (dim,) or (nq, dim) float."""
    if not 0 < k <= MAX_K:
        raise InvalidInput(f"k={k} is out of range: use 1..{MAX_K}")
    version = view.version
    requested = parse_budget(budget)
    used, point = resolve_budget(requested, view.sweep)
    plan = compile_cached(used, version, k)
    unit = normalize_rows(as_query_matrix(queries, version.dim, check=False), "query")  # checks finiteness
    if threads is None or threads <= 1 or len(unit) == 1:
        single_threaded()
        return _run(view, plan, Query(unit, version), k, requested, used, point, with_text)
    with search_threads(threads):
        return _run(view, plan, Query(unit, version), k, requested, used, point, with_text)


def _run(view: View, plan, query: Query, k: int, requested, used, point: SweepPoint | None, with_text: bool) -> Hits:
    started = time.perf_counter()
    parts = view.parts()
    explain = Explain(budget=_describe(requested, used), version=view.name, version_rows=parts[0].live)
    explain.deleted_rows = view.version.size - parts[0].live
    explain.segment_rows = parts[1].live if len(parts) > 1 else 0
    if point is not None:
        explain.calibration = f"{point.describe()}; calibrated on {view.sweep_source}"
        if (view.sweep_source or "").startswith("documents"):
            explain.calibration += OPTIMISTIC
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for stage in plan:
        t0 = time.perf_counter()
        mode = MODES[stage.mode]
        kept = read = 0
        for i, part in enumerate(parts):
            keep = min(stage.keep, part.live)
            if keep == 0:
                rows, scores, part_read = _nothing(len(query.unit))
                found[i:i + 1] = [(rows, scores)]
            elif stage.rescore:
                rows, scores, part_read = MODES["dense"].rescore(part, query, found[i][0], stage.size, keep)  # type: ignore[attr-defined]
                found[i] = (rows, scores)
            else:
                if stage.probe and part.stores is view.version:  # only the version's rows are in cells
                    part = _probed(part, query, stage.probe)
                rows, scores, part_read = mode.candidates(part, query, stage.size, keep)
                found.append((rows, scores))
            kept += rows.shape[1]
            read += part_read
        explain.stages.append(StageReport(stage.label, kept, read, _ms(t0)))
    hits = _merge(view, found, k, with_text)
    explain.bytes_scanned = sum(s.bytes_read for s in explain.stages)
    explain.total_ms = _ms(started)
    return Hits(hits[0], hits[1], hits[2], hits[3], explain)


def _probed(part: Part, query: Query, cells: int) -> Part:
    """The part restricted to the row ranges of each query's `cells` nearest partitions."""
    partitions = part.stores.partitions
    nearest = query.form(("cells", cells), lambda: partitions.nearest(query.unit, cells))
    return replace(part, ranges=(partitions.offsets[nearest], partitions.offsets[nearest + 1]), cells=nearest)


def _merge(view: View, found: list[tuple[np.ndarray, np.ndarray]], k: int, with_text: bool):
    """Each part's best rows -> the best k of the union, as ids (and texts)."""
    version = view.version
    rows, scores = found[0]
    if len(found) > 1:
        seg_rows, seg_scores = found[1]
        offset = np.where(seg_rows >= 0, seg_rows + version.size, -1)
        positions, scores = topk(np.hstack([scores, seg_scores]), k)
        rows = np.take_along_axis(np.hstack([rows, offset]), np.maximum(positions, 0), axis=1)
    valid = np.isfinite(scores) & (rows >= 0)
    counts = valid.sum(axis=1)
    ids = _ids(view, np.where(valid, rows, -1))
    texts = _texts(view, rows, counts) if with_text else None
    return ids, np.where(valid, scores, -np.inf).astype(np.float32), counts, texts


def _ids(view: View, rows: np.ndarray) -> np.ndarray:
    """rows (nq, k): version rows, then segment rows from version.size on; -1 pads."""
    version = view.version
    int_ids = version.manifest.id_kind == "int"
    in_segment = rows >= version.size
    if not in_segment.any() and rows.size and rows.min() >= 0:  # the common case: all found in the version
        picked = version.ids[rows]
        return np.asarray(picked, dtype=np.int64) if int_ids else picked.astype(object)
    out = np.full(rows.shape, -1 if int_ids else None, dtype=np.int64 if int_ids else object)
    in_version = (rows >= 0) & ~in_segment
    if in_version.any():
        picked = np.asarray(version.ids[rows[in_version]])
        out[in_version] = picked if int_ids else picked.astype(object)
    if in_segment.any():
        seg_ids = view.segment.ids
        out[in_segment] = [seg_ids[r] for r in (rows[in_segment] - version.size).tolist()]
    return out


def _texts(view: View, rows: np.ndarray, counts: np.ndarray) -> list[list[str | None]]:
    version = view.version
    out = []
    for q_rows, n in zip(rows, counts):
        q_rows = q_rows[:n].tolist()
        stored = iter(version.texts([row for row in q_rows if row < version.size]))  # the version's only: one read each
        out.append([next(stored) if row < version.size else view.segment.texts[row - version.size] for row in q_rows])
    return out


def _nothing(nq: int) -> tuple[np.ndarray, np.ndarray, int]:
    return np.zeros((nq, 0), dtype=np.int64), np.zeros((nq, 0), dtype=np.float32), 0


@lru_cache(maxsize=1024)
def _describe(requested, used) -> str:
    """The budget as run; an auto budget shows what it resolved to."""
    if requested is used:
        return format_budget(used)
    return f"{format_budget(requested)} -> {format_budget(used)}"


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)
