"""What vecdial's API costs over the same search written by hand with FAISS, on one thread.

    python -m bench.overhead_bench                      # WordNet, ~118k real MiniLM vectors
    python -m bench.overhead_bench --dataset demo       # quick check on 2k vectors
    python -m bench.overhead_bench --profile            # and where one binary query spends its time

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
    "binary:rescore=10": (0.8, "IndexBinaryFlat k*10 + rescore"),
    "exact": (0.9, "IndexFlatIP"),
}
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


def profile_binary(col, queries: np.ndarray, top: int = 20) -> None:
    """cProfile one-query binary:rescore=10 searches; print the top functions by own time, µs per search."""

    def search(q: np.ndarray) -> None:
        col.search(q, k=K, budget="binary:rescore=10")

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
    print(f"\nbinary:rescore=10, one query at a time, {len(queries)} searches: {plain:.0f} µs each without the profiler.")
    print("Top functions by own time under cProfile (which adds its own cost to every call), µs per search:")
    print(f"{'own µs':>8} {'cum µs':>8} {'calls':>6}  function")
    stats = pstats.Stats(profiler).stats
    for (path, line, func), (_, ncalls, own, cum, _) in sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:top]:
        where = f"{Path(path).parent.name}/{Path(path).name}:{line}" if line else path
        print(f"{own / len(queries) * 1e6:8.1f} {cum / len(queries) * 1e6:8.1f} {ncalls / len(queries):6.1f}  {func}  ({where})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=SETS, default="wordnet")
    parser.add_argument("--single", type=int, default=300, help="queries timed one at a time")
    parser.add_argument("--rounds", type=int, default=3, help="batch timings per side (best counts)")
    parser.add_argument("--no-ram", action="store_true", help="skip the RAM probes (two processes per budget)")
    parser.add_argument("--profile", action="store_true", help="also profile the one-at-a-time binary:rescore=10 searches")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    with threadpool_limits(1):
        run(args)


def run(args: argparse.Namespace) -> None:
    docs, queries = load_vectors(args.dataset)
    n, dim = docs.shape
    single = queries[: args.single]
    exact = flat_ip(docs)
    truth = exact.search(queries, K)[1]
    by_hand_binary = BinaryRescore(docs)

    with tempfile.TemporaryDirectory(prefix="vecdial-overhead-") as folder:
        folder = Path(folder)
        started = time.perf_counter()
        col = create_collection(folder, "overhead", docs, np.arange(n, dtype=np.int64))
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
            profile_binary(col, single)

    table = Table(title=f"{args.dataset}: {n:,} unit vectors x {dim} dims, {len(queries)} queries, k={K}, 1 thread: vecdial vs the same recipe by hand")
    columns = ("budget", "by hand", "queries", "vecdial QPS", "by-hand QPS", "ratio", "target", "met", "vecdial R@10", "by-hand R@10", "vecdial RAM B/vec", "by-hand RAM B/vec")
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
