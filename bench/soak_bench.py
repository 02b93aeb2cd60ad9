"""A bounded soak: steady search and write load on a real `vecdial serve`, with reindexes.

    python -m bench.soak_bench                     # 2 minutes, 4 searchers, 1 writer
    python -m bench.soak_bench --minutes 10 --searchers 8 --reindex-every 20
    python -m bench.soak_bench --minutes 30 --overwrite     # the collection keeps its size: RSS must level off

Builds the demo collection from the shipped data (`vecdial build --demo`) in a temp
dir, starts `vecdial serve` on 127.0.0.1 (one worker), then for `--minutes` (at most
60) runs `--searchers` threads searching with the demo query vectors (rotating
budgets, half of them as text queries encoded by the bundled model) and
`--writers` threads upserting and deleting their own ids (with `--overwrite`:
upserting only ids the collection already has, so its size stays put), while the
main thread starts a reindex every `--reindex-every` seconds. Prints, once a
minute, the server's RSS and the collection's size (so growth per item can be
told from growth per request), then the server's RSS at start (after a warm-up
that loads the text model) and end, requests and errors (goal: 0) and p50/p99
latency per kind of request, and exits non-zero if any request failed.
Everything stays on loopback and nothing is left running.
"""

from __future__ import annotations

import argparse
import base64
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from bench.server import start_server, stop_server

BUDGETS = ["exact", "dense:dim=64", "binary:rescore=10", "funnel:binary*20>128*4>full"]
MAX_MINUTES = 60


class Tally:
    """Latencies and failures per kind of request, shared by the load threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, Counter] = defaultdict(Counter)
        self.messages: dict[str, str] = {}  # the first message of each kind of error, to say why

    def record(self, kind: str, started: float, response: httpx.Response | None, error: str | None = None) -> None:
        elapsed = time.perf_counter() - started
        with self.lock:
            if response is not None and response.status_code < 400:
                self.seconds[kind].append(elapsed)
            else:
                body = response.json() if response is not None else {}
                what = error or f"{response.status_code} {body.get('error', '')}"  # type: ignore[union-attr]
                self.errors[kind][what] += 1
                self.messages.setdefault(f"{kind}: {what}", body.get("message", ""))


def rss_mib(pid: int) -> float:
    """Resident memory of the server process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_pids(root: int) -> list[int]:
    """The `vecdial serve` process and its children (uvicorn workers)."""
    found = [root]
    for pid in list(found):
        children = Path(f"/proc/{pid}/task/{pid}/children")
        if children.exists():
            found += [int(child) for child in children.read_text().split()]
    return found


