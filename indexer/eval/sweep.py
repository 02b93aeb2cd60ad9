"""Sweep: measure recall and latency of many budgets on one version, keep the Pareto front,
and let `auto:target_recall=R` pick the cheapest budget that met R.

Without user queries, documents sampled from the collection stand in for queries;
each one's own row is left out of both the exact and the approximate results, so
finding itself does not inflate recall.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vecdial.indexer.disk.atomic import write_text_atomic
from vecdial.indexer.plan.budget import AutoBudget, Budget, format_budget, parse_budget
from vecdial.indexer.errors import BudgetError
from vecdial.indexer.eval.metrics import recall_at_k
from vecdial.indexer.disk.version import Version

if TYPE_CHECKING:  # pragma: no cover
    from vecdial.indexer.plan.execute import Searcher

SWEEP_FILE = "sweep.json"
DENSE_DIMS = (32, 64, 128, 256)
BINARY_RESCORES = (0, 2, 5, 10, 20)


@dataclass(frozen=True)
class SweepPoint:
    budget: str
    recall_at_10: float
    ms_per_query: float
    bytes_read_per_vector: float
    pareto: bool = False


def candidate_budgets(version: Version) -> list[str]:
    """The budgets worth measuring for this version, cheapest kinds first."""
    budgets = [f"dense:dim={d}" for d in DENSE_DIMS if d < version.dim]
    budgets += [f"binary:rescore={m}" for m in BINARY_RESCORES]
    budgets.append("funnel:binary*20>128*4>full" if version.dim > 128 else "funnel:binary*20>full")
    if version.sparse is not None:
        actives = [a for a in (8, 16, 32, 64) if a <= version.sparse.max_active]
        budgets += [f"sparse:active={a}" for a in actives] + [f"sparse:active={a},rescore=10" for a in actives]
    return budgets + ["exact"]


def sample_documents(version: Version, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rows (n,), vectors (n, dim)): stored documents in the original basis, to use as queries."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(version.size, size=min(n, version.size), replace=False))
    used = version.dense.blocks.shape[0]
    rotated = version.dense.blocks[:, rows, :].transpose(1, 0, 2).reshape(len(rows), used * version.dense.block)[:, : version.dim]
    return rows, np.asarray(rotated, dtype=np.float32) @ version.rotation.matrix.T


def run_sweep(
    searcher: "Searcher",
    queries: np.ndarray,
    budgets: list[str] | None = None,
    exclude_rows: np.ndarray | None = None,
    timed_queries: int = 50,
) -> list[SweepPoint]:
    """Recall@10 against exact and one-query-at-a-time latency for each budget; Pareto front marked.

    queries: (nq, dim); exclude_rows: (nq,) a row to drop from query i's results (its own document).
    """
    budgets = budgets or candidate_budgets(searcher.version)
    extra = 0 if exclude_rows is None else 1
    truth = _drop_rows(searcher.search(queries, 10 + extra, "exact").rows, exclude_rows)
    points = []
    for spec in budgets:
        budget = parse_budget(spec)
        result = searcher.search(queries, 10 + extra, budget)
        points.append(
            SweepPoint(
                budget=format_budget(budget),
                recall_at_10=round(recall_at_k(_drop_rows(result.rows, exclude_rows), truth, 10), 4),
                ms_per_query=round(_median_ms(searcher, queries[:timed_queries], budget), 4),
                bytes_read_per_vector=round(sum(s.bytes_read for s in result.explain.stages) / searcher.version.size, 2),
            )
        )
    return mark_pareto(points)


def _median_ms(searcher: "Searcher", queries: np.ndarray, budget: Budget) -> float:
    """Median latency of one query at a time: robust to a busy neighbour on the machine."""
    times = []
    for q in queries:
        started = time.perf_counter()
        searcher.search(q, 10, budget)
        times.append(time.perf_counter() - started)
    return float(np.median(times)) * 1000


def mark_pareto(points: list[SweepPoint]) -> list[SweepPoint]:
    """Flag the points no other point beats on both latency and recall."""
    best = -1.0
    front = set()
    for point in sorted(points, key=lambda p: (p.ms_per_query, -p.recall_at_10)):
        if point.recall_at_10 > best:
            front.add(point.budget)
            best = point.recall_at_10
    return [SweepPoint(**{**asdict(p), "pareto": p.budget in front}) for p in points]


def choose(points: list[SweepPoint], target_recall: float) -> SweepPoint:
    """The fastest point that met the target; if none did, the most accurate one."""
    meeting = [p for p in points if p.recall_at_10 >= target_recall]
    if meeting:
        return min(meeting, key=lambda p: p.ms_per_query)
    return max(points, key=lambda p: (p.recall_at_10, -p.ms_per_query))


def save_sweep(version: Version, points: list[SweepPoint], queries: str) -> Path:
    """Store the sweep beside the version (derived data: not part of its checksummed files)."""
    path = version.path / SWEEP_FILE
    write_text_atomic(path, json.dumps({"queries": queries, "points": [asdict(p) for p in points]}, indent=2))
    return path


def load_sweep(version: Version) -> list[SweepPoint] | None:
    """The version's sweep, parsed once per file change: `auto` searches only stat it."""
    path = version.path / SWEEP_FILE
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    cached = _SWEEP_CACHE.get(path)
    if cached is None or cached[0] != stamp:
        points = [SweepPoint(**p) for p in json.loads(path.read_text(encoding="utf-8"))["points"]]
        cached = _SWEEP_CACHE[path] = (stamp, points)
    return cached[1]


# path -> (mtime_ns, points); sweeps are small and versions few.
_SWEEP_CACHE: dict[Path, tuple[int, list[SweepPoint]]] = {}


def resolve_budget(budget: Budget, version: Version) -> Budget:
    """Replace `auto` by the budget the version's sweep chose; other budgets pass through."""
    if not isinstance(budget, AutoBudget):
        return budget
    points = load_sweep(version)
    if not points:
        raise BudgetError("auto budgets need a sweep of this collection: run `vecdial sweep -c <name>` first")
    return parse_budget(choose(points, budget.target_recall).budget)


def _drop_rows(rows: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    """Remove each query's excluded row and keep the first 10 of the rest."""
    if exclude is None:
        return rows[:, :10]
    kept = np.full((len(rows), 10), -1, dtype=np.int64)
    for i, (found, own) in enumerate(zip(rows, exclude)):
        rest = found[found != own][:10]
        kept[i, : len(rest)] = rest
    return kept
