"""What HTTP adds to one search: in-process vs `vecdial serve` on loopback, one query at a time.

    python -m bench.http_bench                      # the WordNet set (~118k vectors), or demo if not cached
    python -m bench.http_bench --dataset demo       # the shipped corpus (2,032 vectors)

Builds the set as a collection in a temp dir, starts `vecdial serve` (one worker)
on 127.0.0.1 at a free port, and for each budget times, interleaved query by
query so that a busy machine slows every column alike:

* in-process: `vecdial.Collection.search(q, k, budget)` on a handle in this process
  (the same call the server makes);
* HTTP JSON: POST /search with `"vector": [384 floats]`;
* HTTP base64: POST /search with `"vector_b64"`, little-endian float32.

Both HTTP columns use one keep-alive httpx client sending requests built ahead
(`client.build_request`, then `client.send`: a client's own JSON encoding and
request building are not the server's cost) and reading each response in full.
Overhead = HTTP p50 - in-process p50; `explain ms` compares the search alone
(explain.total_ms) here and in the server; below the table, the same client's
round trip to GET /healthz shows how much is transport and client alone.
Bounded: `--requests` per column per budget and `--max-seconds` per budget; the
server is stopped on the way out.
"""

from __future__ import annotations

import argparse
import base64
import json
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
from bench.server import start_server, stop_server

BUDGETS = ["binary:rescore=20", "exact"]
COLLECTION = "bench"
TARGET_MS = 1.0


def load_set(name: str, console: Console) -> tuple[np.ndarray, np.ndarray, str]:
    """(docs (n, dim), queries (nq, dim)) float32 and the set's name; wordnet falls back to demo
    when its cache is not complete (building it takes many minutes: `python -m bench.datasets.wordnet`)."""
    from bench.datasets.sets import load_vectors

    if name == "wordnet":
        from bench.datasets.wordnet import set_dir

        if not (set_dir() / "meta.json").is_file():
            console.print(f"[yellow]the WordNet set is not cached in {set_dir()} yet: using --dataset demo[/]")
            name = "demo"
    docs, queries = load_vectors(name)
    return docs, queries, name


def percentile_ms(seconds: list[float], q: float = 50) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000, q)) if seconds else float("nan")


def requests_for(client: httpx.Client, queries: np.ndarray, budget: str, k: int) -> tuple[list[httpx.Request], list[httpx.Request]]:
    """Per query, the search request with JSON floats and the one with base64."""
    path, headers = f"/v1/collections/{COLLECTION}/search", {"content-type": "application/json"}
    as_json, as_b64 = [], []
    for q in queries:
        body = json.dumps({"vector": q.tolist(), "k": k, "budget": budget}).encode()
        as_json.append(client.build_request("POST", path, content=body, headers=headers))
        packed = base64.b64encode(np.ascontiguousarray(q, dtype="<f4").tobytes()).decode()
        body = json.dumps({"vector_b64": packed, "k": k, "budget": budget}).encode()
        as_b64.append(client.build_request("POST", path, content=body, headers=headers))
    return as_json, as_b64


def round_trip_ms(client: httpx.Client, count: int = 300) -> float:
    """p50 of GET /healthz: the transport and client cost of one request, nearly no server work."""
    request = client.build_request("GET", "/healthz")
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        client.send(request).raise_for_status()
        times.append(time.perf_counter() - t0)
    return percentile_ms(times)


