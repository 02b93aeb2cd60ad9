"""Honest RAM: what each budget (and a few FAISS peers) keeps resident, measured two ways.

    python -m bench.ram_bench --dataset demo --grow 117000       # no WordNet cache: the demo set grown
    python -m bench.ram_bench --dataset wordnet-1m               # the 1M set (builds take a while)

Every setting runs in fresh processes, one query at a time on one thread, twice:

1. **resident**: the collection's pages are dropped, the process opens the index, runs
   `--warm` queries, then `--queries` queries (touching what they touch), then the same
   queries again, timed: p50/p99 with everything it needs resident. Reported: its heap
   (anonymous memory) and the pages of memory-mapped files it touched, per vector.
2. **limited**: a memory cgroup (v1, /sys/fs/cgroup/memory; root) is made with
   `memory.limit_in_bytes` = the process's size after warm-up in run 1 (anonymous memory)
   + the index structures the budget keeps resident (its scanned files: ids, norms, and
   for a dense scan the blocks it reads) + 64 MB; the collection's pages are dropped
   (posix_fadvise DONTNEED on every file of the version), the process is put in the
   cgroup before it allocates, and runs the same warm-up and timed loop: p50/p99 when
   the float vectors rescoring reads do not fit and come from disk.

A budget "keeps its speed" when its limited p50 is within 3x its resident p50 (the
cold-float target). FAISS peers hold their whole index on the heap: their limited
run has nothing to evict, and their bytes per vector are their heap.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGETS = (
    "binary:rescore=10",
    "binary:rescore=20",
    "binary:rescore=20,probe=0.1",
    "rabitq:rescore=5",
    "dense:dim=64",
    "funnel:binary*40>128*5>full",
)
PEERS = {"HNSW32-SQ8 efSearch=64": "hnsw-sq8", "IVF-RaBitQ-FastScan nprobe=32 + refine x4": "ivf-rabitq-fs-refine"}
K = 10
SLACK = 64 << 20
CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
FLOAT_FILES = ("dense_blocks.npy", "dense_rows.npy")
WARM, WARM_ROWS = "warm-up", 4096
BLOCKS_ONLY = "blocks-only"


# --- in the measured process ---------------------------------------------------------------


def _memory() -> dict[str, int]:
    """Resident bytes of this process: anonymous (heap) and file-backed (mapped pages)."""
    fields = {}
    with open("/proc/self/smaps_rollup") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                fields[name] = int(rest.split()[0]) * 1024
    return {"anon": fields["Anonymous"], "file": fields["Rss"] - fields["Anonymous"]}


def _read_bytes() -> int:
    """Bytes this process has caused to be read from storage (/proc/self/io), page faults included."""
    with open("/proc/self/io") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("read_bytes"))


def child(spec: dict) -> None:
    """One measured process: waits for 'go' (it is put in its cgroup first), then opens the
    index, warms up, runs the loop; prints one JSON line."""
    sys.stdin.readline()
    import faiss
    import numpy as np
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(1)
    threadpool_limits(1)
    queries = np.load(spec["queries"])
    warm, timed = queries[: spec["warm"]], queries[spec["warm"] : spec["warm"] + spec["count"]]
    import ctypes

    if spec["kind"] == "vecdial":
        import vecdial

        # A small collection searched first: imports, compiled kernels and work buffers are
        # not the index's. It stays open, so freeing it cannot offset the growth measured.
        warm_col = vecdial.connect(spec["folder"]).open(WARM)
        for q in warm:
            warm_col.search(q, k=K, budget=spec["budget"])
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before = _memory()
    if spec["kind"] == "vecdial":
        col = vecdial.connect(spec["folder"]).open(spec["name"])

        def search(q):
            return col.search(q, k=K, budget=spec["budget"]).ids[0]
    else:
        index = faiss.read_index(spec["index"])
        faiss.ParameterSpace().set_index_parameters(index, spec["params"])

        def search(q):
            return index.search(q[None], K)[1][0]

    for q in warm:
        search(q)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    after_warm = _memory()
    found = [search(q) for q in timed]  # the first pass touches what the loop needs
    touched = _memory()
    read_before = _read_bytes()
    if spec["repeat"]:  # resident: time the second pass
        latencies = []
        for q in timed:
            started = time.perf_counter()
            search(q)
            latencies.append(time.perf_counter() - started)
    else:  # limited: the first pass is the one that counts
        latencies = []
        for q in queries[spec["warm"] + spec["count"] : spec["warm"] + 2 * spec["count"]]:
            started = time.perf_counter()
            search(q)
            latencies.append(time.perf_counter() - started)
    print(
        json.dumps(
            {
                "read_per_query": (_read_bytes() - read_before) / len(latencies),
                "before": before,
                "after_warm": after_warm,
                "touched": touched,
                "p50_ms": float(np.percentile(latencies, 50)) * 1e3,
                "p99_ms": float(np.percentile(latencies, 99)) * 1e3,
                "ids": np.asarray(found).tolist(),
            }
        )
    )


# --- the driver ------------------------------------------------------------------------------


def drop_pages(directory: Path) -> None:
    """Evict every file of a version (or any directory) from the page cache."""
    for path in directory.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def run_child(spec: dict, limit: int | None, timeout: float = 1800) -> dict:
    """Start a measured process (in a fresh memory cgroup of `limit` bytes if given); its report,
    or {"error": why} (one that runs past `timeout` s is stopped, with what it had read)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.ram_bench", "--child", json.dumps(spec)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    group = None
    try:
        if limit is not None:
            group = CGROUP_ROOT / f"vecdial-ram-{process.pid}"
            group.mkdir()
            (group / "memory.limit_in_bytes").write_text(str(limit))
            (group / "cgroup.procs").write_text(str(process.pid))
        process.stdin.write("go\n")
        process.stdin.flush()
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with open(f"/proc/{process.pid}/io") as handle:
                read = next(int(line.split()[1]) for line in handle if line.startswith("read_bytes"))
            return {"error": f"unfinished after {timeout:.0f} s ({read / 2**30:,.1f} GiB read)"}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if group is not None:
            failcnt = int((group / "memory.failcnt").read_text())
            group.rmdir()
    if process.returncode != 0:
        return {
            "error": f"exit {process.returncode}" + (" (killed: over its limit?)" if group is not None and process.returncode < 0 else "")
        }
    report = json.loads(out.strip().splitlines()[-1])
    if group is not None:
        report["failcnt"] = failcnt
    return report


