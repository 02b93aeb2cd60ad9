"""Sparse codes against dense prefixes and exact search: speed and recall, one thread.

    python -m bench.sparse_bench                      # WordNet, 117k x 384 (cached)
    python -m bench.sparse_bench --dataset demo       # 2k docstrings, quick
    python -m bench.sparse_bench --rebuild            # retrain the codes first

Builds (once, cached) a collection with sparse codes at max_active=64 through
the front door, and prints its training time from the manifest. Then, for
sparse:active=8/16/32/64 (alone and with rescore=10), dense:dim=16/32/64 and
exact: recall@10 against exact search, batch QPS (all queries in one call, best
of --rounds), one-query QPS (1 / median latency, budgets interleaved query by
query so machine noise hits all alike), each as a ratio to exact, and whether
the budget is on the one-query speed/recall Pareto front. FAISS, BLAS and torch
run on one thread.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import time
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

import vecdial
from vecdial._internal import live_of, recall_at_k

SPARSE = [f"sparse:active={a}" for a in (8, 16, 32, 64)]
BUDGETS = ["exact", "dense:dim=16", "dense:dim=32", "dense:dim=64", *SPARSE, *(f"{b},rescore=10" for b in SPARSE)]


def open_collection(cache: Path, dataset: str, docs: np.ndarray, rebuild: bool, name: str | None = None) -> vecdial.Collection:
    db = vecdial.connect(cache)
    name = name or f"{dataset}-sparse64-{len(docs)}"
    if rebuild and name in db.list():
        db.drop(name)
    if name not in db.list():
        settings = vecdial.BuildSettings(sparse=vecdial.SparseSettings(max_active=64))
        started = time.perf_counter()
        db.create(name, vectors=docs, settings=settings, show_progress=False)
        print(f"built {name} in {time.perf_counter() - started:.0f} s")
    return db.open(name)


def one_query_latencies(collection: vecdial.Collection, queries: np.ndarray, budgets: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    """Seconds per single-query search, budgets shuffled afresh for every query."""
    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {b: [] for b in budgets}
    for q in queries:
        for i in rng.permutation(len(budgets)):
            started = time.perf_counter()
            collection.search(q, k=10, budget=budgets[i])
            times[budgets[i]].append(time.perf_counter() - started)
    return {b: np.asarray(t) for b, t in times.items()}


def batch_qps(collection: vecdial.Collection, queries: np.ndarray, budget: str, rounds: int) -> float:
    best = np.inf
    for _ in range(rounds):
        started = time.perf_counter()
        collection.search(queries, k=10, budget=budget)
        best = min(best, time.perf_counter() - started)
    return len(queries) / best


def pareto(points: dict[str, tuple[float, float]]) -> set[str]:
    """Budgets no other beats on both (recall, QPS) while strictly better on one."""
    front = set()
    for b, (r, q) in points.items():
        if not any((r2 >= r and q2 >= q) and (r2 > r or q2 > q) for o, (r2, q2) in points.items() if o != b):
            front.add(b)
    return front


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["demo", "wordnet"], default="wordnet")
    parser.add_argument("--single", type=int, default=300, help="queries timed one at a time (each on every budget)")
    parser.add_argument("--rounds", type=int, default=3, help="batch runs per budget (best kept)")
    parser.add_argument(
        "--cache", type=Path, default=Path(os.environ.get("VECDIAL_CACHE_DIR", Path.home() / ".cache/vecdial")) / "bench-collections"
    )
    parser.add_argument("--name", help="collection name in --cache (default: <dataset>-sparse64-<n>)")
    parser.add_argument("--rebuild", action="store_true", help="drop and rebuild the collection (retrain the codes)")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    with threadpool_limits(1):
        import torch

        torch.set_num_threads(1)
        run(args)


def run(args: argparse.Namespace) -> None:
    from bench.datasets.sets import load_vectors

    docs, queries = load_vectors(args.dataset)
    collection = open_collection(args.cache, args.dataset, docs, args.rebuild, args.name)
    train = live_of(collection).snapshot().version.manifest.codecs["sparse"]["train"]
    print(
        f"sparse codes: trained in {train['seconds']} s, {train['epochs']} epochs ({train['stopped']}), val nMSE {train['val_nmse']}, dead {train['dead_fraction']:.1%}"
    )
    truth = collection.search(queries, k=10, budget="exact").id_lists()
    for budget in BUDGETS:  # warm: compile, map, lazy imports
        collection.search(queries[:2], k=10, budget=budget)
        collection.search(queries[0], k=10, budget=budget)
    recall = {b: recall_at_k(collection.search(queries, k=10, budget=b).id_lists(), truth, 10) for b in BUDGETS}
    batch = {b: batch_qps(collection, queries, b, args.rounds) for b in BUDGETS}
    single = one_query_latencies(collection, queries[: args.single], BUDGETS)
    one = {b: 1.0 / float(np.median(t)) for b, t in single.items()}
    front = pareto({b: (recall[b], one[b]) for b in BUDGETS})
    print(f"\n{args.dataset}: {len(docs)} x {docs.shape[1]}, {len(queries)} queries ({args.single} one at a time), 1 thread")
    header = f"{'budget':<28}{'R@10':>7}{'1-query QPS':>13}{'x exact':>9}{'p90 ms':>8}{'batch QPS':>11}{'x exact':>9}  front"
    print(header)
    print("-" * len(header))
    for b in BUDGETS:
        p90 = float(np.percentile(single[b], 90)) * 1e3
        print(
            f"{b:<28}{recall[b]:>7.3f}{one[b]:>13.0f}{one[b] / one['exact']:>9.2f}{p90:>8.2f}{batch[b]:>11.0f}{batch[b] / batch['exact']:>9.2f}  {'*' if b in front else ''}"
        )


if __name__ == "__main__":
    main()
