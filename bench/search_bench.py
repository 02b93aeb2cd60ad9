"""Accuracy, speed and memory of every budget against faiss.IndexFlatIP, in one run.

    python -m bench.search_bench --dataset demo
    python -m bench.search_bench --dataset wordnet       # >= 100k real MiniLM vectors

Single thread throughout (FAISS, BLAS). For each budget it prints: bytes per
vector held in RAM and read per query, recall@10 against exact search, nDCG@10
against relevance judgments, QPS for one batch of queries and for one query at a
time, and both QPS as ratios over IndexFlatIP on full float32 measured here.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

import vecdial
from vecdial import BuildSettings, SparseSettings, parse_budget
from vecdial._internal import CollectionDir as Collection
from vecdial._internal import Dataset, build_collection, compile_plan, live_of, ndcg_at_k, recall_at_k

BUDGETS = {
    "pca": [
        "exact",
        "dense:dim=256",
        "dense:dim=128",
        "dense:dim=64",
        "dense:dim=32",
        "binary:rescore=0",
        "binary:rescore=5",
        "binary:rescore=10",
        "binary:rescore=20",
        "funnel:binary*20>128*4>full",
    ],
    "plain": ["dense:dim=128", "dense:dim=64", "dense:dim=32"],
}
# Sparse codes against truncation to as many dims as active units (--sparse).
SPARSE_BUDGETS = {
    "pca": ["dense:dim=16", "dense:dim=8"],
    "sparse": [
        "sparse:active=64",
        "sparse:active=32",
        "sparse:active=16",
        "sparse:active=8",
        "sparse:active=32,rescore=10",
        "sparse:active=16,rescore=10",
    ],
}


@dataclass
class BenchSet:
    name: str
    doc_ids: np.ndarray
    docs: np.ndarray
    queries: np.ndarray
    qrels: list[dict]


def load_set(name: str, limit: int | None) -> BenchSet:
    if name == "demo":
        from vecdial._internal import demo_embeddings, load_demo_corpus

        corpus = load_demo_corpus()
        docs, queries = demo_embeddings()
        qrels = [corpus.qrels.get(q, {}) for q in corpus.query_ids]
        return BenchSet(name, np.asarray(corpus.doc_ids), docs, queries, qrels)
    from bench.datasets.wordnet import load_wordnet_set

    ws = load_wordnet_set(limit=limit)
    return BenchSet(name, np.asarray(ws.doc_ids), ws.doc_vectors, ws.query_vectors, [ws.qrels[q] for q in ws.query_ids])


def timed_qps(run, queries: np.ndarray, single: int) -> tuple[float, float]:
    """(batch QPS over all queries, QPS one query at a time over the first `single`)."""
    run(queries[:8])  # warm caches and lazy imports
    started = time.perf_counter()
    run(queries)
    batch = len(queries) / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(single):
        run(queries[i : i + 1])
    return batch, single / (time.perf_counter() - started)


def resident_bytes(searcher: vecdial.Collection, budget: str) -> float:
    """Measured bytes per vector a budget keeps hot in RAM: what its first stage scans, plus ids.

    Rescoring reads a few full rows per query from the memory map; those count
    in 'read B/query/vec', not here.
    """
    version = live_of(searcher).snapshot().version
    first = compile_plan(parse_budget(budget), version, 10)[0]
    if first.mode == "binary":
        scanned = faiss.serialize_index_binary(version.store("binary").store.index).nbytes
    elif first.mode == "sparse":
        scanned = version.store("sparse").resident_bytes
    else:
        blocks = -(-first.size // version.dense.block)
        scanned = version.dense.blocks[:blocks].nbytes + version.dense.prefix_sq[0].nbytes
    return (scanned + version.ids.nbytes) / version.size


def build(cache: Path, data: BenchSet, kind: str) -> vecdial.Collection:
    """The collection for one row group, built once and cached; a sparse build's time is printed."""
    collection = Collection(cache, f"{data.name}-{kind}-{len(data.docs)}")
    if not collection.exists():
        settings = BuildSettings(
            rotation="identity" if kind == "plain" else "pca",
            sparse=SparseSettings(max_active=64) if kind == "sparse" else None,
        )
        build_collection(collection, Dataset(data.doc_ids, data.docs), settings)
    searcher = vecdial.connect(cache).open(collection.name)
    if kind == "sparse":
        train = live_of(searcher).snapshot().version.manifest.codecs["sparse"]["train"]
        print(
            f"sparse codes: trained in {train['seconds']} s, {train['epochs']} epochs, val nMSE {train['val_nmse']}, dead latents {train['dead_fraction']:.1%}"
        )
    return searcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["demo", "wordnet"], default="demo")
    parser.add_argument("--limit", type=int, help="use only the first N documents")
    parser.add_argument("--single", type=int, default=200, help="queries timed one at a time")
    parser.add_argument(
        "--cache", type=Path, default=Path(os.environ.get("VECDIAL_CACHE_DIR", Path.home() / ".cache/vecdial")) / "bench-collections"
    )
    parser.add_argument("--budgets", nargs="*", help="extra budgets on the PCA collection")
    parser.add_argument("--sparse", action="store_true", help="add learned sparse codes (k=64) and compare them with truncation")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    with threadpool_limits(1):
        run(args)


