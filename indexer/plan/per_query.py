"""Per-query `auto`: each query spends what its own difficulty needs, not one budget for all.

Before any stage runs, a query's scores against the partition centroids say how hard it is:
when its nearest cells stand out from the rest (a large `margin`: the best centroid score
minus the `cells`-th best), its neighbours sit in a few cells and a narrow probe finds them;
when many cells score alike, its neighbours are spread out and it needs a wide probe, a
rescore of more candidates or a full scan. The sweep sorts its calibration queries into
bins by this margin (quantile edges, `QueryBins`) and keeps every budget's recall per bin
(`SweepPoint.bin_recall`, `bin_sd`). For `auto:target_recall=T`, `plan_per_query` then
picks one budget per bin, the assignment of least expected time whose recall meets T:

- over the calibration queries, by the same rule as one budget for all: the one-sided 95%
  lower bound of the mean (stratified over the bins), its misses scaled by the points'
  `miss_factor`, meets T;
- and in every bin, the bin's own mean (misses scaled alike) meets T - BIN_SLACK, so a
  stream of hard queries is not served by what only the easy ones made up for.

At query time the margin is one small FAISS search over the centroids (the one a probe makes
anyway) and picks the query's bin, hence its budget; a batch is split by budget and put back
in row order. Sweeps from before (no bins) serve `auto` with one budget, as they did.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from vecdial.indexer.plan.calibration import SweepPoint
from vecdial.indexer.plan.results import Hits

BINS = 4  # 300 calibration queries: 75 a bin, enough for a per-bin mean within a few points
SIGNAL_CELLS = 8  # the margin is over the 8th nearest centroid (see margins)
BIN_SLACK = 0.02  # how far below T one bin's expected recall may fall while the mean meets T
MIN_CELLS = 2 * SIGNAL_CELLS  # fewer partitions than this: no per-query auto
FRONT = 10  # per bin, the cheapest points of its recall/latency front kept for the assignment search


@dataclass(frozen=True)
class QueryBins:
    """How queries are sorted by difficulty. cells: the margin is the best centroid score minus
    the cells-th best; edges: (bins - 1,) ascending margins between bins (bin 0: the smallest
    margins, the hardest queries); counts: (bins,) calibration queries in each."""

    cells: int
    edges: tuple[float, ...]
    counts: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "edges", tuple(float(e) for e in self.edges))
        object.__setattr__(self, "counts", tuple(int(c) for c in self.counts))

    def of(self, margins: np.ndarray) -> np.ndarray:
        """margins (nq,) -> (nq,) bin of each query."""
        return np.searchsorted(np.asarray(self.edges), margins, side="right")


def margins(partitions, unit: np.ndarray, cells: int, depth: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """unit (nq, dim) float32 unit queries -> ((nq,) best centroid score minus the cells-th best,
    (nq, max(cells, depth)) the nearest cells, nearest first: what a probe of up to depth reads)."""
    scores, nearest = partitions.index.search(np.ascontiguousarray(unit, dtype=np.float32), min(max(cells, depth), partitions.count))
    return scores[:, 0] - scores[:, cells - 1], nearest


def make_bins(partitions, queries: np.ndarray, bins: int = BINS) -> tuple[QueryBins, np.ndarray] | None:
    """(the bins of these calibration queries (nq, dim), (nq,) each query's bin), or None when the
    version has too few partitions (or queries) to tell queries apart."""
    if partitions is None or partitions.count < MIN_CELLS or len(queries) < 20 * bins:
        return None
    signal = margins(partitions, queries, SIGNAL_CELLS)[0]
    edges = np.quantile(signal, np.arange(1, bins) / bins)
    made = QueryBins(SIGNAL_CELLS, tuple(edges), ())
    which = made.of(signal)
    return replace(made, counts=tuple(np.bincount(which, minlength=bins))), which


def bin_stats(per_query: Sequence[float], which: np.ndarray, bins: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-query recalls (nq,) and their bins (nq,) -> (per-bin mean, per-bin sd), rounded."""
    values = np.asarray(per_query, dtype=np.float64)
    means, sds = [], []
    for b in range(bins):
        in_bin = values[which == b]
        means.append(round(float(in_bin.mean()), 4) if len(in_bin) else 0.0)
        sds.append(round(float(in_bin.std(ddof=1)), 4) if len(in_bin) > 1 else 0.0)
    return tuple(means), tuple(sds)


@dataclass(frozen=True)
class PerQueryPlan:
    """auto's choice per bin. points: (bins,) the point each bin's queries run; expected: (bins,)
    recall expected of a query in that bin (misses scaled by miss_factor); trusted: what the
    assignment counts on over queries like the calibration ones (corrected lower bound);
    ms: expected time a query."""

    bins: QueryBins
    points: tuple[SweepPoint, ...]
    expected: tuple[float, ...]
    trusted: float
    ms: float

    def describe(self) -> str:
        return (
            f"per query by difficulty (the margin of the nearest partition over the {self.bins.cells}th), {len(self.points)} bins: "
            + "; ".join(f"bin {b}: {p.budget} expecting {e:.3f}" for b, (p, e) in enumerate(zip(self.points, self.expected)))
            + f"; {self.trusted:.3f} expected over all queries (95% lower bound, query-gap corrected), {self.ms:.3f} ms a query"
        )


def plan_per_query(
    points: Sequence[SweepPoint],
    bins: QueryBins | None,
    target: float,
    fixed: SweepPoint | None,
    max_latency_ms: float | None = None,
    max_bytes_per_vector: float | None = None,
) -> PerQueryPlan | None:
    """The per-bin assignment of least expected time meeting `target` (see the module's rules),
    or None when the sweep has no bins, no assignment meets it within the limits, or it is not
    expected to be faster than `fixed`, the one budget `auto` would run for every query."""
    measured = [
        p
        for p in points
        if p.bin_recall is not None
        and p.bin_sd is not None
        and len(p.bin_recall) == len(bins.counts if bins else ())
        and (max_latency_ms is None or p.ms_per_query <= max_latency_ms)
        and (max_bytes_per_vector is None or p.bytes_read_per_vector <= max_bytes_per_vector)
    ]
    if bins is None or not measured:
        return None
    counts = np.asarray(bins.counts, dtype=np.float64)
    total = counts.sum()
    factor = max(p.miss_factor for p in measured)
    fronts = []
    for b in range(len(counts)):
        floor = [p for p in measured if 1 - factor * (1 - _recall(p, b)) >= target - BIN_SLACK]
        fronts.append(_front(floor, b)[:FRONT])
        if not fronts[-1]:
            return None
    best: tuple[float, tuple[SweepPoint, ...]] | None = None
    for combo in itertools.product(*fronts):
        ms = float(sum(c * p.ms_per_query for c, p in zip(counts, combo)) / total)
        if best is not None and ms >= best[0]:
            continue
        if _trusted(combo, counts, factor) >= target:
            best = (ms, combo)
    if best is None or (fixed is not None and best[0] >= fixed.ms_per_query):
        return None
    ms, combo = best
    expected = tuple(max(1 - factor * (1 - _recall(p, b)), 0.0) for b, p in enumerate(combo))
    return PerQueryPlan(bins, combo, expected, round(_trusted(combo, counts, factor), 4), round(ms, 4))


@lru_cache(maxsize=64)
def planned(sweep: tuple[SweepPoint, ...], bins: QueryBins, budget, fixed: SweepPoint) -> PerQueryPlan | None:
    """plan_per_query for an `auto` budget (AutoBudget), kept per sweep: a view is made anew on
    every write, its sweep is not."""
    return plan_per_query(sweep, bins, budget.target_recall, fixed, budget.max_latency_ms, budget.max_bytes_per_vector)


def _front(points: list[SweepPoint], b: int) -> list[SweepPoint]:
    """Points no other beats in bin b on both time and recall, fastest first."""
    front, best = [], -1.0
    for p in sorted(points, key=lambda p: (p.ms_per_query, -_recall(p, b))):
        if _recall(p, b) > best:
            front.append(p)
            best = _recall(p, b)
    return front


def _recall(p: SweepPoint, b: int) -> float:
    """Bin b's mean recall of a point plan_per_query kept (it keeps only points measured per bin)."""
    assert p.bin_recall is not None, "plan_per_query keeps only points with per-bin recall"
    return p.bin_recall[b]


def _sd(p: SweepPoint, b: int) -> float:
    """Bin b's standard deviation of recall of a point plan_per_query kept."""
    assert p.bin_sd is not None, "plan_per_query keeps only points with per-bin recall"
    return p.bin_sd[b]


def _trusted(combo: Sequence[SweepPoint], counts: np.ndarray, factor: float) -> float:
    """The stratified mean over the bins less 1.645 of its standard error, misses x factor."""
    total = counts.sum()
    mean = sum(c * _recall(p, b) for b, (c, p) in enumerate(zip(counts, combo))) / total
    variance = sum(c * _sd(p, b) ** 2 for b, (c, p) in enumerate(zip(counts, combo))) / total**2
    lower = min(max(mean - 1.645 * math.sqrt(variance), 0.0), 1.0)
    return max(1 - factor * (1 - lower), 0.0)


def run_per_query(
    chosen: PerQueryPlan,
    unit: np.ndarray,
    partitions,
    run: Callable[[SweepPoint, np.ndarray | None, np.ndarray], Hits],
    auto: str,
    source: str | None,
    depth: int = 0,
) -> Hits:
    """Each query's bin from its margin, the bin's budget run (`run(point, rows, nearest)`: the hits
    of queries unit[rows], or of all of them for rows None, given their (m, depth) nearest cells)
    once per budget chosen, the hits put back in row order; explain says per query what it spent
    and the recall expected of it. unit: (nq, dim) unit queries; auto: the budget as asked."""
    started = time.perf_counter()
    margin, nearest = margins(partitions, unit, chosen.bins.cells, depth)
    which = chosen.bins.of(margin)  # (nq,) each query's bin
    spent = [chosen.points[b] for b in which.tolist()]
    groups: dict[str, list[int]] = {}
    for row, point in enumerate(spent):
        groups.setdefault(point.budget, []).append(row)
    if len(groups) == 1:
        hits = run(spent[0], None, nearest)
    else:
        hits = join_in_row_order(
            [(np.asarray(rows), run(spent[rows[0]], np.asarray(rows), nearest[rows])) for rows in groups.values()], len(unit)
        )
        hits.explain.budget = f"{auto} -> per query: " + ", ".join(f"{budget} x{len(rows)}" for budget, rows in groups.items())
    explain = hits.explain
    explain.calibration = f"{chosen.describe()}; calibrated on {source}"
    explain.per_query = [
        {"budget": point.budget, "bin": b, "margin": round(m, 4), "expected_recall": round(chosen.expected[b], 4)}
        for point, b, m in zip(spent, which.tolist(), margin.tolist())
    ]
    explain.total_ms = round((time.perf_counter() - started) * 1000, 3)
    return hits


def join_in_row_order(groups: list[tuple[np.ndarray, Hits]], nq: int) -> Hits:
    """Hits of groups of a batch's queries ((m,) rows, their hits) -> one Hits for the nq queries in
    row order; its explain lists every group's stages and averages bytes scanned over the queries."""
    width = max(hits.ids.shape[1] for _, hits in groups)
    first = groups[0][1]
    ids = np.full((nq, width), -1 if first.ids.dtype == np.int64 else None, dtype=first.ids.dtype)
    scores = np.full((nq, width), -np.inf, dtype=np.float32)
    found = np.zeros(nq, dtype=np.asarray(first.found).dtype)
    for rows, hits in groups:
        ids[rows, : hits.ids.shape[1]] = hits.ids
        scores[rows, : hits.scores.shape[1]] = hits.scores
        found[rows] = hits.found
    lists: dict[str, list | None] = {}
    for name in ("texts", "payloads", "features"):
        lists[name] = None
        if getattr(first, name) is not None:
            values: list[object] = [None] * nq
            for rows, hits in groups:
                for row, value in zip(rows.tolist(), getattr(hits, name)):
                    values[row] = value
            lists[name] = values
    explain = dataclasses.replace(first.explain, stages=[stage for _, hits in groups for stage in hits.explain.stages])
    explain.bytes_scanned = int(sum(len(rows) * hits.explain.bytes_scanned for rows, hits in groups) / nq)
    return Hits(ids, scores, found, lists["texts"], explain, lists["payloads"], lists["features"])


def plan_for(view: Any, requested, point: SweepPoint | None) -> PerQueryPlan | None:
    """`auto` on a sweep with difficulty bins: the budget per bin (or None: `point` for all), once per
    view (plan/execute.py's View: its sweep, bins and version)."""
    if point is None or not requested.per_query or view.sweep_bins is None or view.version.partitions is None:
        return None
    if requested not in view.chosen:
        view.chosen[requested] = planned(view.sweep or (), view.sweep_bins, requested, point)
    return view.chosen[requested]
