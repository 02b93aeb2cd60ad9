"""What vecdial's API costs over the same search written by hand with FAISS, on one thread.

    python -m bench.overhead_bench                      # WordNet, ~118k real MiniLM vectors
    python -m bench.overhead_bench --dataset demo       # quick check on 2k vectors
    python -m bench.overhead_bench --profile            # and where one binary query spends its time
    python -m bench.overhead_bench --dataset demo --grow 117000   # no WordNet cache: the demo set grown

Per budget, one query at a time, the bench also prints where each search's CPU time goes
(`--breakdown`, on by default): inside FAISS calls, inside compiled (numba) kernels, in the
query's rotation (one BLAS gemv), and outside all of them (Python: checks, plan, merge,
building `Hits`). CPU time of the searching thread (time.thread_time_ns) rather than wall
time, so a busy machine's preemption does not land in either column. The kernels are timed
by wrapping them for the breakdown pass only; the ratios are measured without wrappers.

Each budget is set against the recipe it stands for, written in a few lines of
FAISS and numpy, on the same unit vectors (cosine):

- `binary:rescore=10`: sign bits of the unit vectors, packed with np.packbits and
  zero-padded to a width FAISS has a fast kernel for (64 bytes for 384 dims, as
  vecdial's binary codec does); faiss.IndexBinaryFlat finds k*10 candidates by
  Hamming distance; their exact inner products with the float32 unit vectors
  (held in RAM) pick the top k.
- `exact`: faiss.IndexFlatIP.

Both are timed one query at a time (interleaved per query; QPS = 1 / median
latency, robust to a noisy neighbour) and as one batch of every query (best of
--rounds, alternating sides). Targets, one query at a time: vecdial/by-hand QPS
>= 0.8 for binary:rescore=10 and >= 0.9 for exact. Recall@10 is against
IndexFlatIP. RAM per vector is measured in a fresh process per side and budget:
the growth of its resident memory from opening (or building) the index through
one batch search, split into heap (anonymous) and memory-mapped file pages.

Single thread throughout, set here for both sides: faiss.omp_set_num_threads(1)
and threadpoolctl's limit on every BLAS/OpenMP pool.
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import multiprocessing as mp
import pstats
import queue
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import faiss
import numba
import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from bench.datasets.sets import SETS, load_vectors
from bench.front_door import FRONT_DOOR, create_collection, hit_ids, open_collection

K = 10
RESCORE = 10
# Each RAM probe searches a small collection of the first documents before it starts counting;
# 4096 rows run the same BLAS shapes as a full scan (tiles of 2048 rows, FAISS blocks of 1024).
WARM, WARM_SIZE = "warm-up", 4096
# Budget -> (target vecdial/by-hand QPS one query at a time, the by-hand recipe's name).
BUDGETS = {
    "binary:rescore=10": (0.95, "IndexBinaryFlat k*10 + rescore"),
    "exact": (0.9, "IndexFlatIP"),
}
# Budgets whose one-query cost the breakdown splits inside / outside kernels.
BREAKDOWN = (
    "binary:rescore=10",
    "binary:rescore=20,probe=0.1",
    "rabitq:rescore=5",
    "rabitq:rescore=5,ef=64",
    "dense:dim=64",
    "exact",
    "funnel:binary*40>128*5>full",
)
OUTSIDE_TARGET_US = 30
# Code widths with specialised FAISS Hamming kernels, as in vecdial's binary codec.
FAST_CODE_BYTES = (4, 8, 16, 20, 32, 64)


# --- the recipes by hand ------------------------------------------------------------------


def pack_signs(x: np.ndarray) -> np.ndarray:
    """x: (n, dim) float -> (n, bytes) uint8: sign bits packed, zero-padded to a fast width."""
    packed = np.packbits(x > 0, axis=1)
    needed = packed.shape[1]
    width = next((w for w in FAST_CODE_BYTES if w >= needed), -(-needed // 8) * 8)
    codes = np.zeros((len(x), width), dtype=np.uint8)
    codes[:, :needed] = packed
    return codes


class BinaryRescore:
    """Hamming shortlist of k * rescore by IndexBinaryFlat, then exact inner products pick k.

    unit: (n, dim) float32 unit rows, kept in RAM for rescoring.
    """

    def __init__(self, unit: np.ndarray, rescore: int = RESCORE):
        self.unit = unit
        self.rescore = rescore
        codes = pack_signs(unit)
        self.index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
        self.index.add(codes)

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """q: (nq, dim) float32 unit rows -> (scores (nq, k) float32, ids (nq, k) int64), best first."""
        _, candidates = self.index.search(pack_signs(q), min(k * self.rescore, self.index.ntotal))
        scores = np.matmul(self.unit[candidates], q[:, :, None])[:, :, 0]  # (nq, c)
        order = np.argsort(-scores, axis=1)[:, :k]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(candidates, order, axis=1)


def flat_ip(unit: np.ndarray) -> faiss.IndexFlatIP:
    index = faiss.IndexFlatIP(unit.shape[1])
    index.add(unit)
    return index


# --- timing -------------------------------------------------------------------------------


def time_single(a: Callable, b: Callable, queries: np.ndarray) -> tuple[float, float]:
    """QPS of a and b one query at a time, as 1 / median latency; they alternate per query."""
    for q in queries[:5]:
        a(q), b(q)
    times: tuple[list[float], list[float]] = ([], [])
    for i, q in enumerate(queries):
        for side in (0, 1) if i % 2 == 0 else (1, 0):
            run = a if side == 0 else b
            started = time.perf_counter()
            run(q)
            times[side].append(time.perf_counter() - started)
    return 1 / float(np.median(times[0])), 1 / float(np.median(times[1]))


def time_batch(a: Callable, b: Callable, queries: np.ndarray, rounds: int) -> tuple[float, float]:
    """QPS of a and b on one batch of all queries: best of `rounds`, alternating which goes first."""
    best = [float("inf"), float("inf")]
    for r in range(rounds):
        for side in (0, 1) if r % 2 == 0 else (1, 0):
            started = time.perf_counter()
            (a if side == 0 else b)(queries)
            best[side] = min(best[side], time.perf_counter() - started)
    return len(queries) / best[0], len(queries) / best[1]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true top k among the k found."""
    return float(np.mean([len(np.intersect1d(f, t)) / len(t) for f, t in zip(found, truth)]))


