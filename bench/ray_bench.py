"""Build throughput in-process vs on Ray (1 and 2 local nodes), Ray Data vs plain tasks, texts/s.

    .venv/bin/python -m bench.ray_bench                    # WordNet (117k x 384), 2,000 texts
    .venv/bin/python -m bench.ray_bench --dataset demo --texts 500

Every number is from this run, on this machine, with ratios against the in-process row.
Clusters are local (bench/ray_cluster.py: nodes on 127.0.0.2, temp dirs under one
temporary directory, stopped at the end). The machine has 2 cores, so "2 nodes" is two
`ray start` processes of 1 CPU each: the same cores as 1 node of 2 CPUs, showing what a
second node costs; texts compare 1 core in-process with 2 cores across 2 nodes, which
is how "more cores on more nodes" is simulated here.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from bench.datasets.sets import load_vectors  # noqa: E402
from bench.ray_cluster import LocalCluster  # noqa: E402
from vecdial import BuildSettings  # noqa: E402
from vecdial._internal import Dataset, InProcess, build_version, engine_for  # noqa: E402


class Timed:
    """An engine that adds up the seconds its per-row passes take."""

    def __init__(self, engine: Any):
        self.engine, self.seconds = engine, 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def _timed(self, name: str, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return getattr(self.engine, name)(*args)
        finally:
            self.seconds += time.perf_counter() - start

    def cells(self, *args: Any) -> np.ndarray:
        return self._timed("cells", *args)

    def encode(self, *args: Any) -> None:
        return self._timed("encode", *args)


def build_seconds(dataset: Dataset, root: Path, engine: Any = None) -> tuple[float, float | None]:
    """(whole build seconds, seconds of the per-row passes or None when not measured)."""
    timed = Timed(engine) if engine is not None else None
    start = time.perf_counter()
    with build_version(dataset, root / "versions", BuildSettings(), show_progress=False, engine=timed):
        total = time.perf_counter() - start
    return total, None if timed is None else timed.seconds


def shard_files(docs: np.ndarray, folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, part in enumerate(np.array_split(docs, count)):
        path = folder / f"shard{i:03d}.npy"
        np.save(path, part)
        paths.append(str(path))
    return paths


def read_shards(paths: list[str]) -> dict[str, float]:
    """Seconds to read every shard and sum it: np.load here, Ray tasks over paths, Ray Data."""
    import ray

    def load_sum(path: str) -> float:
        return float(np.load(path).sum(dtype=np.float64))

    out = {}
    start = time.perf_counter()
    expected = sum(load_sum(p) for p in paths)
    out["np.load in a loop"] = time.perf_counter() - start
    task = ray.remote(load_sum)
    ray.get(task.remote(paths[0]))  # a worker up before the clock starts
    start = time.perf_counter()
    got = sum(ray.get([task.remote(p) for p in paths]))
    out["Ray tasks over paths"] = time.perf_counter() - start
    assert abs(got - expected) < 1e-3 * abs(expected) + 1
    try:
        import ray.data
    except ImportError:  # Ray Data needs pandas and pyarrow: pip install 'ray[data]'
        return out
    ray.data.DataContext.get_current().enable_progress_bars = False
    start = time.perf_counter()
    total = 0.0
    for batch in ray.data.read_numpy(paths).iter_batches(batch_size=8192, batch_format="numpy"):
        total += float(np.asarray(batch["data"]).sum(dtype=np.float64))
    out["Ray Data read_numpy"] = time.perf_counter() - start
    assert abs(total - expected) < 1e-3 * abs(expected) + 1
    return out


def text_rates(texts: list[str], engine: Any) -> tuple[float, float]:
    """(texts/s including starting the encoders (each loads the model), texts/s once they are up)."""
    start = time.perf_counter()
    engine.encode_texts(texts, False)
    total = time.perf_counter() - start
    return len(texts) / total, len(texts) / (total - engine.encoders_started_s)


def in_process_text_rate(texts: list[str], threads: int) -> float:
    import torch

    from vecdial._internal import encode_texts

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        encode_texts(texts[:64])  # the model loaded before the clock starts
        start = time.perf_counter()
        encode_texts(texts)
        return len(texts) / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)


def latency(search: Any, queries: np.ndarray) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, queries/s) of one query at a time, after 5 warm-up queries."""
    for query in queries[:5]:
        search(query)
    times = []
    for query in queries:
        start = time.perf_counter()
        search(query)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), len(ms) / float(ms.sum() / 1000)