def resident_structures(version, budget: str) -> int:
    """Bytes of memory-mapped files a budget's scan reads in full every query (kept resident):
    ids and prefix norms always, and for a dense first stage the blocks it scans."""
    from vecdial import parse_budget
    from vecdial._internal import compile_plan

    total = sum((version.path / name).stat().st_size for name in ("ids.npy", "dense_prefix_sq.npy"))
    first = compile_plan(parse_budget(budget), version, K)[0]
    if first.mode in ("dense", "exact"):
        dense = version.dense
        total += -(-first.size // dense.block) * dense.size * dense.block * dense.blocks.dtype.itemsize
    return total


def blocks_only_copy(folder: Path, name: str, copy: str) -> None:
    """Collection `copy`: `name`'s version as written before the row-major copy (hard links, the
    manifest rewritten without it), so the same budget rescores from the column blocks."""
    from vecdial._internal import MANIFEST_FILE, ROWS_FILE, manifest_digest

    shutil.copytree(folder / name, folder / copy, copy_function=os.link)
    version_dir = next(p for p in (folder / copy / "versions").iterdir() if (p / MANIFEST_FILE).is_file())
    (version_dir / ROWS_FILE).unlink()
    (version_dir / MANIFEST_FILE).unlink()  # a hard link: write a new file, not through it
    raw = json.loads((folder / name / "versions" / version_dir.name / MANIFEST_FILE).read_text())
    del raw["files"][ROWS_FILE]
    raw["codecs"]["dense"].pop("rows", None)
    raw["checksum"] = manifest_digest(raw)
    (version_dir / MANIFEST_FILE).write_text(json.dumps(raw))


def build_peer(kind: str, docs, path: Path) -> str:
    """Write a peer index over docs to path; its search parameters as a ParameterSpace string."""
    import faiss

    faiss.omp_set_num_threads(2)
    dim = docs.shape[1]
    if kind == "hnsw-sq8":
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT)
        index.train(docs)
        index.add(docs)
        params = "efSearch=64"
    else:
        lists = max(16, int(4 * len(docs) ** 0.5))
        index = faiss.IndexRefineFlat(faiss.index_factory(dim, f"IVF{lists},RaBitQfs", faiss.METRIC_INNER_PRODUCT))
        index.train(docs)
        index.add(docs)
        params = "nprobe=32,k_factor_rf=4"
    faiss.write_index(index, str(path))
    faiss.omp_set_num_threads(1)
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", default="demo")
    parser.add_argument("--grow", type=int, default=0, help="grow the set to this many rows by noisy copies (where WordNet is not cached)")
    parser.add_argument("--budgets", nargs="*", default=list(BUDGETS))
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument(
        "--blocks", action="store_true", help="also run the rescoring budgets on a copy without the row-major file (older versions)"
    )
    parser.add_argument(
        "--limited-timeout", type=float, default=300, help="seconds a limited run may take before it is stopped and reported unfinished"
    )
    parser.add_argument("--warm", type=int, default=20, help="queries before the process's size is taken")
    parser.add_argument("--queries", type=int, default=100, help="queries timed per run")
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    import faiss
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from bench.datasets.sets import load_vectors
    from bench.front_door import create_collection
    from bench.overhead_bench import grow
    from vecdial._internal import live_of

    if not (CGROUP_ROOT / "cgroup.procs").exists() or os.geteuid() != 0:
        sys.exit(f"needs the cgroup v1 memory controller at {CGROUP_ROOT} and root")
    docs, queries = load_vectors(args.dataset)
    docs = grow(docs, args.grow)
    n = len(docs)
    queries = queries[: args.warm + 2 * args.queries]
    truth = faiss.knn(queries, docs, K, metric=faiss.METRIC_INNER_PRODUCT)[1]
    timed_truth = truth[args.warm : args.warm + args.queries]
    rows = []
    with tempfile.TemporaryDirectory(prefix="vecdial-ram-", dir=os.environ.get("VECDIAL_BENCH_DIR")) as folder:
        folder = Path(folder)
        np.save(folder / "queries.npy", queries)
        started = time.perf_counter()
        col = create_collection(folder, "ram", docs, np.arange(n, dtype=np.int64))
        build_s = time.perf_counter() - started
        create_collection(folder, WARM, docs[:WARM_ROWS], np.arange(min(n, WARM_ROWS), dtype=np.int64))
        version = live_of(col).snapshot().version
        floats = sum((version.path / name).stat().st_size for name in FLOAT_FILES if (version.path / name).exists())
        settings = [("vecdial", budget, None) for budget in args.budgets]
        if args.blocks:  # the same budgets rescoring from the column blocks, as versions before the row copy
            blocks_only_copy(folder, "ram", BLOCKS_ONLY)
            settings += [
                ("vecdial", f"{budget} {BLOCKS_ONLY}", None)
                for budget in args.budgets
                if budget.split(":")[0] in ("binary", "rabitq", "funnel")
            ]
        if not args.no_peers:
            for label, kind in PEERS.items():
                path = folder / f"{kind}.faiss"
                settings.append(("peer", label, (str(path), build_peer(kind, docs, path))))
        del col
        for kind, label, peer in settings:
            budget, _, copy = label.partition(" ")
            spec = {
                "kind": kind,
                "queries": str(folder / "queries.npy"),
                "warm": args.warm,
                "count": args.queries,
                "folder": str(folder),
                "name": copy or "ram",
                "budget": budget,
            }
            if peer is not None:
                spec.update(index=peer[0], params=peer[1])
            drop_pages(version.path)
            resident = run_child({**spec, "repeat": True}, None)
            if "error" in resident:
                rows.append((label, resident["error"]))
                continue
            structures = resident_structures(version, budget) if kind == "vecdial" else 0
            limit = resident["after_warm"]["anon"] + structures + SLACK
            drop_pages(version.path)
            limited = run_child({**spec, "repeat": False}, limit, args.limited_timeout)
            rows.append((label, resident, limited, limit, structures))
            print(
                f"{label}: resident p50 {resident['p50_ms']:.3f} ms, limited p50 {limited.get('p50_ms', float('nan')):.3f} ms",
                file=sys.stderr,
            )

    table = Table(
        title=f"{args.dataset}{f' grown to {n:,} rows by noisy copies' if args.grow else ''}: {n:,} x {docs.shape[1]}, one query at a time, k={K}, 1 thread; resident vs in a memory cgroup"
    )
    for column in (
        "setting",
        "R@10",
        "heap B/v",
        "mapped touched B/v",
        "cgroup limit MB",
        "kept resident B/v",
        "p50 resident ms",
        "p99 resident ms",
        "p50 limited ms",
        "p99 limited ms",
        "p50 limited / resident",
        "keeps speed (<= 3x)",
        "read/query limited KB",
    ):
        table.add_column(column, justify="left" if column == "setting" else "right")
    for row in rows:
        if len(row) == 2:
            table.add_row(row[0], row[1], *["-"] * 11)
            continue
        label, resident, limited, limit, structures = row
        heap = resident["after_warm"]["anon"] - resident["before"]["anon"]
        mapped = resident["touched"]["file"] - resident["before"]["file"]
        recall = float(np.mean([len(np.intersect1d(f, t)) / K for f, t in zip(resident["ids"], timed_truth)]))
        cold = limited.get("p50_ms")
        ratio = cold / resident["p50_ms"] if cold else None
        table.add_row(
            label,
            f"{recall:.3f}",
            f"{heap / n:,.0f}",
            f"{mapped / n:,.0f}",
            f"{limit / 2**20:,.0f}",
            f"{(heap + structures) / n:,.0f}",
            f"{resident['p50_ms']:.3f}",
            f"{resident['p99_ms']:.3f}",
            f"{cold:.3f}" if cold else limited.get("error", "-"),
            f"{limited['p99_ms']:.3f}" if cold else "-",
            f"{ratio:.1f}x" if ratio else "-",
            ("yes" if ratio <= 3 else "[bold red]NO[/]") if ratio else "-",
            f"{limited['read_per_query'] / 1024:,.0f}" if cold else "-",
        )
    table.caption = (
        f"Built in {build_s:.0f} s; float stores (blocks + row-major copy) {floats / n:,.0f} B/v on disk. heap: anonymous memory grown from before "
        f"opening to after {args.warm} warm-up queries; mapped touched: file pages resident after {args.queries} more; limit: heap after warm-up + "
        f"the files the budget scans in full (kept resident) + 64 MB, the collection's pages dropped first; kept resident: heap + those files. "
        f"Limited p50 is over {args.queries} fresh queries in the cgroup (wall time: page faults and reads count); read/query: bytes it read "
        f"from storage per query there (/proc/self/io). `{BLOCKS_ONLY}`: the same version without the row-major copy (as written before it)."
    )
    Console(width=240).print(table)


if __name__ == "__main__":
    main()
