"""One-query latency on an idle machine and beside a busy neighbour, against a 2x target.

    python -m bench.busy_bench                          # demo collection, 300 queries
    python -m bench.busy_bench --dataset wordnet --queries 200

A search service rarely has the machine to itself. This bench times one query at
a time through the in-process Python API, with the machine idle and while a
second process, started and stopped here, keeps every core busy with a 2-thread
torch matmul loop. A library that starts a thread team for one query waits on
threads the neighbour has descheduled, and its latency jumps far past the share
of CPU it lost; one that stays on the caller's thread slows by about 2x on two
cores. Target: busy p50 / idle p50 <= 2 for every budget. FAISS IndexFlatIP, one
query at a time, is the reference row.

Threads are left as the user gets them: no OMP_NUM_THREADS, no threadpool limits.
Not starting thread teams for single queries is the library's job. Idle and busy
phases alternate (--rounds) over the same queries, and every phase times each
search on each query in turn, so drift on a shared machine hits all rows alike.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_info

from bench.datasets.sets import SETS, load_vectors
from bench.front_door import FRONT_DOOR, create_collection, hit_ids

BUDGETS = ["exact", "dense:dim=64", "binary:rescore=10"]
TARGET = 2.0
K = 10
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# --- the neighbour: a separate process, so the bench's own threads stay as they are --------


def _neighbour_loop(ready, go, stop, done, size: int, threads: int, max_seconds: float) -> None:
    """Multiply (size x size) matrices on `threads` threads while `go` is set; exit on `stop` or after max_seconds."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    ready.set()
    end = time.monotonic() + max_seconds
    while not stop.is_set() and time.monotonic() < end:
        if not go.wait(timeout=0.1):
            continue
        for _ in range(10):
            a @ b
        done.value += 10


class Neighbour:
    """A 2-thread torch matmul loop in a spawned process, switched on and off between phases.

    The process exits by itself after max_seconds, and is terminated (then killed)
    on leaving the `with` block, so an interrupted bench leaves nothing running.
    """

    def __init__(self, size: int = 512, threads: int = 2, max_seconds: float = 600):
        ctx = mp.get_context("spawn")  # a fresh interpreter: torch never loads in the bench process
        self.ready, self.go, self.stop = ctx.Event(), ctx.Event(), ctx.Event()
        self.done = ctx.Value("q", 0, lock=False)
        self.process = ctx.Process(
            target=_neighbour_loop,
            args=(self.ready, self.go, self.stop, self.done, size, threads, max_seconds),
            daemon=True,
        )

    def __enter__(self) -> Self:
        self.process.start()
        if not self.ready.wait(timeout=120):
            self.__exit__()
            raise RuntimeError("the torch neighbour did not start within 120 s (is torch installed?)")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.go.clear()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def busy(self, on: bool, settle: float = 0.5) -> None:
        """Start or pause the matmul loop, then let the machine settle."""
        (self.go.set if on else self.go.clear)()
        time.sleep(settle)


# --- timing -----------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    search: Callable[[np.ndarray], object]
    idle: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)


def time_phase(rows: list[Row], queries: np.ndarray, busy: bool) -> None:
    """Time every row's search on each query in turn (seconds), into its idle or busy list."""
    for q in queries[:5]:  # warm caches after the switch
        for row in rows:
            row.search(q)
    for q in queries:
        for row in rows:
            started = time.perf_counter()
            row.search(q)
            (row.busy if busy else row.idle).append(time.perf_counter() - started)


