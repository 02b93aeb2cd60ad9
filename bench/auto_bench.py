"""Does `auto:target_recall=T` keep its promise with only the default calibration?

For each bundled set whose vectors are at hand (the demo; the demo grown to 100k rows with
synthetic children of its documents, which have no texts; WordNet once its cache is built:
`python -m bench.datasets.wordnet`), build a collection with its texts, sweep it with
one calibration (`default`: pseudo-queries cut from the stored texts; `documents`: stored
vectors as queries), then search the set's real judged queries, which the calibration never
saw, with `auto:target_recall=T` and measure the recall@10 they get against exact search.

Second table: the query gap behind plan/calibration.py's miss factors. For every swept
budget with real recall@10 in 0.80..0.999, the real queries' misses divided by the
calibration queries' lower-bound misses; a miss factor at least the largest keeps `auto`'s
bound a bound on real queries.

Third table (`--per-query`): auto chosen per query (plan/per_query.py) against the best fixed
budget at the same delivered recall: for each target, the real queries searched one at a time
with `auto` and with every swept budget whose delivered recall is at least auto's (the three
cheapest by the sweep's latency), interleaved query by query so a busy neighbour slows both
alike; mean and p99 latency of the executor, as the sweep times it.

    python -m bench.auto_bench                      # demo (and WordNet when cached)
    python -m bench.auto_bench --sets demo --calibrations default
    python -m bench.auto_bench --sets wordnet --calibrations default --per-query
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, replace

import numpy as np

import vecdial
from vecdial import BudgetError
from vecdial._internal import MODEL_NAME, live_of, recall_at_k, search_view

TARGETS = (0.90, 0.95, 0.99)
CALIBRATIONS = ("default", "documents")


@dataclass(frozen=True)
class BenchSet:
    """ids (n,), texts, docs (n, 384) and the real queries (nq, 384) of one set."""

    name: str
    ids: list[str]
    texts: list[str | None]
    docs: np.ndarray
    queries: np.ndarray


def load_set(name: str) -> BenchSet | None:
    """The set, or None when its vectors are not cached (never encodes WordNet here)."""
    if name == "demo":
        from vecdial._internal import demo_embeddings, load_demo_corpus

        corpus = load_demo_corpus()
        docs, queries = demo_embeddings(show_progress=False)
        return BenchSet(name, list(corpus.doc_ids), list(corpus.doc_texts), np.asarray(docs), np.asarray(queries))
    if name == "demo-100k":  # the demo grown past its texts, as bench/datasets/wordnet_1m.py grows WordNet
        from bench.datasets.wordnet_1m import generate

        demo = load_set("demo")
        vectors, _ = generate(demo.docs, size=100_000)
        texts = demo.texts + [None] * (len(vectors) - len(demo.texts))
        return BenchSet(name, demo.ids + [f"grown-{i}" for i in range(len(demo.ids), len(vectors))], texts, vectors, demo.queries)
    if name == "wordnet":
        from bench.datasets.wordnet import _is_complete, load_wordnet_set, set_dir

        if not _is_complete(set_dir(), None):
            return None
        data = load_wordnet_set(show_progress=False)
        return BenchSet(name, data.doc_ids, data.doc_texts, np.asarray(data.doc_vectors), np.asarray(data.query_vectors))
    raise ValueError(f"unknown set {name!r}: use demo, demo-100k or wordnet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=["demo", "demo-100k", "wordnet"])
    parser.add_argument("--calibrations", nargs="+", default=list(CALIBRATIONS), choices=CALIBRATIONS)
    parser.add_argument("-n", type=int, default=300, help="calibration queries per sweep")
    parser.add_argument(
        "--per-query", action="store_true", help="also time per-query auto against the best fixed budget (default calibration)"
    )
    args = parser.parse_args()
    print("delivered mean recall@10 on real held-out queries, asked with auto:target_recall=T (only the named calibration)")
    print(f"{'set':9} {'calibration':11} {'T':>5} {'delivered':>9} {'met':>4}  {'sweep s':>7}  chosen budget  [calibrated on]", flush=True)
    gaps: list = []
    latencies: list[str] = []
    with tempfile.TemporaryDirectory(prefix="auto-bench-") as root:
        db = vecdial.connect(root)
        for name in args.sets:
            data = load_set(name)
            if data is None:
                print(f"{name}: vectors not cached, skipped (python -m bench.datasets.wordnet builds them)")
                continue
            col = db.create(name, vectors=data.docs, ids=data.ids, texts=data.texts, source_model=MODEL_NAME, show_progress=False)
            truth = col.search(data.queries, 10, "exact").id_lists()
            for calibration in args.calibrations:
                started = time.perf_counter()
                points = col.sweep(calibration, n=args.n, show_progress=False)
                seconds = time.perf_counter() - started
                source = col.sweep_points()[0].split(", 20")[0]
                for target in TARGETS:
                    try:
                        hits = col.search(data.queries, 10, f"auto:target_recall={target:g}")
                        chosen, got = hits.explain.budget.split(" -> ")[1], recall_at_k(hits.id_lists(), truth, 10)
                    except BudgetError:
                        chosen, got = "(none calibrated)", float("nan")
                    met = "yes" if got >= target else "NO"
                    print(f"{name:9} {calibration:11} {target:5.2f} {got:9.3f} {met:>4}  {seconds:7.0f}  {chosen}  [{source}]", flush=True)
                gaps.append((name, calibration, *_gap(col, data.queries, truth, points)))
                if args.per_query and calibration == "default":
                    latencies.extend(_per_query_rows(col, name, data.queries, truth))
    print("\nquery gap: real misses / calibration lower-bound misses, budgets with real recall 0.80..0.999")
    print(f"{'set':9} {'calibration':11} {'largest':>7} {'median':>7}  budget of the largest")
    for name, calibration, largest, median, budget in gaps:
        print(f"{name:9} {calibration:11} {largest:7.2f} {median:7.2f}  {budget}")
    if latencies:
        print("\nper-query auto vs the best fixed budget at the same delivered recall, real queries one at a time, ms")
        print("(gain: fixed mean / auto mean, target >= 1.3; p99 ratio: auto p99 / fixed p99, target <= 2)")
        print(
            f"{'set':9} {'T':>5} {'auto':>6} {'mean':>6} {'p99':>6}  {'fixed':>6} {'mean':>6} {'p99':>6}  {'gain':>6} {'p99 r':>6}  fixed budget  [auto's budgets]"
        )
        for row in latencies:
            print(row)


def _per_query_rows(col, name: str, queries: np.ndarray, truth: list[list], fixed_tried: int = 3) -> list[str]:
    """One printed row per target: per-query auto's delivered recall, mean and p99 ms one query at
    a time, against the fastest of the `fixed_tried` swept budgets (cheapest by the sweep's
    latency) that deliver at least as much on the same real queries, timed interleaved with it."""
    view = live_of(col).snapshot().view
    delivered = {p.budget: recall_at_k(search_view(view, queries, 10, p.budget, threads=2).id_lists(), truth, 10) for p in view.sweep}
    by_ms = sorted(view.sweep, key=lambda p: p.ms_per_query)
    rows = []
    for target in TARGETS:
        auto = f"auto:target_recall={target:g},per_query=1"
        batch = search_view(view, queries, 10, auto)
        got = recall_at_k(batch.id_lists(), truth, 10)
        spent = sorted({q["budget"] for q in batch.explain.per_query or []}) or [batch.explain.budget.split(" -> ")[1]]
        rivals = [p.budget for p in by_ms if delivered[p.budget] >= got][:fixed_tried]
        times = _interleaved(view, queries, [auto, *rivals])
        fixed = min(rivals, key=lambda b: times[b].mean())
        mean, p99 = times[auto].mean(), np.percentile(times[auto], 99)
        fixed_mean, fixed_p99 = times[fixed].mean(), np.percentile(times[fixed], 99)
        rows.append(
            f"{name:9} {target:5.2f} {got:6.3f} {mean:6.3f} {p99:6.3f}  {delivered[fixed]:6.3f} {fixed_mean:6.3f} {fixed_p99:6.3f}  "
            f"{fixed_mean / mean:6.2f} {p99 / fixed_p99:6.2f}  {fixed}  [{', '.join(spent)}]"
        )
    return rows


def _interleaved(view, queries: np.ndarray, budgets: list[str]) -> dict[str, np.ndarray]:
    """budget -> (nq,) ms of each query searched alone, the budgets taken in turn per query."""
    for budget in budgets:  # warm: plans compiled, per-query choices made, stores loaded
        search_view(view, queries[0], 10, budget)
    times = {budget: np.empty(len(queries)) for budget in budgets}
    for i, q in enumerate(queries):
        for budget in budgets:
            started = time.perf_counter()
            search_view(view, q, 10, budget)
            times[budget][i] = (time.perf_counter() - started) * 1000
    return times


def _gap(col, queries: np.ndarray, truth: list[list], points) -> tuple[float, float, str]:
    """(largest, median ratio of real misses to calibration lower-bound misses, its budget)."""
    ratios = []
    for point in points:
        real = recall_at_k(col.search(queries, 10, point.budget).id_lists(), truth, 10)
        raw = replace(point, miss_factor=1.0).trusted_recall
        if 0.80 <= real <= 0.999:
            ratios.append(((1 - real) / max(1 - raw, 1e-4), point.budget))
    if not ratios:
        return float("nan"), float("nan"), "-"
    largest = max(ratios)
    return largest[0], float(np.median([r for r, _ in ratios])), largest[1]


if __name__ == "__main__":
    main()