def serving_rows(docs: np.ndarray, queries: np.ndarray, root: Path, shards: int, budgets: list[str]) -> list[tuple]:
    """Search latency: the whole collection in-process, its shards in-process (the merge), and
    the shards on Ray Serve over loopback HTTP (2 nodes x 1 CPU)."""
    import httpx

    import vecdial
    from bench.server import free_port
    from vecdial.service.shard_search import create_shards, search_shards

    db = vecdial.connect(root / "serving")
    whole = db.create("set", docs, show_progress=False)
    parts = [db.open(name) for name in create_shards(db, "set", shards, docs)]
    rows = []
    for budget in budgets:
        rows.append((f"whole, in-process, {budget}", *latency(lambda q, b=budget: whole.search(q, k=10, budget=b), queries)))
        rows.append((f"{shards} shards, in-process merge, {budget}", *latency(lambda q, b=budget: search_shards(parts, q, 10, b), queries)))
    from ray import serve

    from vecdial.service.sharded import serve_sharded

    port = free_port()
    with LocalCluster(root / "ray-serve", nodes=2, cpus=1, object_store=200_000_000) as cluster:
        serve_sharded(cluster.address, str(root / "serving"), "set", shards, port=port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                for budget in budgets:

                    def post(q: np.ndarray, b: str = budget) -> None:
                        client.post("/v1/collections/set/search", json={"vector": q.tolist(), "k": 10, "budget": b}).raise_for_status()

                    rows.append((f"{shards} shards, Ray Serve over HTTP, {budget}", *latency(post, queries)))
        finally:
            serve.shutdown()
            import ray

            ray.shutdown()
    return rows


def wordnet_texts(count: int) -> list[str]:
    from bench.datasets.wordnet import load_wordnet_set

    return list(load_wordnet_set().doc_texts[:count])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="wordnet", choices=("demo", "wordnet"))
    parser.add_argument("--texts", type=int, default=2000, help="texts encoded per engine (0: skip)")
    parser.add_argument("--shard-files", type=int, default=16, help="files the read comparison splits the set into")
    parser.add_argument("--shards", type=int, default=2, help="shards of the serving comparison (0: skip it)")
    parser.add_argument("--queries", type=int, default=200, help="queries each serving row times")
    parser.add_argument("--skip-build", action="store_true", help="only the serving comparison")
    args = parser.parse_args(argv)
    docs, queries = load_vectors(args.dataset)
    dataset = Dataset(np.arange(len(docs), dtype=np.int64), docs, None)
    n = len(docs)
    texts = wordnet_texts(args.texts) if args.texts else []
    rows: list[tuple[str, float, float | None, float | None, float | None]] = []
    reads: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
        root = Path(tmp)
        serving = serving_rows(docs, queries[: args.queries], root, args.shards, ["exact", "binary:rescore=10"]) if args.shards else []
        if args.skip_build:
            print_serving(args.dataset, serving)
            return
        total, _ = build_seconds(dataset, root / "plain")
        split_total, split_passes = build_seconds(dataset, root / "split", InProcess())
        rows.append(("in-process (the build loop)", total, None, None, None))
        rows.append(("in-process, split shard steps", split_total, split_passes, None, None))
        if texts:
            rows.append(("in-process text encoding, 1 thread", float("nan"), None, in_process_text_rate(texts, 1), None))
            rows.append(("in-process text encoding, 2 threads", float("nan"), None, in_process_text_rate(texts, 2), None))
        for nodes, cpus in ((1, 2), (2, 1)):
            label = f"Ray, {nodes} node{'s' if nodes > 1 else ''} x {cpus} CPU"
            with LocalCluster(root / f"ray{nodes}", nodes=nodes, cpus=cpus, object_store=400_000_000) as cluster:
                engine = engine_for(cluster.address)
                try:
                    engine.connect()
                    ray_total, ray_passes = build_seconds(dataset, root / f"r{nodes}", engine)
                    cold = warm = None
                    if texts:
                        cold, warm = text_rates(texts, engine)
                    if nodes == 2:
                        reads = read_shards(shard_files(docs, root / "shards", args.shard_files))
                finally:
                    engine.close()
            rows.append((label, ray_total, ray_passes, cold, warm))
    print_table(args.dataset, n, len(texts), rows, reads)
    print_serving(args.dataset, serving)


def print_serving(dataset: str, rows: list[tuple]) -> None:
    if not rows:
        return
    print(f"\none query at a time on {dataset}, k=10 (Ray Serve: 2 local nodes x 1 CPU, loopback HTTP)")
    print(f"{'search':<52} {'p50 ms':>8} {'p99 ms':>8} {'QPS':>8} {'p50 - whole':>12}")
    base = {label.rsplit(", ", 1)[1]: p50 for label, p50, _, _ in rows if label.startswith("whole")}
    for label, p50, p99, qps in rows:
        print(f"{label:<52} {p50:8.2f} {p99:8.2f} {qps:8.0f} {p50 - base[label.rsplit(', ', 1)[1]]:+12.2f}")


def print_table(dataset: str, n: int, n_texts: int, rows: list, reads: dict[str, float]) -> None:
    base = rows[0][1]
    base_passes = rows[1][2]
    print(f"\nbuild of {dataset} ({n:,} x 384), default settings; texts: {n_texts:,} WordNet glosses")
    print(
        f"{'engine':<40} {'build s':>8} {'x in-proc':>9} {'passes s':>9} {'vec/s passes':>13} {'x split':>8} {'texts/s':>9} {'texts/s up':>13}"
    )
    for label, total, passes, cold, warm in rows:
        build = "" if np.isnan(total) else f"{total:8.2f} {total / base:9.2f}"
        per = "" if passes is None else f"{passes:9.2f} {n / passes:13,.0f} {passes / base_passes:8.2f}"
        print(
            f"{label:<40} {build:>18} {per:>32} {'' if cold is None else f'{cold:9.0f}':>9} {'' if warm is None else f'{warm:13.0f}':>13}"
        )
    if reads:
        base_read = reads["np.load in a loop"]
        print(f"\nreading {dataset} as shard files (2 nodes x 1 CPU)")
        for label, seconds in reads.items():
            print(f"{label:<40} {seconds:8.3f} s {seconds / base_read:6.1f}x np.load")


if __name__ == "__main__":
    main()