def _cpu_jiffies() -> np.ndarray:
    """(idle, total) CPU time of the whole machine so far, from /proc/stat (zeros elsewhere)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return np.zeros(2)
    return np.array([ticks[3] + ticks[4], sum(ticks[:8])], dtype=float)


def _ms(times: list[float], pct: float) -> float:
    return float(np.percentile(times, pct)) * 1000


def _thread_pools() -> str:
    """Threads each BLAS/OpenMP library loaded here would use, as found (not set by this bench)."""
    pools = [f"{p['prefix']} {p['num_threads']}" for p in threadpool_info()]
    return ", ".join(pools) or "none loaded"


@dataclass
class Machine:
    """What the machine did while the rows were timed, per kind of phase (False: idle, True: busy).

    jiffies: the whole machine's (idle, total) CPU time; own: this process's (CPU
    seconds over all its threads, wall seconds); matmuls: the neighbour's work while busy.
    """

    jiffies: dict[bool, np.ndarray] = field(default_factory=lambda: {False: np.zeros(2), True: np.zeros(2)})
    own: dict[bool, np.ndarray] = field(default_factory=lambda: {False: np.zeros(2), True: np.zeros(2)})
    matmuls: int = 0

    def cores(self, busy: bool) -> float:
        cpu, wall = self.own[busy]
        return cpu / wall

    def idle_share(self, busy: bool) -> str:
        idle, total = self.jiffies[busy]
        return f"{idle / total:.0%}" if total else "?"

    def matmul_rate(self) -> float:
        return self.matmuls / max(self.own[True][1], 1e-9)


def run_phases(rows: list[Row], queries: np.ndarray, rounds: int) -> Machine:
    """Alternate idle and busy phases, each over its share of the queries, timing every row."""
    machine = Machine()
    with Neighbour() as neighbour:
        for r in range(rounds):
            part = queries[r::rounds]
            for busy in (False, True):
                neighbour.busy(busy)
                matmuls, jiffies = neighbour.done.value, _cpu_jiffies()
                cpu, started = time.process_time(), time.perf_counter()
                time_phase(rows, part, busy=busy)
                machine.own[busy] += (time.process_time() - cpu, time.perf_counter() - started)
                machine.jiffies[busy] += _cpu_jiffies() - jiffies
                if busy:
                    machine.matmuls += neighbour.done.value - matmuls
    return machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=SETS, default="demo")
    parser.add_argument("--queries", type=int, default=300, help="queries timed per row in each of idle and busy")
    parser.add_argument("--rounds", type=int, default=3, help="idle/busy alternations the queries are split over")
    args = parser.parse_args()

    pools_before = _thread_pools()
    docs, queries = load_vectors(args.dataset)
    queries = queries[: args.queries]
    flat = faiss.IndexFlatIP(docs.shape[1])
    flat.add(docs)
    with tempfile.TemporaryDirectory(prefix="vecdial-busy-") as data_dir:
        col = create_collection(Path(data_dir), "busy", docs, np.arange(len(docs), dtype=np.int64))
        truth = flat.search(queries, K)[1]
        for budget in BUDGETS:  # one batch per budget: fails early if a budget is refused
            found = hit_ids(col.search(queries, k=K, budget=budget))
            if budget == "exact" and (found[:, 0] != truth[:, 0]).mean() > 0.01:
                raise RuntimeError("vecdial `exact` disagrees with IndexFlatIP on the top hit: check the collection")
        rows = [Row(budget, lambda q, b=budget: col.search(q, k=K, budget=b)) for budget in BUDGETS]
        rows.append(Row("faiss IndexFlatIP", lambda q: flat.search(q[None, :], K)))
        machine = run_phases(rows, queries, args.rounds)
    print_table(args, docs, queries, rows, machine, pools_before)


def print_table(
    args: argparse.Namespace, docs: np.ndarray, queries: np.ndarray, rows: list[Row], machine: Machine, pools_before: str
) -> None:
    table = Table(
        title=f"{args.dataset}: {len(docs):,} vectors x {docs.shape[1]} dims, {len(queries)} queries one at a time (k={K}), "
        f"idle vs beside a 2-thread torch matmul loop, {os.cpu_count()} cores"
    )
    columns = (
        "search",
        "idle p50 ms",
        "idle p90 ms",
        "busy p50 ms",
        "busy p90 ms",
        "busy/idle p50",
        "busy/idle p90",
        f"p50 <= {TARGET:g}x",
        "idle p50 x faiss",
        "busy p50 x faiss",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "search" else "right")
    faiss_row = rows[-1]
    for row in rows:
        ratio50 = _ms(row.busy, 50) / _ms(row.idle, 50)
        verdict = "yes" if ratio50 <= TARGET else "[bold red]NO[/]"
        table.add_row(
            row.label,
            f"{_ms(row.idle, 50):.3f}",
            f"{_ms(row.idle, 90):.3f}",
            f"{_ms(row.busy, 50):.3f}",
            f"{_ms(row.busy, 90):.3f}",
            f"{ratio50:.2f}",
            f"{_ms(row.busy, 90) / _ms(row.idle, 90):.2f}",
            verdict if row.label in BUDGETS else f"({verdict})",
            f"{_ms(row.idle, 50) / _ms(faiss_row.idle, 50):.1f}",
            f"{_ms(row.busy, 50) / _ms(faiss_row.busy, 50):.1f}",
        )
    set_vars = [f"{v}={os.environ[v]}" for v in THREAD_VARS if v in os.environ]
    pools_after = _thread_pools()
    table.caption = (
        f"vecdial via {FRONT_DOOR}; threads as found: {pools_before}"
        f"{'; after the searches: ' + pools_after if pools_after != pools_before else ''}"
        f"{'; set in the environment: ' + ', '.join(set_vars) if set_vars else ''}. "
        f"Neighbour: {machine.matmul_rate():.0f} matmuls/s (512x512) while busy. "
        f"This process used {machine.cores(False):.2f} cores during the idle phases, {machine.cores(True):.2f} during the busy ones "
        f"(1.00 = one thread at work; more = thread teams); the machine's CPU was idle {machine.idle_share(False)} of the time "
        f"in the idle phases, {machine.idle_share(True)} in the busy ones; load average after: {os.getloadavg()[0]:.2f}. "
        f"{args.rounds} idle/busy rounds; FAISS's verdict is for reference."
    )
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