def run(args: argparse.Namespace) -> None:
    data = load_set(args.dataset, args.limit)
    docs = np.ascontiguousarray(data.docs, dtype=np.float32)
    queries = np.ascontiguousarray(data.queries, dtype=np.float32)
    single = min(args.single, len(queries))

    flat = faiss.IndexFlatIP(docs.shape[1])
    flat.add(docs)
    truth = flat.search(queries, 100)[1]
    flat_batch, flat_single = timed_qps(lambda q: flat.search(q, 10), queries, single)
    flat_bytes = faiss.serialize_index(flat).nbytes / len(docs)

    table = Table(
        title=f"{data.name}: {len(docs)} vectors x {docs.shape[1]} dims, {len(queries)} queries ({single} one at a time), 1 thread"
    )
    for column in (
        "collection",
        "budget",
        "RAM B/vec",
        "read B/query/vec",
        "recall@10",
        "nDCG@10",
        "batch QPS",
        "x flat",
        "1-query QPS",
        "x flat",
    ):
        table.add_column(column, justify="left" if column in ("collection", "budget") else "right")
    flat_ndcg = ndcg_at_k([data.doc_ids[r[:10]] for r in truth], data.qrels) if data.qrels else None
    table.add_row(
        "faiss",
        "IndexFlatIP (baseline)",
        f"{flat_bytes:.0f}",
        f"{flat_bytes:.0f}",
        "1.000",
        _f(flat_ndcg),
        f"{flat_batch:.0f}",
        "1.00",
        f"{flat_single:.0f}",
        "1.00",
    )

    groups = {kind: list(budgets) for kind, budgets in BUDGETS.items()}
    groups["pca"] += args.budgets or []
    if args.sparse:
        for kind, budgets in SPARSE_BUDGETS.items():
            groups[kind] = groups.get(kind, []) + budgets
    for kind, budgets in groups.items():
        searcher = build(args.cache, data, kind)
        for budget in budgets:
            result = searcher.search(queries, k=10, budget=budget)
            read = sum(s.bytes_read for s in result.explain.stages) / len(docs)
            batch, one = timed_qps(lambda q, searcher=searcher, budget=budget: searcher.search(q, k=10, budget=budget), queries, single)
            ndcg = ndcg_at_k(result.id_lists(), data.qrels) if data.qrels else None
            table.add_row(
                kind,
                budget,
                f"{resident_bytes(searcher, budget):.0f}",
                f"{read:.1f}",
                f"{recall_at_k(result.id_lists(), [data.doc_ids[r] for r in truth], 10):.3f}",
                _f(ndcg),
                f"{batch:.0f}",
                f"{batch / flat_batch:.2f}",
                f"{one:.0f}",
                f"{one / flat_single:.2f}",
            )
    Console(width=200).print(table)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
