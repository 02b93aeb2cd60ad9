"""HTTP load: concurrent clients against a real `vecdial serve` on loopback.

    python -m bench.load_bench                          # demo corpus, 64 clients, 2 workers
    python -m bench.load_bench --size 50000 --clients 32 --requests 2000

Builds a collection in a temp dir, starts `vecdial serve` on 127.0.0.1, then for
each budget mode runs `--clients` concurrent keep-alive clients until
`--requests` requests are answered or `--duration` seconds pass, and prints
requests, errors, QPS, p50 and p99 latency (client-side, end to end). A last run
mixes every mode while a reindex job (new compression settings) runs and swaps
in mid-run, and reports the same figures plus when the swap happened and which
versions answered. Everything stays on loopback; nothing is left running.

The load clients speak minimal HTTP/1.1 over asyncio streams with pre-encoded
requests: client and server share the machine's cores, and a full HTTP client
(httpx) spent more CPU per request than the server did, so it measured itself.
httpx is used for everything else (readiness, the reindex job).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from bench.server import start_server, stop_server

MODES = ["exact", "dense:dim=64", "binary:rescore=10", "binary:rescore=0", "funnel:binary*20>128*4>full"]
COLLECTION = "bench"


@dataclass
class RunStats:
    label: str
    clients: int
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    versions: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    def row(self) -> list[str]:
        lat = np.asarray(self.latencies) * 1000 if self.latencies else np.zeros(1)
        return [
            self.label,
            str(self.clients),
            str(self.requests),
            str(sum(self.errors.values())),
            f"{len(self.latencies) / self.seconds:.0f}",
            f"{np.percentile(lat, 50):.1f}",
            f"{np.percentile(lat, 99):.1f}",
        ]


def build_collection(data_dir: Path, size: int | None) -> np.ndarray:
    """The demo corpus (optionally grown to `size` with jittered copies) as a collection;
    returns the demo query vectors to search with."""
    from vecdial import BuildSettings
    from vecdial._internal import CollectionDir as Collection
    from vecdial._internal import Dataset, demo_embeddings, load_demo_corpus, normalize_rows
    from vecdial._internal import build_collection as build_version_of

    corpus = load_demo_corpus()
    docs, queries = demo_embeddings(show_progress=False)
    ids = np.asarray(corpus.doc_ids)
    if size and size > len(docs):
        rng = np.random.default_rng(0)
        picks = rng.integers(0, len(docs), size - len(docs))
        extra = normalize_rows(docs[picks] + rng.normal(0, 0.02, (len(picks), docs.shape[1])).astype(np.float32))
        docs = np.concatenate([docs, extra])
        ids = np.concatenate([ids, [f"copy-{i}" for i in range(len(picks))]])
    build_version_of(
        Collection(data_dir, COLLECTION), Dataset(ids, np.asarray(docs, dtype=np.float32)), BuildSettings(), show_progress=False
    )
    return np.asarray(queries, dtype=np.float32)


class KeepAliveClient:
    """One HTTP/1.1 connection sending pre-encoded POSTs, one at a time."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            return status, await self.reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await self.close()
            raise

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def encode_requests(base: str, queries: np.ndarray, mode: str, k: int) -> list[bytes]:
    host = base.removeprefix("http://")
    out = []
    for q in queries:
        body = json.dumps({"vector": q.tolist(), "k": k, "budget": mode}).encode()
        head = (
            f"POST /v1/collections/{COLLECTION}/search HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def run_load(
    base: str, queries: np.ndarray, modes: list[str], clients: int, max_requests: int, max_seconds: float, k: int
) -> dict[str, RunStats]:
    """`clients` concurrent clients, each sending one request at a time, cycling through modes."""
    stats = {mode: RunStats(mode, clients) for mode in modes}
    requests = {mode: encode_requests(base, queries, mode, k) for mode in modes}
    host, port = base.removeprefix("http://").split(":")
    issued = 0
    started = time.perf_counter()

    async def client(number: int) -> None:
        nonlocal issued
        connection = KeepAliveClient(host, int(port))
        try:
            while issued < max_requests and time.perf_counter() - started < max_seconds:
                issued += 1
                mode = modes[issued % len(modes)]
                request = requests[mode][(issued * 7 + number) % len(queries)]
                t0 = time.perf_counter()
                try:
                    status, body = await connection.post(request)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                    stats[mode].errors[type(exc).__name__] += 1
                    continue
                if status == 200:
                    stats[mode].latencies.append(time.perf_counter() - t0)
                    stats[mode].versions[json.loads(body)["explain"]["version"]] += 1
                else:
                    stats[mode].errors[str(status)] += 1
        finally:
            await connection.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    for run in stats.values():
        run.seconds = elapsed
    return stats


