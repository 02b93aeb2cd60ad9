"""What the remote client adds to one search: `vecdial.connect(url)` against `vecdial.connect(dir)`.

    python -m bench.remote_bench                    # the WordNet set (~118k vectors), or demo if not cached
    python -m bench.remote_bench --dataset demo     # the shipped corpus (2,032 vectors)

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
from bench.load_bench import start_server, stop_server
from vecdial._internal import b64

BUDGETS = ["binary:rescore=10"]
COLLECTION = "bench"
COLUMNS = ("embedded", "raw HTTP", "remote client")


def pct(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000, q))


def measure(embedded, remote, raw: httpx.Client, queries: np.ndarray, budget: str, k: int, requests: int, max_seconds: float) -> dict:
    """Per column, the seconds of each query, interleaved; and how many remote answers differed."""
    times: dict[str, list[float]] = {column: [] for column in COLUMNS}
    prepared = [raw.build_request("POST", f"/v1/collections/{COLLECTION}/search", json={"vector_b64": b64(q), "k": k, "budget": budget}) for q in queries[:requests]]
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
    args = parser.parse_args(argv)

    console = Console(width=170)
    docs, queries, name = load_set(args.dataset, console)
    with tempfile.TemporaryDirectory(prefix="vecdial-remote-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        embedded = vecdial.connect(data_dir).create(COLLECTION, docs, ids=np.arange(len(docs)), show_progress=False)
        size = len(docs)
        del docs
        process, base = start_server(data_dir, workers=1, log=Path(tmp) / "server.log")
        try:
            with vecdial.connect(base) as db, httpx.Client(base_url=base, timeout=30) as raw:
                remote = db.open(COLLECTION)
                rows = {budget: measure(embedded, remote, raw, queries, budget, args.k, args.requests, args.max_seconds) for budget in args.budgets}
        finally:
            stop_server(process)
    print_table(console, f"ms per query, {name}: {size:,} vectors, k={args.k}, one query at a time, loopback, 1 worker, {os.cpu_count()} CPUs", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