def measure(
    collection: vecdial.Collection, client: httpx.Client, queries: np.ndarray, budget: str, k: int, requests: int, max_seconds: float
) -> dict:
    """Interleaved timings of the three ways of asking, and how often HTTP's top hit differs."""
    as_json, as_b64 = requests_for(client, queries, budget, k)
    times: dict[str, list[float]] = {"in-process": [], "json": [], "base64": []}
    searched: dict[str, list[float]] = {"in-process": [], "server": []}  # explain.total_ms: the search alone
    errors: dict[str, int] = {"json": 0, "base64": 0}
    mismatches = 0
    for warm in range(min(20, len(queries))):  # page the index in, warm both sides' caches
        collection.search(queries[warm], k=k, budget=budget)
        client.send(as_json[warm])
        client.send(as_b64[warm])
    started = time.monotonic()
    for i in range(requests):
        if time.monotonic() - started > max_seconds:
            break
        q = i % len(queries)
        t0 = time.perf_counter()
        local = collection.search(queries[q], k=k, budget=budget)
        times["in-process"].append(time.perf_counter() - t0)
        searched["in-process"].append(local.explain.total_ms / 1000)
        for variant, request in (("json", as_json[q]), ("base64", as_b64[q])):
            t0 = time.perf_counter()
            response = client.send(request)
            elapsed = time.perf_counter() - t0
            if response.status_code != 200:
                errors[variant] += 1
                continue
            times[variant].append(elapsed)
            body = response.json()
            hits = body["hits"]
            searched["server"].append(body["explain"]["total_ms"] / 1000)
            mismatches += bool(hits) and hits[0]["id"] != local.ids[0, 0]
    return {"times": times, "searched": searched, "errors": errors, "mismatches": mismatches}


def print_table(console: Console, title: str, rows: dict[str, dict]) -> bool:
    """The table; True if every budget's p50 overhead is within TARGET_MS for both encodings."""
    table = Table(title=title)
    columns = (
        "budget",
        "queries",
        "in-process",
        "HTTP JSON",
        "HTTP base64",
        "overhead JSON",
        "overhead base64",
        "search alone here/server",
        "errors",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "budget" else "right", no_wrap=True)
    within = True
    for budget, row in rows.items():
        times = row["times"]
        local, as_json, as_b64 = (percentile_ms(times[key]) for key in ("in-process", "json", "base64"))
        over_json, over_b64 = as_json - local, as_b64 - local
        within &= max(over_json, over_b64) <= TARGET_MS
        errors = sum(row["errors"].values())
        table.add_row(
            budget,
            str(len(times["in-process"])),
            f"{local:.3f}",
            f"{as_json:.3f}",
            f"{as_b64:.3f}",
            f"{over_json:.3f}",
            f"{over_b64:.3f}",
            "{:.3f} / {:.3f}".format(*(percentile_ms(row["searched"][key]) for key in ("in-process", "server"))),
            f"{errors}" + (f" ({row['mismatches']} top-hit mismatches)" if row["mismatches"] else ""),
        )
    console.print(table)
    return within


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["wordnet", "demo"], default="wordnet")
    parser.add_argument("--requests", type=int, default=500, help="queries per budget (each asked three ways)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time limit per budget")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--budgets", nargs="+", default=BUDGETS)
    args = parser.parse_args(argv)

    console = Console(width=150)
    docs, queries, name = load_set(args.dataset, console)
    with tempfile.TemporaryDirectory(prefix="vecdial-http-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        collection = vecdial.connect(data_dir).create(COLLECTION, docs, ids=np.arange(len(docs)), show_progress=False)
        size = len(docs)
        console.print(f"built {name}: {size:,} x {docs.shape[1]} in {time.perf_counter() - started:.1f} s")
        del docs
        process, base = start_server(data_dir, workers=1, log=Path(tmp) / "server.log")
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                rows = {
                    budget: measure(collection, client, queries, budget, args.k, args.requests, args.max_seconds) for budget in args.budgets
                }
                floor = round_trip_ms(client)
        finally:
            stop_server(process)
    title = f"p50 ms, {name}: {size:,} vectors, k={args.k}, one query at a time, 1 worker, {os.cpu_count()} CPUs"
    within = print_table(console, title, rows)
    console.print(f"GET /healthz round trip with the same client: p50 {floor:.3f} ms (transport and client, nearly no server work)")
    console.print(f"p50 overhead {'within' if within else 'OVER'} the {TARGET_MS:.0f} ms target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