# --- RAM, measured in a fresh process --------------------------------------------------------


def _rss_kib() -> tuple[int, int]:
    """(resident KiB, anonymous resident KiB) of this process, from /proc/self/smaps_rollup.

    Free heap the allocator keeps cached is handed back first (glibc malloc_trim),
    so the figure is memory held, not memory once touched.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    fields = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                fields[name] = int(rest.split()[0])
    return fields["Rss"], fields["Anonymous"]


def _ram_probe(side: str, budget: str, folder: str, name: str, out) -> None:
    """In a fresh process: open (vecdial) or build (by hand) one index, search the batch, report growth."""
    faiss.omp_set_num_threads(1)
    with threadpool_limits(1):
        queries = np.load(Path(folder) / "queries.npy")
        # Warm up on a small index first: lazy imports, code pages and BLAS work buffers are not the
        # index's. It is kept alive, so freeing it cannot offset the growth measured next.
        if side == "vecdial":
            warm = open_collection(Path(folder), WARM)
            warm.search(queries, k=K, budget=budget)
        else:
            warm = (flat_ip if budget == "exact" else BinaryRescore)(np.load(Path(folder) / f"{WARM}.npy"))
            warm.search(queries, K)
        before = _rss_kib()
        if side == "vecdial":
            index = open_collection(Path(folder), name)
            index.search(queries, k=K, budget=budget)
        else:  # IndexFlatIP copies the vectors in, so the loaded array is freed; BinaryRescore keeps it
            index = (flat_ip if budget == "exact" else BinaryRescore)(np.load(Path(folder) / "docs.npy"))
            index.search(queries, K)
        after = _rss_kib()
        del warm, index
    out.put((after[0] - before[0], after[1] - before[1]))


def measure_ram(side: str, budget: str, folder: Path, name: str, n: int) -> str:
    """'heap H + mapped M' bytes per vector, or why not."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    probe = ctx.Process(target=_ram_probe, args=(side, budget, str(folder), name, out))
    probe.start()
    deadline = time.monotonic() + 300
    try:
        while True:
            try:
                rss, anon = out.get(timeout=1)
                break
            except queue.Empty:
                if not probe.is_alive() and out.empty() or time.monotonic() > deadline:
                    return "? (probe failed)"
    finally:
        probe.join(timeout=10)
        if probe.is_alive():
            probe.kill()
            probe.join()
    return f"{anon * 1024 / n:,.0f} + {(rss - anon) * 1024 / n:,.0f} mapped"


