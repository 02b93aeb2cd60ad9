"""Search: a budget compiled into a plan of stages, each one reported in `explain`.

A plan is one candidate stage (a dense scan, a Hamming scan or an inverted-index
scan) followed by zero or more rescoring stages over the survivors. Every budget
is such a plan, so every search explains itself the same way.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np

from vecdial.indexer.plan.budget import (
    BinaryBudget,
    Budget,
    DenseBudget,
    ExactBudget,
    FunnelBudget,
    FunnelStage,
    SparseBudget,
    format_budget,
    parse_budget,
)
from vecdial.indexer.errors import BudgetError, InvalidInput
from vecdial.indexer.eval.sweep import resolve_budget
from vecdial.indexer.vectors import as_query_matrix, normalize_rows
from vecdial.indexer.disk.version import Version

MAX_K = 10_000


@dataclass(frozen=True)
class Stage:
    """kind: dense | binary | sparse; size: dims or active units; keep: candidates out per query."""

    kind: str
    size: int
    keep: int
    rescore: bool

    @property
    def label(self) -> str:
        knob = {"dense": "dim", "sparse": "active", "binary": "bits"}[self.kind]
        return f"{'rescore' if self.rescore else self.kind}:{knob}={self.size}"


@dataclass
class StageReport:
    stage: str
    candidates: int
    bytes_read: int
    ms: float


@dataclass
class Explain:
    budget: str
    stages: list[StageReport] = field(default_factory=list)
    total_ms: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchResult:
    """rows/scores: (nq, k') with k' <= k; ids: the user ids of rows, per query."""

    rows: np.ndarray
    scores: np.ndarray
    ids: list[list]
    explain: Explain


def compile_plan(budget: Budget, version: Version, k: int, limit: int | None = None) -> list[Stage]:
    """Turn a budget into stages valid for this version, or raise BudgetError.

    Each stage keeps at most `limit` candidates per query (default: the version's
    size); a store of another size, such as the write segment, passes its own.
    """
    n, dim = version.size if limit is None else limit, version.dim
    if isinstance(budget, ExactBudget):
        return [Stage("dense", dim, min(k, n), rescore=False)]
    if isinstance(budget, DenseBudget):
        return [Stage("dense", _check_dim(budget.dim, dim), min(k, n), rescore=False)]
    if isinstance(budget, BinaryBudget):
        stages = [FunnelStage(kind="binary", keep=budget.rescore or None)]
    elif isinstance(budget, SparseBudget):
        stages = [FunnelStage(kind="sparse", active=budget.active, keep=budget.rescore or None)]
    else:
        assert isinstance(budget, FunnelBudget)
        stages = list(budget.stages)
    if stages[-1].keep is not None:
        stages.append(FunnelStage(kind="dense"))
    return _funnel(stages, version, k, n)


def _funnel(stages: list[FunnelStage], version: Version, k: int, limit: int) -> list[Stage]:
    plan = []
    for i, stage in enumerate(stages):
        last = i == len(stages) - 1
        keep = min(k if last else k * (stage.keep or 1), limit)
        if i > 0 and stage.kind != "dense":
            raise BudgetError(f"funnel stage {i + 1} is {stage.kind}: only the first stage may be binary or sparse")
        if stage.kind == "dense":
            size = _check_dim(stage.dim or version.dim, version.dim)
        elif stage.kind == "binary":
            size = version.dim
        else:
            size = _check_active(stage.active, version)
        plan.append(Stage(stage.kind, size, keep, rescore=i > 0))
    return plan


def _check_dim(dim: int, max_dim: int) -> int:
    if not 0 < dim <= max_dim:
        raise BudgetError(f"dim={dim} is out of range: this collection has dims 1..{max_dim}")
    return dim


def _check_active(active: int | None, version: Version) -> int:
    if version.sparse is None:
        raise BudgetError("this collection has no sparse codes: rebuild it with sparse codes enabled to use sparse budgets")
    limit = version.sparse.max_active
    if active is None or not 0 < active <= limit:
        raise BudgetError(f"active={active} is out of range: this collection's sparse codes have 1..{limit} active units")
    return active


class Searcher:
    """Runs budgets against one version. Stateless apart from the version it holds."""

    def __init__(self, version: Version):
        self.version = version

    def search(self, queries: np.ndarray, k: int = 10, budget: Budget | str | dict = "exact") -> SearchResult:
        """queries: (dim,) or (nq, dim) float; returns the best k per query under the budget."""
        if not 0 < k <= MAX_K:
            raise InvalidInput(f"k={k} is out of range: use 1..{MAX_K}")
        version = self.version
        requested = parse_budget(budget)
        budget = resolve_budget(requested, version)
        plan = compile_plan(budget, version, k)
        started = time.perf_counter()
        query = _Queries(normalize_rows(as_query_matrix(queries, version.dim), "query"), version)
        explain = Explain(budget=_describe(requested, budget))
        rows = scores = None
        for stage in plan:
            t0 = time.perf_counter()
            rows, scores, read = self._run_stage(stage, query, rows)
            explain.stages.append(
                StageReport(
                    stage=stage.label,
                    candidates=int(rows.shape[1]),
                    bytes_read=read,
                    ms=round((time.perf_counter() - t0) * 1000, 3),
                )
            )
        explain.total_ms = round((time.perf_counter() - started) * 1000, 3)
        ids = [version.id_list(r[r >= 0]) for r in rows]
        return SearchResult(rows=rows, scores=scores.astype(np.float32), ids=ids, explain=explain)

    def _run_stage(self, stage: Stage, query: "_Queries", rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
        """One stage -> (rows, scores, bytes of index data read per query)."""
        version = self.version
        nq = len(query.unit)
        if stage.kind == "binary":
            found, distances = version.binary.search(version.binary_codec.encode(query.unit), stage.keep)
            return found, 1.0 - 2.0 * distances.astype(np.float32) / stage.size, version.size * version.binary.code_bytes
        if stage.kind == "sparse":
            found, scores, total = version.sparse.search(query.unit, stage.size, stage.keep)
            return found, scores, total // nq
        if not stage.rescore:
            found, scores = version.dense.scan(query.rotated, stage.size, stage.keep)
            return found, scores, version.size * version.dense.bytes_per_vector(stage.size)
        candidates = int((rows >= 0).sum()) // nq
        found, scores = keep_best(rows, version.dense.score_rows(query.rotated, rows, stage.size), stage.keep)
        return found, scores, candidates * version.dense.bytes_per_vector(stage.size)


class _Queries:
    """Unit query vectors, and their rotation computed once when a dense stage needs it."""

    def __init__(self, unit: np.ndarray, version: Version):
        self.unit = unit
        self._version = version

    @cached_property
    def rotated(self) -> np.ndarray:
        return self._version.rotation.apply(self.unit)


def _describe(requested: Budget, used: Budget) -> str:
    """The budget as run; an auto budget shows what it resolved to."""
    if requested == used:
        return format_budget(used)
    return f"{format_budget(requested)} -> {format_budget(used)}"


def keep_best(rows: np.ndarray, scores: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Reorder candidates by their new scores and keep the best `keep` per query."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :keep]
    return np.take_along_axis(rows, order, axis=1), np.take_along_axis(scores, order, axis=1)
