"""Evaluate budgets on one view: quality against exact search and relevance, and cost."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from vecdial.indexer.eval.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from vecdial.indexer.plan.budget import format_budget, parse_budget
from vecdial.indexer.plan.execute import View, search


@dataclass
class EvalRow:
    budget: str
    recall_at_10: float
    recall_at_100: float
    ndcg_at_10: float | None
    mrr_at_10: float | None
    bytes_read_per_vector: float
    batch_qps: float


def evaluate(view: View, queries: np.ndarray, budgets: list, qrels: list[dict] | None = None) -> list[EvalRow]:
    """One row per budget. queries: (nq, dim); qrels[i]: {doc_id: relevance} for query i.

    @10 metrics come from a k=10 search and recall@100 from a k=100 one: budgets
    scale their shortlists with k, so a k=100 search would flatter recall@10.
    """
    exact = search(view, queries, k=100, budget="exact").id_lists()
    rows = []
    for spec in budgets:
        budget = parse_budget(spec)
        started = time.perf_counter()
        hits = search(view, queries, k=10, budget=budget)
        seconds = time.perf_counter() - started
        found = hits.id_lists()
        wide = search(view, queries, k=100, budget=budget).id_lists()
        rows.append(
            EvalRow(
                budget=format_budget(budget),
                recall_at_10=recall_at_k(found, exact, 10),
                recall_at_100=recall_at_k(wide, exact, 100),
                ndcg_at_10=ndcg_at_k(found, qrels, 10) if qrels else None,
                mrr_at_10=mrr_at_k(found, qrels, 10) if qrels else None,
                bytes_read_per_vector=hits.explain.bytes_scanned / view.version.size,
                batch_qps=len(queries) / seconds,
            )
        )
    return rows