# --- the bench ----------------------------------------------------------------------------


@dataclass
class Pair:
    budget: str
    vecdial: Callable[[np.ndarray], object]
    by_hand: Callable[[np.ndarray], object]
    vecdial_ids: np.ndarray
    by_hand_ids: np.ndarray


PROFILED = ("binary:rescore=10", "rabitq:rescore=5,ef=64")


def profile_budget(col, queries: np.ndarray, budget: str, top: int = 20) -> None:
    """cProfile one-query searches under `budget`; print the top functions by own time, µs per search."""

    def search(q: np.ndarray) -> None:
        col.search(q, k=K, budget=budget)

    for q in queries[:5]:
        search(q)
    started = time.perf_counter()
    for q in queries:
        search(q)
    plain = (time.perf_counter() - started) / len(queries) * 1e6
    profiler = cProfile.Profile()
    profiler.enable()
    for q in queries:
        search(q)
    profiler.disable()
    print(f"\n{budget}, one query at a time, {len(queries)} searches: {plain:.0f} µs each without the profiler.")
    print("Top functions by own time under cProfile (which adds its own cost to every call), µs per search:")
    print(f"{'own µs':>8} {'cum µs':>8} {'calls':>6}  function")
    stats = pstats.Stats(profiler).stats
    for (path, line, func), (_, ncalls, own, cum, _) in sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:top]:
        where = f"{Path(path).parent.name}/{Path(path).name}:{line}" if line else path
        print(f"{own / len(queries) * 1e6:8.1f} {cum / len(queries) * 1e6:8.1f} {ncalls / len(queries):6.1f}  {func}  ({where})")


class KernelClock:
    """CPU time spent inside FAISS calls, compiled kernels and the query rotation, while active.

    Wraps, for as long as the `with` lasts, FAISS's `search_c` on the index classes vecdial
    searches, every compiled loop of stores/kernels.py (their callers look them up on the
    module, so the wrapper is what runs) and Rotation.apply; the rest of a search is outside.
    """

    def __init__(self) -> None:
        self.ns = {"faiss": 0, "compiled": 0, "rotation": 0}
        self._undo: list[tuple[object, str, object]] = []

    def _wrap(self, owner: object, name: str, bucket: str) -> None:
        original = getattr(owner, name)
        clock = self.ns

        def timed(*args, **kwargs):
            started = time.thread_time_ns()
            try:
                return original(*args, **kwargs)
            finally:
                clock[bucket] += time.thread_time_ns() - started

        self._undo.append((owner, name, original))
        setattr(owner, name, timed)

    def __enter__(self) -> KernelClock:
        from vecdial._internal import Rotation, kernels

        for cls in (
            faiss.IndexBinaryFlat,
            faiss.IndexFlat,
            faiss.IndexFlatIP,
            faiss.IndexRaBitQFastScan,
            faiss.IndexBinaryHNSW,
            faiss.IndexHNSWRaBitQ,
        ):
            self._wrap(cls, "search_c", "faiss")
        for name, value in vars(kernels).copy().items():  # every compiled loop callers reach on the module
            if isinstance(value, numba.core.registry.CPUDispatcher) and not name.startswith("_"):
                self._wrap(kernels, name, "compiled")
        self._wrap(Rotation, "apply", "rotation")
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)


