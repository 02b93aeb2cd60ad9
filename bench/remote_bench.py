"""What the remote client adds to one search: `vecdial.connect(url)` against `vecdial.connect(dir)`.

    python -m bench.remote_bench                    # the WordNet set (~118k vectors), or demo if not cached
    python -m bench.remote_bench --dataset demo     # the shipped corpus (2,032 vectors)
    python -m bench.remote_bench --shards 4         # and what serving the set as 4 shards adds

Builds the set as a collection in a temp dir, starts `vecdial serve` (one worker) on
127.0.0.1 at a free port, and times one query at a time, interleaved query by query
so that a busy machine slows every column alike:

* embedded: `vecdial.connect(dir).open(name).search(q, k, budget)` in this process;
* raw HTTP: a pre-built POST /search with `vector_b64` sent on a keep-alive httpx client
  (the server's own HTTP overhead, as bench/http_bench.py measures it);
* remote client: `vecdial.connect(url).open(name).search(q, k, budget)`: the same request
  built per call, plus decoding the answer into `Hits` arrays.

Added = remote client - embedded, at p50 and p99; `client alone` = remote client - raw
HTTP (what the client's own encoding and decoding cost). Every remote answer is checked
against the embedded one (same ids). Bounded by `--requests` and `--max-seconds` per
budget; the server is stopped on the way out. The machine is shared and noisy: read the
columns against each other, measured in the same run, never as absolute figures.

With `--shards N` the set is also split (`Database.shard`) into a second collection of N
shards, served by the same server, and a second table times one query to the whole and to
the shards, in this process and over raw HTTP (interleaved likewise): the added p50 is
what the fan-out and merge cost. `ids differ` counts queries whose sharded top k is not the
whole's (0 for exact; a compressed budget's candidates differ per shard).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

import vecdial
from bench.http_bench import load_set
from bench.server import start_server, stop_server
from vecdial._internal import b64

BUDGETS = ["binary:rescore=10"]
COLLECTION = "bench"
COLUMNS = ("embedded", "raw HTTP", "remote client")
SHARDED = f"{COLLECTION}-sharded"
SHARD_COLUMNS = ("whole in-process", "sharded in-process", "whole HTTP", "sharded HTTP")


def pct(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000, q))


def measure(embedded, remote, raw: httpx.Client, queries: np.ndarray, budget: str, k: int, requests: int, max_seconds: float) -> dict:
    """Per column, the seconds of each query, interleaved; and how many remote answers differed."""
    times: dict[str, list[float]] = {column: [] for column in COLUMNS}
    prepared = [
        raw.build_request("POST", f"/v1/collections/{COLLECTION}/search", json={"vector_b64": b64(q), "k": k, "budget": budget})
        for q in queries[:requests]
    ]
    for i in range(min(20, len(queries))):  # warm every path: kernels, connections, the server's inline-search estimate
        embedded.search(queries[i], k, budget), remote.search(queries[i], k, budget), raw.send(prepared[i]).read()
    differ, deadline = 0, time.monotonic() + max_seconds
    for i, query in enumerate(queries[:requests]):
        t0 = time.perf_counter()
        here = embedded.search(query, k, budget)
        t1 = time.perf_counter()
        response = raw.send(prepared[i])
        response.read()
        t2 = time.perf_counter()
        there = remote.search(query, k, budget)
        t3 = time.perf_counter()
        assert response.status_code == 200, response.text
        times["embedded"].append(t1 - t0)
        times["raw HTTP"].append(t2 - t1)
        times["remote client"].append(t3 - t2)
        differ += here.ids.tolist() != there.ids.tolist()
        if time.monotonic() > deadline:
            break
    return {"times": times, "differ": differ}


def measure_shards(whole, sharded, raw: httpx.Client, queries: np.ndarray, budget: str, k: int, requests: int, max_seconds: float) -> dict:
    """Per SHARD_COLUMNS, the seconds of each query, interleaved; and how many sharded answers differed."""
    times: dict[str, list[float]] = {column: [] for column in SHARD_COLUMNS}

    def post(name: str, query: np.ndarray) -> httpx.Request:
        return raw.build_request("POST", f"/v1/collections/{name}/search", json={"vector_b64": b64(query), "k": k, "budget": budget})

    prepared = [(post(COLLECTION, q), post(SHARDED, q)) for q in queries[:requests]]
    for i in range(min(20, len(prepared))):  # warm every path
        (
            whole.search(queries[i], k, budget),
            sharded.search(queries[i], k, budget),
            raw.send(prepared[i][0]).read(),
            raw.send(prepared[i][1]).read(),
        )
    differ, deadline = 0, time.monotonic() + max_seconds
    for i, query in enumerate(queries[:requests]):
        stamps = [time.perf_counter()]
        here = whole.search(query, k, budget)
        stamps.append(time.perf_counter())
        there = sharded.search(query, k, budget)
        stamps.append(time.perf_counter())
        for request in prepared[i]:
            response = raw.send(request)
            response.read()
            assert response.status_code == 200, response.text
            stamps.append(time.perf_counter())
        for column, start, stop in zip(SHARD_COLUMNS, stamps, stamps[1:]):
            times[column].append(stop - start)
        differ += here.ids.tolist() != there.ids.tolist()
        if time.monotonic() > deadline:
            break
    return {"times": times, "differ": differ}


def print_shard_table(console: Console, title: str, rows: dict[str, dict]) -> None:
    table = Table(title=title)
    for column in ("budget", "queries", *(f"{c} p50" for c in SHARD_COLUMNS), "added in-process p50", "added HTTP p50", "ids differ"):
        table.add_column(column, justify="right")
    for budget, row in rows.items():
        t = row["times"]
        p50 = {c: pct(t[c], 50) for c in SHARD_COLUMNS}
        added = (f"{p50['sharded in-process'] - p50['whole in-process']:+.3f}", f"{p50['sharded HTTP'] - p50['whole HTTP']:+.3f}")
        table.add_row(budget, str(len(t["whole HTTP"])), *(f"{p50[c]:.3f}" for c in SHARD_COLUMNS), *added, str(row["differ"]))
    console.print(table)


def print_table(console: Console, title: str, rows: dict[str, dict]) -> None:
    table = Table(title=title)
    for column in ("budget", "queries", *(f"{c} p50 / p99" for c in COLUMNS), "added p50 / p99", "client alone p50", "ids differ"):
        table.add_column(column, justify="right")
    for budget, row in rows.items():
        t = row["times"]
        cells = [f"{pct(t[c], 50):.3f} / {pct(t[c], 99):.3f}" for c in COLUMNS]
        added = f"{pct(t['remote client'], 50) - pct(t['embedded'], 50):+.3f} / {pct(t['remote client'], 99) - pct(t['embedded'], 99):+.3f}"
        alone = f"{pct(t['remote client'], 50) - pct(t['raw HTTP'], 50):+.3f}"
        table.add_row(budget, str(len(t["embedded"])), *cells, added, alone, str(row["differ"]))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["wordnet", "demo"], default="wordnet")
    parser.add_argument("--requests", type=int, default=1000, help="queries per budget (each asked three ways)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time limit per budget")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--budgets", nargs="+", default=BUDGETS)
    parser.add_argument("--shards", type=int, default=0, help="also time the set split into this many shards (0: not)")
    parser.add_argument("--no-client", action="store_true", help="skip the remote-client table (with --shards: only the shards')")
    args = parser.parse_args(argv)

    console = Console(width=170)
    docs, queries, name = load_set(args.dataset, console)
    with tempfile.TemporaryDirectory(prefix="vecdial-remote-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        local = vecdial.connect(data_dir)
        embedded = local.create(COLLECTION, docs, ids=np.arange(len(docs)), show_progress=False)
        if args.shards:
            local.create(SHARDED, docs, ids=np.arange(len(docs)), show_progress=False)
            sharded = local.shard(SHARDED, args.shards, show_progress=False)
        size = len(docs)
        del docs
        process, base = start_server(data_dir, workers=1, log=Path(tmp) / "server.log")
        rows, shard_rows = {}, {}
        try:
            with vecdial.connect(base) as db, httpx.Client(base_url=base, timeout=30) as raw:
                if not args.no_client:
                    remote = db.open(COLLECTION)
                    rows = {
                        budget: measure(embedded, remote, raw, queries, budget, args.k, args.requests, args.max_seconds)
                        for budget in args.budgets
                    }
                if args.shards:
                    shard_rows = {
                        budget: measure_shards(embedded, sharded, raw, queries, budget, args.k, args.requests, args.max_seconds)
                        for budget in args.budgets
                    }
        finally:
            stop_server(process)
    what = f"{name}: {size:,} vectors, k={args.k}, one query at a time, loopback, 1 worker, {os.cpu_count()} CPUs"
    if rows:
        print_table(console, f"ms per query, {what}", rows)
    if shard_rows:
        print_shard_table(console, f"ms per query, whole vs {args.shards} shards, {what}", shard_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
