"""The one executor: every search, of a version alone or of a live collection, runs here.

A search validates k, the budget and the queries once, resolves `auto` once
(through the sweep its view carries), compiles the plan once, then runs each
stage over every part of the view (the version's rows minus deletions, and the
rows written since, held in the same store classes) and merges the parts' best
rows with FAISS heaps. Deletions are masked inside the stages, so a search
returns k hits whenever k live items exist. A filter on payloads is checked once,
evaluated per part and applied inside every stage too (or, when few rows match, by
scoring just those rows exactly): see filters/select.py.

The parts and their one row numbering (version rows, then the segment's from the version's
size on) are the view's `RowSpace` (plan/rows.py); what a search asks for travels to every
stage as one `SearchOptions` (plan/options.py), made where the search comes in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any, cast

import numpy as np

from vecdial.indexer.codecs.partition import Partitions
from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.features.serve import features_of, hit_features, steer_queries
from vecdial.indexer.filters.match import check_filter
from vecdial.indexer.filters.select import Selection, score_rows, select
from vecdial.indexer.filters.table import PayloadTable
from vecdial.indexer.filters.tree import Node, parse_filter
from vecdial.indexer.modes import MODES, Part, Query
from vecdial.indexer.native import search_threads, single_threaded
from vecdial.indexer.plan.budget import format_budget, parse_budget
from vecdial.indexer.plan.calibration import SweepPoint, resolve_budget
from vecdial.indexer.plan.compile import compile_cached
from vecdial.indexer.plan.hit_fields import ids_of, payloads_of, texts_of
from vecdial.indexer.plan.hybrid import fuse_parts
from vecdial.indexer.plan.options import MAX_K as MAX_K  # re-exported: the front door's bound on k
from vecdial.indexer.plan.options import SearchOptions
from vecdial.indexer.plan.per_query import PerQueryPlan, QueryBins, plan_for, run_per_query
from vecdial.indexer.plan.results import Explain, Hits, StageReport
from vecdial.indexer.plan.rows import Found, RowSpace
from vecdial.indexer.stores import kernels
from vecdial.indexer.stores.alive import AliveRows
from vecdial.indexer.stores.binary import binary_scores
from vecdial.indexer.stores.topk import topk
from vecdial.indexer.vectors import as_query_matrix, normalize_rows

# Stored documents find their neighbours more easily than real queries do; sweeps now correct
# for it (SweepPoint.miss_factor), and a sweep written before that is flagged as optimistic.
OPTIMISTIC = " (stored documents as queries, uncorrected: optimistic for real ones; sweep again)"


@dataclass(frozen=True)
class View:
    """What one search runs over, never modified: share it between threads.

    version: the serving Version; alive: its rows still served (None: all);
    segment: rows written since it was built (stores plus `ids`, `texts`), or None;
    sweep: the version's measured points, for `auto`; name: the version's name.
    `rows` numbers the two as one row space (plan/rows.py).
    """

    version: Any
    name: str
    alive: AliveRows | None = None
    segment: Any = None
    sweep: tuple[SweepPoint, ...] | None = None
    sweep_source: str | None = None
    sweep_bins: QueryBins | None = None  # the sweep's difficulty bins, for per-query `auto`
    chosen: dict = field(default_factory=dict, compare=False, repr=False)  # auto budget -> its PerQueryPlan (or None)

    @cached_property
    def rows(self) -> RowSpace:
        """The version's rows then the segment's, with their deletions: made once per view (it never changes)."""
        return RowSpace.of(self.version, self.alive, self.segment)

    def payload_types(self) -> dict[str, str]:
        """Every payload field of the collection -> its type (the version's and those written since)."""
        return self.segment.payload_types if self.segment is not None else self.version.payloads.types

    def version_payloads(self) -> PayloadTable:
        return self.rows.payload_table(0)


@dataclass(frozen=True)
class Compiled:
    """A budget made ready to run on one version: as asked (`requested`), as run (`used`: what
    `auto` resolved to), the sweep point it was chosen at (None unless `auto`) and its stages."""

    requested: Any
    used: Any
    point: SweepPoint | None
    plan: tuple


def search(view: View, queries: np.ndarray, k: int = 10, budget: Any = "exact", **options: Any) -> Hits:
    """`run` with the options as keywords (SearchOptions' fields: with_text, threads, filter,
    with_payload, hybrid, steer, explain_features): for callers inside the library."""
    return run(view, queries, SearchOptions(k, budget, **options))


def run(view: View, queries: np.ndarray, options: SearchOptions) -> Hits:
    """The best k live items per query under the budget, among the items `options.filter` keeps
    (filters/tree.py: a JSON object, or None for all). queries: (dim,) or (nq, dim) float.
    See SearchOptions for the rest: texts and payloads of hits, fusion with BM25 (plan/hybrid.py),
    steering along sparse features and each hit's shared features (features/serve.py)."""
    version = view.version
    where = None if options.filter is None else check_filter(parse_filter(options.filter), view.payload_types())
    compiled = _compiled(view, options.budget, options.depth)
    unit = normalize_rows(as_query_matrix(queries, version.dim, check=False), "query")  # checks finiteness
    steered = None
    if options.steer is not None:
        unit, steered = steer_queries(version, unit, options.steer)
    if options.explain_features:
        features_of(version)  # BudgetError now, before any work, without sparse codes
    hybrid = options.hybrid
    if hybrid is not None and hybrid.texts is not None and len(hybrid.texts) != len(unit):
        raise InvalidInput(f"hybrid: {len(hybrid.texts)} query texts for {len(unit)} queries")
    if hybrid is None and plan_for(view, compiled.requested, compiled.point) is not None:
        go = lambda: _run_per_query(view, compiled, unit, options, where)  # noqa: E731
    else:
        go = lambda: _run(view, compiled, Query(unit, version), options, where)  # noqa: E731
    if options.threads is None or options.threads <= 1 or len(unit) == 1:
        single_threaded()
        hits = go()
    else:
        with search_threads(options.threads):
            hits = go()
    if steered is not None:
        hits.explain.steer = steered
    return hits


def _run_per_query(view: View, compiled: Compiled, unit: np.ndarray, options: SearchOptions, where: Node | None) -> Hits:
    """`auto` per query (plan/per_query.py): each budget's queries, probing the margins' centroid ranking.
    compiled: the `auto` budget as resolved for all queries; each bin's point runs its own plan."""
    chosen = cast(PerQueryPlan, plan_for(view, compiled.requested, compiled.point))  # `run` found one; kept in the view
    budgets = {p.budget: _compiled(view, p.budget, options.k) for p in chosen.points}
    depth = max(c.plan[0].probe for c in budgets.values())

    def run_point(point: SweepPoint, rows: np.ndarray | None, nearest: np.ndarray) -> Hits:
        spent = budgets[point.budget]
        query = Query(unit if rows is None else unit[rows], view.version)
        probe = spent.plan[0].probe
        if probe:
            query.form(("cells", probe), lambda: np.ascontiguousarray(nearest[:, :probe]))
        return _run(view, Compiled(compiled.requested, spent.used, point, spent.plan), query, options, where)

    auto = format_budget(compiled.requested)
    return run_per_query(chosen, unit, view.version.partitions, run_point, auto, view.sweep_source, depth)


def _compiled(view: View, budget: Any, depth: int) -> Compiled:
    """The budget compiled for the view's version. A budget string that is not `auto` always
    compiles to the same plan on a version: kept per version under the string itself, so a
    repeated search skips parsing, hashing the budget model and the plan lookup."""
    key = ("string", budget, depth) if isinstance(budget, str) else None
    cached = (view.version.plans.get(key) or view.chosen.get(key)) if key is not None else None
    if cached is not None:
        return cached
    requested = parse_budget(budget)
    used, point = resolve_budget(requested, view.sweep)
    compiled = Compiled(requested, used, point, compile_cached(used, view.version, depth))
    if key is not None:  # auto resolves through the view's sweep: kept with the view
        (view.version.plans if point is None else view.chosen)[key] = compiled
    return compiled


def _run(view: View, compiled: Compiled, query: Query, options: SearchOptions, where: Node | None) -> Hits:
    """Every stage of the plan over every part of the view's row space, then the merge and what
    the hits carry. The filter (`where`, checked) masks the parts or replaces the stages."""
    if len(query.unit) == 1 and options.plain:
        return _run_one(view, compiled, query, options.k)
    started = time.perf_counter()
    space = view.rows
    explain = _explain(view, compiled)
    selection = None
    plan = compiled.plan
    if where is not None:
        selection = select(list(space.parts), space.payload_tables(), where)
        explain.filter, space = selection.report.to_dict(), space.masked(selection.parts)
    found: list[Found] = []
    if selection is not None and selection.exact_rows:
        plan = ()
        _score_matches(selection, query, options.depth, found, explain)
    for stage in plan:
        t0 = time.perf_counter()
        mode = MODES[stage.mode]
        kept = read = 0
        for i, part in enumerate(space.parts):
            keep = min(stage.keep, part.live)
            if keep == 0:
                rows, scores, part_read = _nothing(len(query.unit))
                found[i : i + 1] = [(rows, scores)]
            elif stage.rescore:
                rows, scores, part_read = mode.rescore(part, query, found[i][0], stage.size, keep)
                found[i] = (rows, scores)
            else:
                rows, scores, part_read = mode.candidates(_narrowed(space, part, query, stage, keep), query, stage.size, keep)
                found.append((rows, scores))
            kept += rows.shape[1]
            read += part_read
        explain.stages.append(StageReport(stage.label, kept, read, _ms(t0)))
    hybrid = options.hybrid
    if hybrid is not None:
        t0 = time.perf_counter()
        fused_space = space if selection is None else space.masked(selection.masked_parts())
        found, fused = fuse_parts(fused_space, query, found, hybrid, options.k)
        explain.stages.append(StageReport(hybrid.describe(), fused, 0, _ms(t0)))
        explain.hybrid = hybrid.report()
    ids, scores, counts, rows = _merge(view.rows, found, options.k)
    texts = texts_of(view.rows, rows, counts) if options.with_text else None
    payloads = payloads_of(view.rows, rows, counts) if options.with_payload else None
    features = hit_features(view.rows, query.unit, rows, counts) if options.explain_features else None
    explain.bytes_scanned = sum(s.bytes_read for s in explain.stages)
    explain.total_ms = _ms(started)
    return Hits(ids, scores, counts, texts, explain, payloads, features)


def _run_one(view: View, compiled: Compiled, query: Query, k: int) -> Hits:
    """`_run` for one query with no filter, fusion or extras: the plans people run, with the
    Python between the compiled calls cut to what they need. Same stores, kernels and merge
    as `_run`, so the hits are the ones a batch gets (tests/indexer/plan/test_one_query.py).
    Per part: the first stage's one FAISS or compiled call (`_first_stage`), then one compiled
    rescore per later stage (`BlockStore.best_rows`)."""
    clock = time.perf_counter
    started = clock()
    space = view.rows
    plan = compiled.plan
    marks = []  # per stage: label, candidates kept, bytes read, started, ended (Explain is built from them if read)
    found: list[Found] = []
    for s, stage in enumerate(plan):
        t0 = clock()
        kept = read = 0
        for i, part in enumerate(space.parts):
            keep = min(stage.keep, part.live)
            if keep == 0:
                rows, scores, part_read = _nothing(1)
                if s:
                    found[i] = (rows, scores)
                else:
                    found.append((rows, scores))
            elif s:
                dense = part.stores.store("dense").blocks
                candidates = found[i][0]
                rows, scores, rescored = dense.rescore(query.rotated, candidates, stage.size, min(keep, candidates.shape[1]))
                part_read = rescored * dense.bytes_per_vector(stage.size)
                found[i] = (rows, scores)
            else:
                rows, scores, part_read = _first_stage(_narrowed(space, part, query, stage, keep), query, stage, keep, len(plan) == 1)
                found.append((rows, scores))
            kept += rows.shape[1]
            read += part_read
        marks.append((stage.label, kept, read, t0, clock()))
    ids, scores, counts = _merge_one(space, found, k)
    ended = clock()
    return Hits(ids, scores, counts, None, lambda: _explain_marked(view, compiled, marks, started, ended))


def _explain_marked(view: View, compiled: Compiled, marks: list[tuple], started: float, ended: float) -> Explain:
    """`_run_one`'s Explain, from the figures it took during the search: built when first read."""
    reports = [StageReport(label, kept, read, round((t1 - t0) * 1000, 3)) for label, kept, read, t0, t1 in marks]
    explain = _explain(view, compiled, reports)
    explain.bytes_scanned = sum(r.bytes_read for r in reports)
    explain.total_ms = round((ended - started) * 1000, 3)
    return explain


def _narrowed(space: RowSpace, part: Part, query: Query, stage, keep: int) -> Part:
    """The part as the stage reads it: with a probe, each query's nearest cells; with `ef`, a graph
    walk that wide. Only the version's rows are in cells and the graph: the segment's are read whole."""
    if not space.indexed(part):
        return part
    if stage.probe:  # compiled only for a version with partitions (compile.py `_cells`)
        part = _probed(part, space.version.partitions, query, stage.probe, keep)
    if stage.ef:
        part = Part(part.stores, part.alive, part.ranges, stage.ef)  # dataclasses.replace costs ~5 µs
    return part


def _first_stage(part: Part, query: Query, stage, keep: int, scored: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """The candidate stage over one (narrowed) part for one query. A full Hamming scan of a flat
    binary index goes to FAISS in one call; its Hamming scores are only converted when no rescore
    follows (`scored`). Every other stage is the mode's own `candidates`."""
    if stage.mode == "binary" and part.ranges is None:
        index = part.stores.store("binary")
        store = index.store
        if store.kind == "flat":
            codes = query.form("binary", lambda: _pack(query.unit, index.codec.thresholds, store.code_bytes))
            rows, distances = store.search_one(codes, keep, part.alive)
            scores = binary_scores(distances, rows, stage.size) if scored else _UNSCORED  # a rescore follows: never read
            return rows, scores, part.stores.size * store.code_bytes
    return MODES[stage.mode].candidates(part, query, stage.size, keep)


_UNSCORED = np.zeros((1, 0), dtype=np.float32)  # a first stage's scores when a rescore follows (never read)
_UNSCORED.flags.writeable = False


def _pack(unit: np.ndarray, thresholds: np.ndarray, code_bytes: int) -> np.ndarray:
    """BinaryCodec.encode of (nq, dim) unit queries in one compiled call -> (nq, code_bytes) uint8."""
    codes = np.empty((len(unit), code_bytes), dtype=np.uint8)
    kernels.pack_bits(unit, thresholds, codes)
    return codes


def _merge_one(space: RowSpace, found: list[Found], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_merge` for one query: ids, scores, counts. Found in the version alone with integer
    ids, one compiled call (kernels.hits_of) does what `_merge`'s numpy calls do."""
    ids = space.version.ids
    if not space.single or ids.dtype != np.int64:
        return _merge(space, found, k)[:3]
    rows, scores = found[0]
    out_ids, out_scores, counts = (
        np.empty(rows.shape, dtype=np.int64),
        np.empty(rows.shape, dtype=np.float32),
        np.zeros(len(rows), dtype=np.int64),
    )
    kernels.hits_of(rows, scores, ids, out_ids, out_scores, counts)
    return out_ids, out_scores, counts


def _score_matches(selection: Selection, query: Query, k: int, found: list, explain: Explain) -> None:
    """The `rows` strategy: every part's matching rows scored exactly, in place of the plan's stages."""
    t0 = time.perf_counter()
    kept = read = 0
    for part, rows in zip(selection.parts, selection.rows):
        best_rows, best_scores, part_read = score_rows(part, query, rows, k)
        found.append((best_rows, best_scores))
        kept, read = kept + best_rows.shape[1], read + part_read
    explain.stages.append(StageReport(f"filter:rows={selection.report.matched_rows}", kept, read, _ms(t0)))


def _probed(part: Part, partitions: Partitions, query: Query, cells: int, keep: int) -> Part:
    """The part restricted to the row ranges of each query's `cells` nearest partitions; more
    cells, nearest first, for a query whose cells deletions or a filter leave with fewer than
    `keep` live rows (a probe never returns fewer hits than exist). Each query reads the cells
    it needs, whatever else is in its batch: queries that need fewer get empty ranges."""
    nearest = query.form(("cells", cells), lambda: partitions.nearest(query.unit, cells))
    if part.alive is not None:
        live = part.alive.live_per_cell(partitions.offsets)
        if (live[nearest].sum(axis=1) < keep).any():
            ordered = partitions.nearest(query.unit, partitions.count)
            enough = np.cumsum(live[ordered], axis=1) >= min(keep, part.alive.count)
            needed = np.maximum(np.argmax(enough, axis=1) + 1, cells)  # (nq,) cells each query reads
            ordered = ordered[:, : int(needed.max())]
            starts, stops = partitions.offsets[ordered], partitions.offsets[ordered + 1]
            unread = np.arange(ordered.shape[1])[None, :] >= needed[:, None]
            return replace(part, ranges=(np.where(unread, 0, starts), np.where(unread, 0, stops)))
    return replace(part, ranges=(partitions.offsets[nearest], partitions.offsets[nearest + 1]))


def _merge(space: RowSpace, found: list[Found], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each part's best rows -> the best k of the union: ids (nq, k), scores (nq, k), counts (nq,),
    and the rows (nq, k) in the space's global numbering (-1 pads)."""
    rows, scores = space.join(found)
    if len(found) > 1:
        positions, scores = topk(scores, k)
        rows = np.take_along_axis(rows, np.maximum(positions, 0), axis=1)
    valid = np.isfinite(scores) & (rows >= 0)
    counts = valid.sum(axis=1)
    ids = ids_of(space, np.where(valid, rows, -1))
    return ids, np.where(valid, scores, -np.inf).astype(np.float32), counts, rows


def _nothing(nq: int) -> tuple[np.ndarray, np.ndarray, int]:
    return np.zeros((nq, 0), dtype=np.int64), np.zeros((nq, 0), dtype=np.float32), 0


def _explain(view: View, compiled: Compiled, stages: list[StageReport] | None = None) -> Explain:
    """The explain's header: the budget as run, the rows searched and deleted, and for `auto`
    the point it chose with its calibration (whose correction for easy queries it states)."""
    space, point = view.rows, compiled.point
    explain = Explain(budget=_describe(compiled.requested, compiled.used), version=view.name, stages=stages or [])
    explain.version_rows, explain.segment_rows = space.version_live, space.segment_live
    explain.deleted_rows = space.version_dead
    if point is not None:
        explain.calibration = f"{point.describe()}; calibrated on {view.sweep_source}"
        if point.miss_factor == 1.0 and (view.sweep_source or "").startswith("documents"):  # a sweep from before the correction
            explain.calibration += OPTIMISTIC
    return explain


@lru_cache(maxsize=1024)
def _describe(requested, used) -> str:
    """The budget as run; an auto budget shows what it resolved to."""
    if requested is used:
        return format_budget(used)
    return f"{format_budget(requested)} -> {format_budget(used)}"


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)