def breakdown(col, queries: np.ndarray, budgets: tuple[str, ...] = BREAKDOWN) -> list[tuple[str, float, dict[str, float]]]:
    """Per budget: CPU µs per one-query search, and µs inside FAISS / compiled / rotation."""
    out = []
    for budget in budgets:
        try:
            for q in queries[:5]:
                col.search(q, k=K, budget=budget)
        except Exception as exc:  # a budget this collection cannot serve: say so, keep going
            print(f"breakdown: {budget} skipped ({type(exc).__name__}: {exc})")
            continue
        with KernelClock() as clock:
            started = time.thread_time_ns()
            for q in queries:
                col.search(q, k=K, budget=budget)
            total = time.thread_time_ns() - started
        out.append((budget, total / len(queries) / 1e3, {key: ns / len(queries) / 1e3 for key, ns in clock.ns.items()}))
    return out


def print_breakdown(rows: list[tuple[str, float, dict[str, float]]], title: str) -> None:
    table = Table(title=title)
    for column in (
        "budget",
        "CPU µs/search",
        "FAISS µs",
        "compiled µs",
        "rotation µs",
        "outside µs",
        "outside share",
        f"outside <= {OUTSIDE_TARGET_US} µs",
    ):
        table.add_column(column, justify="left" if column == "budget" else "right")
    for budget, total, inside in rows:
        outside = total - sum(inside.values())
        table.add_row(
            budget,
            f"{total:,.1f}",
            f"{inside['faiss']:,.1f}",
            f"{inside['compiled']:,.1f}",
            f"{inside['rotation']:,.1f}",
            f"{outside:,.1f}",
            f"{outside / total:.0%}",
            "yes" if outside <= OUTSIDE_TARGET_US else "[bold red]NO[/]",
        )
    table.caption = "CPU time of the searching thread per one-query col.search (k=10), wrappers around the kernels only for this pass."
    Console(width=220).print(table)


def grow(docs: np.ndarray, rows: int, seed: int = 0) -> np.ndarray:
    """docs (n, dim) unit rows grown to `rows` by noisy copies of random rows, renormalised
    (a stand-in where the WordNet cache is not built; say so beside the numbers)."""
    if rows <= len(docs):
        return docs
    rng = np.random.default_rng(seed)
    parents = rng.integers(0, len(docs), rows - len(docs))
    extra = docs[parents] + np.float32(0.05) * rng.standard_normal((len(parents), docs.shape[1]), dtype=np.float32)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    return np.ascontiguousarray(np.vstack([docs, extra]), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=SETS, default="wordnet")
    parser.add_argument("--single", type=int, default=300, help="queries timed one at a time")
    parser.add_argument("--rounds", type=int, default=3, help="batch timings per side (best counts)")
    parser.add_argument("--no-ram", action="store_true", help="skip the RAM probes (two processes per budget)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile one-at-a-time searches of binary:rescore=10 and (with a graph) rabitq:rescore=5,ef=64",
    )
    parser.add_argument("--grow", type=int, default=0, help="grow the set to this many rows by noisy copies (where WordNet is not cached)")
    parser.add_argument(
        "--graph", type=int, default=16, help="links a row of the graph over the RaBitQ codes (build setting graph; 0: none)"
    )
    parser.add_argument("--no-breakdown", action="store_true", help="skip the per-budget inside/outside kernels table")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    with threadpool_limits(1):
        run(args)