async def run_with_reindex(
    base: str, queries: np.ndarray, clients: int, max_seconds: float, k: int, settings: dict
) -> tuple[dict[str, RunStats], dict]:
    """Mixed-mode load for max_seconds; a reindex starts after a fifth of it. Returns the stats and the job."""
    started = time.perf_counter()
    load = asyncio.create_task(run_load(base, queries, MODES, clients, 10**9, max_seconds, k))
    await asyncio.sleep(max_seconds / 5)
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        job = (await http.post(f"/v1/collections/{COLLECTION}/reindex", json=settings)).json()
        job_started = time.perf_counter() - started
        while job.get("state") in ("queued", "running"):
            await asyncio.sleep(0.1)
            job = (await http.get(f"/v1/jobs/{job['id']}")).json()
        job["swap_at_s"] = round(time.perf_counter() - started, 2)
        job["started_at_s"] = round(job_started, 2)
    return await load, job


def print_table(console: Console, title: str, runs: list[RunStats]) -> None:
    table = Table(title=title)
    for column in ("mode", "clients", "requests", "errors", "QPS", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "mode" else "right", no_wrap=True)
    for run in runs:
        table.add_row(*run.row())
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--requests", type=int, default=3000, help="requests per mode (upper bound)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run (upper bound; the reindex run lasts this long)")
    parser.add_argument("--size", type=int, help="grow the demo corpus to this many vectors (jittered copies)")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--modes", nargs="+", default=MODES)
    parser.add_argument("--skip-reindex", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 512:
        parser.error("--clients must be 1..512")

    console = Console(width=120)
    with tempfile.TemporaryDirectory(prefix="vecdial-load-") as tmp:
        data_dir = Path(tmp) / "data"
        queries = build_collection(data_dir, args.size)
        process, base = start_server(data_dir, workers=args.workers, log=Path(tmp) / "server.log")
        try:
            size = httpx.get(f"{base}/v1/collections/{COLLECTION}").json()["size"]
            asyncio.run(run_load(base, queries, args.modes, args.clients, 200, 5.0, args.k))  # warm up every worker
            runs = []
            for mode in args.modes:
                runs.extend(asyncio.run(run_load(base, queries, [mode], args.clients, args.requests, args.duration, args.k)).values())
            print_table(console, f"{size} vectors x 384 dims, {args.workers} workers, k={args.k}, {os.cpu_count()} CPUs", runs)
            if not args.skip_reindex:
                stats, job = asyncio.run(run_with_reindex(base, queries, args.clients, args.duration, args.k, {"dtype": "float16"}))
                total = RunStats("all modes", args.clients, seconds=next(iter(stats.values())).seconds)
                for run in stats.values():
                    total.latencies += run.latencies
                    total.errors += run.errors
                title = (
                    f"during reindex float32 -> float16: job {job['state']}, started +{job['started_at_s']}s, "
                    f"swapped by +{job['swap_at_s']}s of {args.duration:.0f}s"
                )
                print_table(console, title, [*stats.values(), total])
                versions = sum((run.versions for run in stats.values()), Counter())
                errors = sum((run.errors for run in stats.values()), Counter())
                console.print(f"answered by version: {dict(versions)}; errors: {dict(errors) or 'none'}")
        finally:
            stop_server(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
