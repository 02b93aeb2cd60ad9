"""Retrieval quality metrics: pure functions of ranked results."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def recall_at_k(found: Sequence[Sequence], truth: Sequence[Sequence], k: int) -> float:
    """Mean fraction of the true top-k found in the first k results.

    found[i]: query i's ids (or rows) returned, best first; truth[i]: those of exact search.
    """
    hits = 0.0
    for got, want in zip(found, truth):
        relevant = set(list(want)[:k])
        hits += len(relevant.intersection(list(got)[:k])) / max(len(relevant), 1)
    return hits / len(found)


def ndcg_at_k(ranked_ids: Sequence[Sequence], qrels: Sequence[dict], k: int = 10) -> float:
    """Mean nDCG@k with graded relevance; ranked_ids[i] are query i's results, qrels[i] its judgments."""
    total = 0.0
    for ids, judged in zip(ranked_ids, qrels):
        gains = [judged.get(doc, 0) for doc in list(ids)[:k]]
        dcg = sum((2**g - 1) / np.log2(rank + 2) for rank, g in enumerate(gains))
        ideal = sorted(judged.values(), reverse=True)[:k]
        idcg = sum((2**g - 1) / np.log2(rank + 2) for rank, g in enumerate(ideal))
        total += dcg / idcg if idcg > 0 else 0.0
    return total / len(ranked_ids)


def mrr_at_k(ranked_ids: Sequence[Sequence], qrels: Sequence[dict], k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant result within the top k (0 if none)."""
    total = 0.0
    for ids, judged in zip(ranked_ids, qrels):
        for rank, doc in enumerate(list(ids)[:k], start=1):
            if judged.get(doc, 0) > 0:
                total += 1.0 / rank
                break
    return total / len(ranked_ids)
