"""Hybrid lexical + dense search against each alone, on judged queries: one command, one table.

    HF_HUB_OFFLINE=1 python -m bench.hybrid_bench [--sets demo,wordnet] [--depth 100]

For the shipped demo corpus (stdlib docstrings, 1,000 queries) and the WordNet
set (117,659 glosses, 1,000 lemma queries), it measures nDCG@10 and MRR@10 of
dense-only (exact cosine over the bundled model's cached embeddings), BM25-only
(indexer/lexical) and their fusion (plan/fusion.py): RRF and weighted score
fusion at several lexical weights (dense = 1 - lexical). Each signal gives its
top `--depth` rows; `weighted+` first completes both lists on their union (BM25
`scores_for` the dense candidates, cosine of the lexical ones), as a search
path with both indexes can. It then names the one setting with the best
worst-case margin over the better single signal across the sets (the default
in HybridSpec) and prints BM25's build cost and one-thread query latency.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from vecdial._internal import (
    DEFAULT_WEIGHTS,
    HybridSpec,
    LexicalIndex,
    fuse,
    mrr_at_k,
    ndcg_at_k,
    open_lexical,
    union_rows,
    write_lexical,
)

LEXICAL_WEIGHTS = (0.1, 0.2, 0.3, 0.5, 0.7)


@dataclass
class JudgedSet:
    name: str
    doc_ids: list[str]
    doc_texts: list[str]
    doc_vectors: np.ndarray  # (n, 384) float32, unit rows
    query_texts: list[str]
    query_vectors: np.ndarray  # (nq, 384) float32, unit rows
    qrels: list[dict[str, int]]  # per query, in query order


def demo_set() -> JudgedSet:
    from vecdial._internal import demo_embeddings, load_demo_corpus

    corpus = load_demo_corpus()
    docs, queries = demo_embeddings(show_progress=False)
    qrels = [corpus.qrels.get(qid, {}) for qid in corpus.query_ids]
    return JudgedSet("demo", corpus.doc_ids, corpus.doc_texts, docs, corpus.query_texts, queries, qrels)


def wordnet_set() -> JudgedSet:
    from bench.datasets.wordnet import load_wordnet_set

    data = load_wordnet_set(show_progress=False)
    qrels = [data.qrels[qid] for qid in data.query_ids]
    return JudgedSet("wordnet", data.doc_ids, data.doc_texts, data.doc_vectors, data.query_texts, data.query_vectors, qrels)


def dense_top(docs: np.ndarray, queries: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-`depth`: rows (nq, depth) int64, scores (nq, depth) float32."""
    scores = np.asarray(queries, dtype=np.float32) @ np.asarray(docs, dtype=np.float32).T
    rows = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
    top = np.take_along_axis(scores, rows, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    return np.take_along_axis(rows, order, axis=1).astype(np.int64), np.take_along_axis(top, order, axis=1)


def complete(dense: tuple, lexical: tuple, data: JudgedSet, index: LexicalIndex) -> tuple[tuple, tuple]:
    """Both lists over the union of their rows, each with its own signal's true scores."""
    union = union_rows(dense[0], lexical[0])
    safe = np.where(union >= 0, union, 0)
    cosine = np.einsum("qd,qmd->qm", np.asarray(data.query_vectors), np.asarray(data.doc_vectors)[safe])
    cosine = np.where(union >= 0, cosine, -np.inf).astype(np.float32)
    return (union, cosine), (union, index.scores_for(data.query_texts, union))


def quality(rows: np.ndarray, data: JudgedSet, queries: slice = slice(None)) -> tuple[float, float]:
    """(nDCG@10, MRR@10) of ranked rows (nq, >=10) against the set's qrels, over `queries`."""
    ids = [[data.doc_ids[r] for r in row[:10] if r >= 0] for row in rows[queries]]
    return ndcg_at_k(ids, data.qrels[queries], 10), mrr_at_k(ids, data.qrels[queries], 10)


@dataclass(frozen=True)
class Setting:
    method: str  # rrf | weighted
    normalize: str  # minmax | zscore (weighted only)
    completed: bool  # weighted over the union of both lists, each scored by its own signal
    lexical: float  # dense = 1 - lexical

    @property
    def label(self) -> str:
        name = self.method if self.method == "rrf" else f"weighted{'+' if self.completed else ''} {self.normalize}"
        return f"{name} lexical={self.lexical:g}"

    @property
    def spec(self) -> HybridSpec:
        return HybridSpec(lexical=self.lexical, dense=round(1 - self.lexical, 2), method=self.method, normalize=self.normalize)


SETTINGS = [
    Setting(method, normalize, completed, weight)
    for weight in LEXICAL_WEIGHTS
    for method, normalize, completed in (
        ("rrf", "minmax", False),
        ("weighted", "minmax", False),
        ("weighted", "zscore", False),
        ("weighted", "minmax", True),
        ("weighted", "zscore", True),
    )
]
DEFAULT = Setting(HybridSpec().method, HybridSpec().normalize, True, DEFAULT_WEIGHTS["lexical"])


def run_set(data: JudgedSet, depth: int) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Top-10 rows of every setting on one set, and BM25's costs there."""
    out_dir = Path(tempfile.mkdtemp(prefix=f"hybrid-{data.name}-"))
    start = time.perf_counter()
    record = write_lexical(out_dir, data.doc_texts)
    cost = {"build_s": time.perf_counter() - start, "bytes": record["bytes"], "vocab": record["vocab"], "docs": record["docs"]}
    index = open_lexical(out_dir)
    index.search(data.query_texts[:10], depth)  # page in the memory map before timing
    start = time.perf_counter()
    lexical = index.search(data.query_texts, depth)
    cost["search_ms"] = (time.perf_counter() - start) / len(data.query_texts) * 1e3
    start = time.perf_counter()
    for text in data.query_texts[:200]:
        index.search([text], 10)
    cost["one_query_ms"] = (time.perf_counter() - start) / 200 * 1e3

    dense = dense_top(data.doc_vectors, data.query_vectors, depth)
    lists = {False: {"dense": dense, "lexical": lexical}}
    lists[True] = dict(zip(("dense", "lexical"), complete(dense, lexical, data, index)))
    ranked = {"dense only": dense[0], "BM25 only": lexical[0]}
    for setting in SETTINGS:
        ranked[setting.label] = fuse(lists[setting.completed], setting.spec, 10)[0]
    return ranked, cost


def margins(measured: dict, data: dict, queries: slice) -> dict[str, float]:
    """Per hybrid setting: its worst nDCG@10 margin over the better single signal across the sets."""
    out = {}
    for label in [s.label for s in SETTINGS]:
        gaps = []
        for name, (ranked, _) in measured.items():
            single = max(quality(ranked["dense only"], data[name], queries)[0], quality(ranked["BM25 only"], data[name], queries)[0])
            gaps.append(quality(ranked[label], data[name], queries)[0] - single)
        out[label] = min(gaps)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="demo,wordnet", help="comma-separated: demo, wordnet")
    parser.add_argument("--depth", type=int, default=100, help="candidates each signal gives to the fusion")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # one thread for every timing (BLAS, OpenMP); bm25s's numpy path is one thread
    loaders = {"demo": demo_set, "wordnet": wordnet_set}
    names = [name.strip() for name in args.sets.split(",") if name.strip()]
    data = {name: loaders[name]() for name in names}
    for judged in data.values():
        judged.qrels = np.array(judged.qrels, dtype=object)  # sliceable by query halves
    measured = {name: run_set(data[name], args.depth) for name in names}

    labels = list(next(iter(measured.values()))[0])
    header = f"{'setting':<32}" + "".join(f"{name + ' nDCG@10':>16}{name + ' MRR@10':>15}" for name in names)
    print(header)
    print("-" * len(header))
    for label in labels:
        cells = [quality(measured[n][0][label], data[n]) for n in names]
        print(f"{label:<32}" + "".join(f"{ndcg:>16.4f}{mrr:>15.4f}" for ndcg, mrr in cells))

    every, tune, held_out = (
        margins(measured, data, slice(None)),
        margins(measured, data, slice(0, None, 2)),
        margins(measured, data, slice(1, None, 2)),
    )
    chosen = max(tune, key=tune.__getitem__)
    print()
    print("worst-case nDCG@10 margin over the better single signal, across " + " and ".join(names) + ":")
    print(f"  meets the target (margin >= 0 on all queries): {', '.join(name for name in every if every[name] >= 0) or 'none'}")
    print(
        f"  chosen on even-numbered queries: {chosen} ({tune[chosen]:+.4f}); on the held-out odd ones {held_out[chosen]:+.4f}, on all {every[chosen]:+.4f}"
    )
    print(
        f"  default HybridSpec() ({DEFAULT.label}, over both lists' union): held-out {held_out[DEFAULT.label]:+.4f}, all {every[DEFAULT.label]:+.4f}"
    )
    print()
    for name in names:
        cost = measured[name][1]
        print(
            f"BM25 on {name}: {cost['docs']:,} docs, vocab {cost['vocab']:,}, build {cost['build_s']:.2f} s, "
            f"index {cost['bytes'] / 2**20:.1f} MiB; one thread: {cost['search_ms']:.3f} ms/query "
            f"(batch, k={args.depth}), {cost['one_query_ms']:.3f} ms/query (one at a time, k=10)"
        )


if __name__ == "__main__":
    main()