def searcher(base: str, queries: np.ndarray, texts: list[str], stop: threading.Event, tally: Tally, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with httpx.Client(base_url=base, timeout=60) as client:
        while not stop.is_set():
            i = int(rng.integers(len(queries)))
            budget = BUDGETS[int(rng.integers(len(BUDGETS)))]
            text = rng.random() < 0.5
            body = {"text": texts[i]} if text else {"vector_b64": base64.b64encode(queries[i].tobytes()).decode()}
            kind = "search text" if text else "search vector"
            started = time.perf_counter()
            try:
                tally.record(kind, started, client.post("/v1/collections/demo/search", json={**body, "k": 10, "budget": budget}))
            except httpx.HTTPError as exc:
                tally.record(kind, started, None, type(exc).__name__)


def existing_ids(base: str) -> list:
    """Every live id of the demo collection, a page at a time."""
    ids: list = []
    after = None
    with httpx.Client(base_url=base, timeout=60) as client:
        while True:
            page = client.get(
                "/v1/collections/demo/ids", params={"limit": 10_000, **({"after": after} if after is not None else {})}
            ).json()
            ids += page["ids"]
            after = page.get("next")
            if after is None:
                return ids


def writer(base: str, vectors: np.ndarray, stop: threading.Event, tally: Tally, seed: int, overwrite: list | None = None) -> None:
    """Upserts 4 items (and sometimes deletes) every ~20 ms; with `overwrite`, only upserts of those ids."""
    rng = np.random.default_rng(seed)
    written: list[str] = []
    with httpx.Client(base_url=base, timeout=60) as client:
        n = 0
        while not stop.is_set():
            started = time.perf_counter()
            try:
                if overwrite:
                    picks = rng.choice(len(overwrite), size=4, replace=False)
                    noisy = vectors[picks % len(vectors)] + rng.normal(0, 0.01, (4, vectors.shape[1])).astype(np.float32)
                    items = [{"id": overwrite[int(p)], "vector": v.tolist()} for p, v in zip(picks, noisy)]
                    tally.record("upsert", started, client.post("/v1/collections/demo/vectors/upsert", json={"items": items}))
                elif written and rng.random() < 0.3:
                    gone = written[: int(rng.integers(1, 4))]
                    del written[: len(gone)]
                    tally.record("delete", started, client.post("/v1/collections/demo/vectors/delete", json={"ids": gone}))
                    continue
                else:
                    rows = rng.integers(len(vectors), size=4)
                    noisy = vectors[rows] + rng.normal(0, 0.01, (4, vectors.shape[1])).astype(np.float32)
                    ids = [f"soak-{seed}-{n + j}" for j in range(4)]
                    n += 4
                    items = [{"id": id_, "vector": v.tolist()} for id_, v in zip(ids, noisy)]
                    response = client.post("/v1/collections/demo/vectors/upsert", json={"items": items})
                    tally.record("upsert", started, response)
                    if response.status_code == 200:
                        written += ids
            except httpx.HTTPError as exc:
                tally.record("write", started, None, type(exc).__name__)
            time.sleep(0.02)  # steady, not flat out: a write stream beside the searches


def monitor(base: str, pid: int, stop: threading.Event, tally: Tally, console: Console, rows: list[tuple]) -> None:
    """Once a minute: the server's RSS, the collection's size and the requests so far (printed as it goes)."""
    started = time.monotonic()
    with httpx.Client(base_url=base, timeout=60) as client:
        minute = 0
        while not stop.wait(max(0.0, started + 60 * (minute + 1) - time.monotonic())):
            minute += 1
            try:
                info = client.get("/v1/collections/demo").json()
                size, version = info["size"], info["version"]
            except (httpx.HTTPError, KeyError, ValueError):
                size, version = -1, "?"
            with tally.lock:
                done = {kind: len(seconds) for kind, seconds in tally.seconds.items()}
            row = (
                minute,
                sum(rss_mib(p) for p in server_pids(pid)),
                size,
                sum(n for k, n in done.items() if k.startswith("search")),
                done.get("upsert", 0),
                version,
            )
            rows.append(row)
            console.print(
                "minute {:>3}: RSS {:7.1f} MiB  size {:>6}  searches {:>7}  upserts {:>6}  version {}".format(*row),
                highlight=False,
                soft_wrap=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help=f"soak length (at most {MAX_MINUTES})")
    parser.add_argument("--searchers", type=int, default=4)
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--reindex-every", type=float, default=30.0, help="seconds between reindex starts")
    parser.add_argument(
        "--overwrite", action="store_true", help="upsert only ids the collection has (no new ids, no deletes): its size stays put"
    )
    args = parser.parse_args()
    if not 0 < args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be in (0, {MAX_MINUTES}]")
    console = Console()
    from vecdial._internal import demo_embeddings, load_demo_corpus

    docs, queries = demo_embeddings(show_progress=False)
    texts = list(load_demo_corpus().query_texts)  # aligned with `queries`
    queries = np.asarray(queries, dtype="<f4")
    with tempfile.TemporaryDirectory(prefix="vecdial-soak-") as tmp:
        data_dir = Path(tmp) / "data"
        subprocess.run([sys.executable, "-m", "vecdial.service.cli", "--data-dir", str(data_dir), "build", "--demo", "--quiet"], check=True)
        process, base = start_server(data_dir, workers=1, log=Path(tmp) / "server.log")
        tally, stop = Tally(), threading.Event()
        try:
            with httpx.Client(base_url=base, timeout=60) as warm:  # load the text model and map every budget's files first
                for budget in BUDGETS:
                    for _ in range(10):  # a loaded machine may time the first (model-loading) request out: 503/504
                        response = warm.post("/v1/collections/demo/search", json={"text": texts[0], "budget": budget})
                        if response.status_code not in (503, 504):
                            break
                    response.raise_for_status()
            rss_start = sum(rss_mib(pid) for pid in server_pids(process.pid))
            console.print(f"minute   0: RSS {rss_start:7.1f} MiB (after warm-up)", highlight=False, soft_wrap=True)
            overwrite = existing_ids(base) if args.overwrite else None
            minutes: list[tuple] = []
            threads = [threading.Thread(target=searcher, args=(base, queries, texts, stop, tally, i)) for i in range(args.searchers)]
            threads += [
                threading.Thread(target=writer, args=(base, np.asarray(docs), stop, tally, 100 + i, overwrite)) for i in range(args.writers)
            ]
            threads.append(threading.Thread(target=monitor, args=(base, process.pid, stop, tally, console, minutes)))
            for thread in threads:
                thread.start()
            reindexes, end = Counter(), time.monotonic() + args.minutes * 60
            with httpx.Client(base_url=base, timeout=60) as ops:
                while time.monotonic() < end:
                    started = time.perf_counter()
                    response = ops.post("/v1/collections/demo/reindex", json={"seed": int(reindexes["started"]) + 1})
                    reindexes["started" if response.status_code == 202 else f"refused {response.status_code}"] += 1
                    tally.record("reindex start", started, response if response.status_code != 409 else httpx.Response(202))
                    time.sleep(min(args.reindex_every, max(end - time.monotonic(), 0)))
                stop.set()
                for thread in threads:
                    thread.join()
                jobs = ops.get("/v1/jobs", params={"limit": 1000}).json()
            rss_end = sum(rss_mib(pid) for pid in server_pids(process.pid))
        finally:
            stop.set()  # an interrupted soak stops its load threads too
            stop_server(process)
    per_minute = Table(title="server RSS per minute")
    for column in ("minute", "RSS MiB", "size", "searches", "upserts", "version"):
        per_minute.add_column(column, justify="right")
    per_minute.add_row("0", f"{rss_start:.1f}", "", "", "", "")
    for minute, rss, size, searches, upserts, version in minutes:
        per_minute.add_row(str(minute), f"{rss:.1f}", str(size), str(searches), str(upserts), version)
    console.print(per_minute)
    writes = "overwrite-only upserts" if args.overwrite else "writers"
    table = Table(
        title=f"soak: {args.minutes:g} min, {args.searchers} searchers, {args.writers} {writes}, reindex every {args.reindex_every:g} s"
    )
    for column in ("request", "count", "errors", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "request" else "right")
    failed = 0
    for kind in sorted(set(tally.seconds) | set(tally.errors)):
        ms = np.asarray(tally.seconds[kind] or [0.0]) * 1000
        errors = sum(tally.errors[kind].values())
        failed += errors
        table.add_row(
            kind, str(len(tally.seconds[kind]) + errors), str(errors), f"{np.percentile(ms, 50):.1f}", f"{np.percentile(ms, 99):.1f}"
        )
    console.print(table)
    states = Counter(job["state"] for job in jobs)
    console.print(f"server RSS: {rss_start:.0f} MiB at start (after warm-up), {rss_end:.0f} MiB at end ({rss_end - rss_start:+.0f} MiB)")
    console.print(f"reindexes: {dict(reindexes)}; jobs: {dict(states)}")
    failures = Counter(job["message"][:300] for job in jobs if job["state"] == "failed")
    for message, count in failures.items():
        console.print(f"failed reindex x{count}: {message}", highlight=False, soft_wrap=True)
    for kind, errors in tally.errors.items():
        if errors:
            console.print(f"errors in {kind}: {dict(errors)}")
    for what, message in tally.messages.items():
        console.print(f"  first {what}: {message}", highlight=False, soft_wrap=True)
    return 1 if failed or states.get("failed") else 0


if __name__ == "__main__":
    raise SystemExit(main())
