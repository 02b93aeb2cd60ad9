"""Sweep: measure recall@10 and latency of many budgets on one view, keep the Pareto front;
`auto:target_recall=R` then picks the cheapest budget that met R (`plan.calibration`).

Without user queries or a traffic sample, pseudo-queries cut from the stored texts
(eval/pseudo_queries.py) or, without texts, documents sampled from the collection stand
in for queries; each one's source row is left out of both the exact and the approximate
results, so finding itself does not inflate recall, and the points carry the query-gap
correction measured for such queries (plan/calibration.py). Latency is measured one query at a time
through the same executor, single-threaded, as the service runs searches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from vecdial.indexer.disk.sweep_file import read_partial, remove_partial, write_partial
from vecdial.indexer.disk.version import full_vectors
from vecdial.indexer.errors import BudgetError, InvalidInput
from vecdial.indexer.eval.metrics import recall_at_k
from vecdial.indexer.modes import MODES
from vecdial.indexer.modes.knobs import BudgetModel
from vecdial.indexer.plan.budget import format_budget, parse_budget
from vecdial.indexer.plan.calibration import (
    DOCUMENTS_MISS_FACTOR,
    PSEUDO_MISS_FACTOR,
    SweepPoint,
    mark_pareto,
    recall_lower_bound,
)
from vecdial.indexer.plan.execute import View, search
from vecdial.indexer.plan.per_query import QueryBins, bin_stats

# Real queries kept by a service (query_sample_rate) take over the default calibration from
# this many on: enough for a lower bound within a few points.
TRAFFIC_TAKES_OVER = 100
# Fewer pseudo-queries than this (rows without texts) and the default falls back to documents.
MIN_PSEUDO_QUERIES = 100

# Recall is measured in batches on every core (latency one query at a time, on one); a slow
# budget's timing stops after TIMING_SECONDS once MIN_TIMED queries are timed.
BATCH_THREADS = os.cpu_count() or 1
TIMING_SECONDS = 2.0
MIN_TIMED = 10

# Recall targets the sweep refines around, and how many bisection rounds it spends on them.
TARGETS = (0.9, 0.95, 0.99)
REFINE_ROUNDS = 3


def candidate_budgets(version) -> list[str]:
    """The budgets worth measuring for this version: every registered mode's points, and a
    funnel, less those the version cannot run (`servable`)."""
    budgets = [budget for mode in MODES.values() if mode.name != "exact" for budget in mode.sweep_budgets(version)]
    funnel = "funnel:binary*20>128*4>full" if version.dim > 128 else "funnel:binary*20>full"
    budgets.append(funnel)
    if version.partitions is not None:
        budgets.append(funnel + ",probe=0.2")
    return [budget for budget in budgets if servable(version, budget)] + ["exact"]


def servable(version, budget: str) -> bool:
    """Whether the version runs this budget: a mode's points may need a structure the version
    was built without (a probe over a binary index kept as a graph), which only its store knows.
    One stored vector is searched with it; BudgetError means no."""
    try:
        search(View(version, version.name), full_vectors(version, np.arange(1)), 10, budget)
    except BudgetError:
        return False
    return True


@dataclass(frozen=True)
class CalibrationQueries:
    """What a sweep measures on. queries: (nq, dim) float32; exclude_rows: (nq,) the version
    row each query was made from, left out of its answers (None for real queries); source:
    what they are, in words; miss_factor: the query-gap correction their points carry
    (1 for real queries, see plan/calibration.py)."""

    queries: np.ndarray
    exclude_rows: np.ndarray | None
    source: str
    miss_factor: float = 1.0


def sweep_queries(version, queries: str | np.ndarray, n: int, collection_dir, show_progress: bool = False) -> CalibrationQueries:
    """The calibration a sweep asked for with "default", "pseudo", "documents", "traffic",
    "demo" or an (nq, dim) array. "default": the traffic sample once it holds
    TRAFFIC_TAKES_OVER real queries, else pseudo-queries when the version has texts from the
    bundled model, else documents; both of the latter corrected for the query gap."""
    if isinstance(queries, str) and queries == "default":
        from vecdial.indexer.disk.query_sample import read_queries

        if len(read_queries(collection_dir, version.dim)) >= TRAFFIC_TAKES_OVER:
            queries = "traffic"
        else:
            pseudo = _pseudo_queries(version, n, show_progress)
            if pseudo is not None:
                return pseudo
            queries = "documents"
    if isinstance(queries, str) and queries == "documents":
        rows, matrix = sample_documents(version, n)
        return CalibrationQueries(
            matrix,
            rows,
            f"documents ({len(matrix)} stored vectors, misses x{DOCUMENTS_MISS_FACTOR:g} for the query gap)",
            DOCUMENTS_MISS_FACTOR,
        )
    if isinstance(queries, str) and queries == "pseudo":
        pseudo = _pseudo_queries(version, n, show_progress)
        if pseudo is None:
            raise InvalidInput(
                "queries='pseudo' needs a collection built with texts and the bundled model (the text extra installed), "
                "most rows with a text: use 'documents' or your own queries"
            )
        return pseudo
    if isinstance(queries, str) and queries == "traffic":
        from vecdial.indexer.disk.query_sample import read_queries

        matrix = read_queries(collection_dir, version.dim)
        if len(matrix) < 10:
            raise InvalidInput(
                f"the traffic sample holds {len(matrix)} queries: serve with query_sample_rate above 0 (e.g. VECDIAL_QUERY_SAMPLE_RATE=0.05) and sweep once it has some"
            )
        return CalibrationQueries(
            matrix[-n:] if n else matrix, None, f"traffic ({min(len(matrix), n or len(matrix))} sampled real queries)"
        )
    if isinstance(queries, str) and queries == "demo":
        from vecdial.indexer.io.demo import demo_embeddings

        return CalibrationQueries(demo_embeddings(show_progress=show_progress)[1], None, "demo queries")
    if isinstance(queries, str):
        raise InvalidInput(f"queries={queries!r}: use 'default', 'pseudo', 'documents', 'traffic', 'demo' or an array of query vectors")
    return CalibrationQueries(np.asarray(queries, dtype=np.float32), None, f"user queries ({len(queries)})")


def _pseudo_queries(version, n: int, show_progress: bool) -> CalibrationQueries | None:
    """Pseudo-queries cut from n stored texts, or None when the version cannot make
    min(n, MIN_PSEUDO_QUERIES) of them (no texts, another model, few rows with a text)."""
    from vecdial.indexer.eval.pseudo_queries import can_make_pseudo_queries, sample_pseudo_queries

    if not can_make_pseudo_queries(version):
        return None
    rows, matrix, _ = sample_pseudo_queries(version, n, show_progress=show_progress)
    if len(matrix) < min(n, MIN_PSEUDO_QUERIES, version.size):
        return None
    source = f"pseudo-queries ({len(matrix)} titles, first sentences and spans of stored texts, misses x{PSEUDO_MISS_FACTOR:g} for the query gap)"
    return CalibrationQueries(matrix, rows, source, PSEUDO_MISS_FACTOR)


def sample_documents(version, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rows (n,), vectors (n, dim)): stored documents in the original basis, to use as queries."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(version.size, size=min(n, version.size), replace=False))
    return rows, full_vectors(version, rows)


def run_sweep(
    view: View,
    queries: np.ndarray,
    budgets: list[str] | None = None,
    exclude_rows: np.ndarray | None = None,
    timed_queries: int = 50,
    show_progress: bool = False,
    refine: bool = True,
    max_seconds: float | None = None,
    done: list[SweepPoint] | None = None,
    on_point: Callable[[list[SweepPoint]], None] | None = None,
    miss_factor: float = 1.0,
    bins: tuple[QueryBins, np.ndarray] | None = None,
) -> list[SweepPoint]:
    """Recall@10 against exact and one-query-at-a-time latency for each budget; Pareto front marked.

    queries: (nq, dim); exclude_rows: (nq,) a version row to drop from query i's results (its own
    document). refine: then bisect each mode's refinable knob between measured points that bracket
    a recall target (TARGETS), so the cheapest budget meeting it is not missed between grid points.
    max_seconds: stop measuring new budgets past this time (what was measured is kept).
    done: points an interrupted sweep on the same queries measured (reused, not measured again);
    on_point: called with every point so far after each one is measured (to save progress).
    miss_factor: the query-gap correction of these queries, carried by every point.
    bins: (the difficulty bins of these queries, (nq,) each query's bin) from plan/per_query.py's
    make_bins: every point then keeps its recall per bin, for per-query `auto`.
    """
    version = view.version
    budgets = list(budgets or candidate_budgets(version))
    exclude = None if exclude_rows is None else np.asarray(version.ids[exclude_rows])
    extra = 0 if exclude is None else 1
    exact = search(view, queries, 10 + extra, "exact", threads=BATCH_THREADS)
    truth = _drop(exact.id_lists(), exclude)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    measured = {p.budget: p for p in done or ()}
    points: list[SweepPoint] = []
    with tqdm(total=len(budgets), desc="sweep", unit="budget", disable=not show_progress) as progress:
        for round_ in range(1 + (REFINE_ROUNDS if refine else 0)):
            todo = budgets if round_ == 0 else refine_budgets(points)
            if not todo:
                break
            if round_:  # refinement points join the bar as they are found
                progress.total = progress.n + len(todo)
            for spec in todo:
                if spec in measured:
                    points.append(measured[spec])
                elif deadline is not None and time.monotonic() > deadline:
                    return mark_pareto(points)
                else:
                    points.append(_measure(view, queries, spec, truth, exclude, extra, timed_queries, miss_factor, exact, bins))
                    if on_point is not None:
                        on_point(points)
                progress.update(1)
    return mark_pareto(points)


def resumable_sweep(
    view: View, queries: np.ndarray, budgets: list[str], exclude_rows: np.ndarray | None = None, **options
) -> list[SweepPoint]:
    """run_sweep that saves each point beside the version as it is measured, so a sweep
    interrupted (killed, or stopped by max_seconds) and run again on the same queries and
    budgets measures only what is left. The saved progress is removed once it completes."""
    path = view.version.path
    key = hashlib.sha256(
        queries.tobytes() + repr((budgets, options.get("miss_factor", 1.0), options.get("bins") is not None)).encode()
    ).hexdigest()
    points = run_sweep(
        view,
        queries,
        budgets,
        exclude_rows,
        done=read_partial(path, key),
        on_point=lambda so_far: write_partial(path, key, so_far),
        **options,
    )
    if {format_budget(parse_budget(b)) for b in budgets} <= {p.budget for p in points}:  # not stopped early
        remove_partial(path)
    return points


def with_documents_recall(view: View, points: list[SweepPoint], n: int) -> list[SweepPoint]:
    """The points with `documents_recall`: each budget's recall@10 with n stored documents as
    queries (each leaving itself out), beside its recall on the real queries it was swept on."""
    rows, queries = sample_documents(view.version, n)
    exclude = np.asarray(view.version.ids[rows])
    truth = _drop(search(view, queries, 11, "exact", threads=BATCH_THREADS).id_lists(), exclude)
    out = []
    for point in points:
        found = _drop(search(view, queries, 11, point.budget, threads=BATCH_THREADS).id_lists(), exclude)
        out.append(dataclasses.replace(point, documents_recall=round(recall_at_k(found, truth, 10), 4)))
    return out


def refine_budgets(points: list[SweepPoint], targets: tuple[float, ...] = TARGETS) -> list[str]:
    """Budgets not yet measured halfway between two measured budgets of one family (the same
    mode and knobs but its refinable one: `Mode.refine_knob`, e.g. rabitq's `ef` for graph
    budgets) whose recall lower bounds bracket a target."""
    # (mode, refinable knob, the other knobs' values) -> (knob value, recall, budget) of each point
    families: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[tuple[int, float, BudgetModel]]] = {}
    for point in points:
        budget = parse_budget(point.budget)
        name = getattr(budget, "mode", "")
        mode = MODES.get(name)
        knob = mode.refine_knob(budget) if mode is not None else None
        if knob is None or not isinstance(getattr(budget, knob, None), int):
            continue
        key = (name, knob, tuple(sorted((k, str(v)) for k, v in budget.model_dump().items() if k != knob)))
        families.setdefault(key, []).append((getattr(budget, knob), point.trusted_recall, budget))
    measured = {p.budget for p in points}
    new: list[str] = []
    for (_, knob, _), family in families.items():
        family.sort(key=lambda item: item[0])
        for (low, low_recall, budget), (high, high_recall, _) in zip(family, family[1:]):
            if high - low > 1 and any(low_recall < t <= high_recall for t in targets):
                spec = format_budget(budget.model_copy(update={knob: (low + high) // 2}))
                if spec not in measured and spec not in new:
                    new.append(spec)
    return new


def _measure(
    view: View,
    queries: np.ndarray,
    spec: str,
    truth: list[list],
    exclude,
    extra: int,
    timed_queries: int,
    miss_factor: float = 1.0,
    exact=None,
    bins=None,
) -> SweepPoint:
    """One budget's point: recall@10 (mean and lower bound, and per difficulty bin when `bins`
    is given) over every query, in one batch on every core (exact's own is the truth search's:
    `exact`), latency over the first few."""
    budget = parse_budget(spec)
    hits = (
        exact
        if exact is not None and format_budget(budget) == "exact"
        else search(view, queries, 10 + extra, budget, threads=BATCH_THREADS)
    )
    found = _drop(hits.id_lists(), exclude)
    per_query = [recall_at_k([got], [want], 10) for got, want in zip(found, truth)]
    bin_recall, bin_sd = bin_stats(per_query, bins[1], len(bins[0].counts)) if bins is not None else (None, None)
    return SweepPoint(
        budget=format_budget(budget),
        recall_at_10=round(float(np.mean(per_query)), 4),
        ms_per_query=round(_median_ms(view, queries[:timed_queries], budget), 4),
        bytes_read_per_vector=round(hits.explain.bytes_scanned / view.version.size, 2),
        recall_lower=round(recall_lower_bound(per_query), 4),
        queries=len(per_query),
        miss_factor=miss_factor,
        bin_recall=bin_recall,
        bin_sd=bin_sd,
    )


def _median_ms(view: View, queries: np.ndarray, budget) -> float:
    """Median latency of one query at a time: robust to a busy neighbour on the machine.
    A slow budget stops after TIMING_SECONDS (at least MIN_TIMED queries): at 1M rows a full
    scan takes ~0.2 s a query, and 50 of them per budget would dominate the sweep."""
    times: list[float] = []
    spent = 0.0
    for q in queries:
        started = time.perf_counter()
        search(view, q, 10, budget)
        times.append(time.perf_counter() - started)
        spent += times[-1]
        if len(times) >= MIN_TIMED and spent > TIMING_SECONDS:
            break
    return float(np.median(times)) * 1000


def _drop(ids: list[list], exclude: np.ndarray | None) -> list[list]:
    """Remove each query's excluded id (its own document) and keep the first 10 of the rest."""
    if exclude is None:
        return [found[:10] for found in ids]
    return [[x for x in found if x != own][:10] for found, own in zip(ids, exclude.tolist())]