def run(args: argparse.Namespace) -> None:
    docs, queries = load_vectors(args.dataset)
    docs = grow(docs, args.grow)
    n, dim = docs.shape
    single = queries[: args.single]
    exact = flat_ip(docs)
    truth = exact.search(queries, K)[1]
    by_hand_binary = BinaryRescore(docs)

    with tempfile.TemporaryDirectory(prefix="vecdial-overhead-") as folder:
        folder = Path(folder)
        started = time.perf_counter()
        # with the graph over the RaBitQ codes, for the breakdown of rabitq:...,ef=E
        col = create_collection(folder, "overhead", docs, np.arange(n, dtype=np.int64), {"graph": args.graph})
        build_s = time.perf_counter() - started

        pairs = [
            Pair(
                "binary:rescore=10",
                lambda q: col.search(q, k=K, budget="binary:rescore=10"),
                lambda q: by_hand_binary.search(np.atleast_2d(q), K),
                hit_ids(col.search(queries, k=K, budget="binary:rescore=10")),
                by_hand_binary.search(queries, K)[1],
            ),
            Pair(
                "exact",
                lambda q: col.search(q, k=K, budget="exact"),
                lambda q: exact.search(np.atleast_2d(q), K),
                hit_ids(col.search(queries, k=K, budget="exact")),
                truth,
            ),
        ]
        speeds = {}
        for pair in pairs:
            speeds[pair.budget, "single"] = time_single(pair.vecdial, pair.by_hand, single)
            speeds[pair.budget, "batch"] = time_batch(pair.vecdial, pair.by_hand, queries, args.rounds)

        ram = {}
        if not args.no_ram:
            np.save(folder / "queries.npy", queries)
            np.save(folder / "docs.npy", docs)
            warm = docs[:WARM_SIZE]
            np.save(folder / f"{WARM}.npy", warm)
            create_collection(folder, WARM, warm, np.arange(len(warm), dtype=np.int64))
            for pair in pairs:
                ram[pair.budget] = tuple(measure_ram(side, pair.budget, folder, "overhead", n) for side in ("vecdial", "by_hand"))

        if args.profile:
            for budget in PROFILED if args.graph else PROFILED[:1]:
                profile_budget(col, single, budget)
        if not args.no_breakdown:
            split = breakdown(col, single)

    grown = f" grown to {n:,} rows by noisy copies" if args.grow > 0 else ""
    if not args.no_breakdown:
        print_breakdown(split, f"{args.dataset}{grown}: where one query's CPU time goes, {len(single)} searches per budget")
    table = Table(
        title=f"{args.dataset}{grown}: {n:,} unit vectors x {dim} dims, {len(queries)} queries, k={K}, 1 thread: vecdial vs the same recipe by hand"
    )
    columns = (
        "budget",
        "by hand",
        "queries",
        "vecdial QPS",
        "by-hand QPS",
        "ratio",
        "target",
        "met",
        "vecdial R@10",
        "by-hand R@10",
        "vecdial RAM B/vec",
        "by-hand RAM B/vec",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("budget", "by hand", "queries") else "right")
    for pair in pairs:
        target, recipe = BUDGETS[pair.budget]
        for mode in ("single", "batch"):
            ours, theirs = speeds[pair.budget, mode]
            ratio = ours / theirs
            met = ("yes" if ratio >= target else "[bold red]NO[/]") if mode == "single" else "-"
            table.add_row(
                pair.budget,
                recipe,
                f"1 at a time ({len(single)})" if mode == "single" else f"one batch ({len(queries)})",
                f"{ours:,.0f}",
                f"{theirs:,.0f}",
                f"{ratio:.2f}",
                f">= {target}" if mode == "single" else "-",
                met,
                f"{recall(pair.vecdial_ids, truth):.3f}",
                f"{recall(pair.by_hand_ids, truth):.3f}",
                *ram.get(pair.budget, ("-", "-")),
            )
    table.caption = (
        f"vecdial via {FRONT_DOOR} (built in {build_s:.1f} s); ratio = vecdial QPS / by-hand QPS, measured in this run. "
        "One at a time: 1 / median latency, sides alternating per query; batch: best of "
        f"{args.rounds}. RAM: growth of a fresh process's resident memory over open/build + one batch search, per vector: "
        "heap, + pages of memory-mapped index files it touched (page cache: shared, evictable)."
    )
    Console(width=220).print(table)


if __name__ == "__main__":
    main()
