"""Timing, recall and RAM of many (system, setting) pairs, measured as overhead_bench does.

One query at a time: every pair searches each query in turn, in a fresh random order
per query (systems interleaved, so a noisy neighbour hits all alike); QPS = 1 /
median latency, and the p99 latency is kept. Batch: all queries in one call, best
of `rounds`, pairs again in a fresh order per round. Each system stops being timed
in a phase once its timed searches passed `max_seconds` (at least one batch round
and the queries already timed count). RAM: a fresh spawned process per probe warms
up on a small build of the same system, then loads the saved full index and
searches one batch; the growth of its resident memory (heap, and memory-mapped
file pages touched) per vector is the figure.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from bench.overhead_bench import _rss_kib
from bench.peers.registry import PEERS
from bench.peers.systems import Search


@dataclass
class Pair:
    system: str  # peer key
    setting: str
    knobs: dict
    search: Search


@dataclass
class Timing:
    single_qps: float | None = None
    p99_ms: float | None = None
    timed: int = 0  # queries timed one at a time
    batch_qps: float | None = None
    rounds: int = 0
    ids: np.ndarray | None = None  # the first batch's ids, (nq, k)


def time_pairs(pairs: list[Pair], single: np.ndarray, batch: np.ndarray, rounds: int, max_seconds: float, seed: int = 0) -> list[Timing]:
    """Interleaved one-query timings on `single`, then batch timings on `batch`, per pair."""
    rng = np.random.default_rng(seed)
    out = [Timing() for _ in pairs]
    one = [single[i : i + 1] for i in range(len(single))]
    for pair in pairs:  # warm caches, lazy imports, JIT
        for q in one[:3]:
            pair.search(q)
    latencies: list[list[float]] = [[] for _ in pairs]
    spent: dict[str, float] = defaultdict(float)
    for q in one:
        for j in rng.permutation(len(pairs)):
            system = pairs[j].system
            if spent[system] > max_seconds:
                continue
            started = time.perf_counter()
            pairs[j].search(q)
            elapsed = time.perf_counter() - started
            latencies[j].append(elapsed)
            spent[system] += elapsed
    for timing, times in zip(out, latencies):
        if times:
            timing.single_qps = 1 / float(np.median(times))
            timing.p99_ms = float(np.quantile(times, 0.99)) * 1e3
            timing.timed = len(times)

    spent.clear()
    best = [float("inf")] * len(pairs)
    for r in range(rounds):
        for j in rng.permutation(len(pairs)):
            system = pairs[j].system
            if r > 0 and spent[system] > max_seconds:
                continue
            started = time.perf_counter()
            ids = pairs[j].search(batch)
            elapsed = time.perf_counter() - started
            spent[system] += elapsed
            best[j] = min(best[j], elapsed)
            out[j].rounds += 1
            if out[j].ids is None:
                out[j].ids = np.asarray(ids)
    for timing, seconds in zip(out, best):
        timing.batch_qps = len(batch) / seconds
    return out


def recall(found: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Fraction of the true top-k (only those where mask[id], if given) found, pooled over queries."""
    hit = total = 0
    for f, t in zip(found, truth):
        if mask is not None:
            t = t[mask[t]]
        hit += len(np.intersect1d(f, t))
        total += len(t)
    return hit / total if total else float("nan")


# --- RAM ---------------------------------------------------------------------------------------


def _probe(spec: dict, folder: str, out) -> None:
    """In a fresh process: warm up on a small build, then load the saved index, search, report growth."""
    faiss.omp_set_num_threads(1)
    with threadpool_limits(1):
        root = Path(folder)
        queries = np.load(root / "queries.npy")
        cls = PEERS[spec["key"]]
        warm = cls(**spec["kwargs"])
        warm.build(np.load(root / "warm.npy"))
        warm.searcher(spec["knobs"])(queries)
        before = _rss_kib()
        peer = cls(**spec["kwargs"])
        peer.load(Path(spec["path"]))
        peer.searcher(spec["knobs"])(queries)
        after = _rss_kib()
        del warm, peer
    out.put((after[0] - before[0], after[1] - before[1]))


def measure_ram(spec: dict, folder: Path, n: int, timeout: float = 900) -> tuple[float, float] | None:
    """(heap, memory-mapped) resident bytes per vector grown by loading + one batch search, or None."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    probe = ctx.Process(target=_probe, args=(spec, str(folder), out))
    probe.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                rss, anon = out.get(timeout=1)
                return anon * 1024 / n, (rss - anon) * 1024 / n
            except queue.Empty:
                if (not probe.is_alive() and out.empty()) or time.monotonic() > deadline:
                    return None
    finally:
        probe.join(timeout=10)
        if probe.is_alive():
            probe.kill()
            probe.join()
