"""Sweep: measure recall@10 and latency of many budgets on one view, keep the Pareto front;
`auto:target_recall=R` then picks the cheapest budget that met R (`plan.calibration`).

Without user queries, documents sampled from the collection stand in for queries;
each one's own row is left out of both the exact and the approximate results, so
finding itself does not inflate recall. Latency is measured one query at a time
through the same executor, single-threaded, as the service runs searches.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from vecdial.indexer.disk.version import full_vectors
from vecdial.indexer.eval.metrics import recall_at_k
from vecdial.indexer.modes import MODES
from vecdial.indexer.plan.budget import format_budget, parse_budget
from vecdial.indexer.plan.calibration import SweepPoint, mark_pareto, recall_lower_bound
from vecdial.indexer.plan.execute import View, search


def candidate_budgets(version) -> list[str]:
    """The budgets worth measuring for this version: every registered mode's points, and a funnel."""
    budgets = [budget for mode in MODES.values() if mode.name != "exact" for budget in mode.sweep_budgets(version)]
    funnel = "funnel:binary*20>128*4>full" if version.dim > 128 else "funnel:binary*20>full"
    budgets.append(funnel)
    if version.partitions is not None:
        budgets.append(funnel + ",probe=0.2")
    return budgets + ["exact"]


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
) -> list[SweepPoint]:
    """Recall@10 against exact and one-query-at-a-time latency for each budget; Pareto front marked.

    queries: (nq, dim); exclude_rows: (nq,) a version row to drop from query i's results (its own document).
    """
    version = view.version
    budgets = budgets or candidate_budgets(version)
    exclude = None if exclude_rows is None else np.asarray(version.ids[exclude_rows])
    extra = 0 if exclude is None else 1
    truth = _drop(search(view, queries, 10 + extra, "exact").id_lists(), exclude)
    points = []
    for spec in tqdm(budgets, desc="sweep", unit="budget", disable=not show_progress):
        budget = parse_budget(spec)
        hits = search(view, queries, 10 + extra, budget)
        found = _drop(hits.id_lists(), exclude)
        per_query = [recall_at_k([got], [want], 10) for got, want in zip(found, truth)]
        points.append(
            SweepPoint(
                budget=format_budget(budget),
                recall_at_10=round(float(np.mean(per_query)), 4),
                ms_per_query=round(_median_ms(view, queries[:timed_queries], budget), 4),
                bytes_read_per_vector=round(hits.explain.bytes_scanned / version.size, 2),
                recall_lower=round(recall_lower_bound(per_query), 4),
                queries=len(per_query),
            )
        )
    return mark_pareto(points)


def _median_ms(view: View, queries: np.ndarray, budget) -> float:
    """Median latency of one query at a time: robust to a busy neighbour on the machine."""
    times = []
    for q in queries:
        started = time.perf_counter()
        search(view, q, 10, budget)
        times.append(time.perf_counter() - started)
    return float(np.median(times)) * 1000


def _drop(ids: list[list], exclude: np.ndarray | None) -> list[list]:
    """Remove each query's excluded id (its own document) and keep the first 10 of the rest."""
    if exclude is None:
        return [found[:10] for found in ids]
    return [[x for x in found if x != own][:10] for found, own in zip(ids, exclude.tolist())]
