"""vecdial and its peers, measured side by side: one command, one run, one thread.

    python -m bench.peers_bench                                   # WordNet, ~118k real MiniLM vectors
    python -m bench.peers_bench --dataset wordnet-1m --grid small --build-threads 2
    python -m bench.peers_bench --systems flat hnsw-sq8 vecdial --vecdial-budgets exact binary:rescore=10
    python -m bench.peers_bench --dataset demo-117k   # no WordNet cache: the 2,032 real demo vectors
        # grown to 117,000 as wordnet-1m grows WordNet, with the 1,000 real demo queries

Systems (`--systems`, default all), each with its knobs swept:

- flat: faiss.IndexFlatIP, exact; the baseline every ratio is taken over, in the same run.
- hnsw-sq8: faiss.IndexHNSWSQ (M=32, 8-bit scalar codes), efSearch sweep.
- hnsw-rabitq-refine: faiss.IndexHNSWRaBitQ (M=32, 1-bit RaBitQ codes) in IndexRefineFlat;
  efSearch x k_factor.
- ivfpq-refine: faiss.IndexIVFPQ (48 bytes, nlist ~ 4 sqrt(N)) in IndexRefineFlat; nprobe x k_factor.
- ivf-rabitq-refine, ivf-rabitq-fs-refine: faiss.IndexIVFRaBitQ and IndexIVFRaBitQFastScan (if the
  installed faiss has them) in IndexRefineFlat; nprobe x k_factor. The three IVF systems share one
  spherical k-means (50 points per list, 10 iterations); its time is added to each one's build time.
- binary-rescore: sign bits in faiss.IndexBinaryFlat, float32 rows rescoring k x multiplier
  (overhead_bench's BinaryRescore).
- usearch-i8: usearch HNSW (connectivity 32, i8 storage, cosine), expansion_search sweep; skipped
  with a note when usearch is not installed (`pip install 'vecdial[bench]'`).
- st-binary-int8: sentence-transformers' quantize_embeddings recipe: "ubinary" codes in
  IndexBinaryFlat, the k x rescore_multiplier candidates rescored against "int8" codes.
- vecdial: through the front door, built with a graph of `--vecdial-graph` links a row (default
  16; 0: none) for the `rabitq:rescore=R,ef=E` budgets, one row per budget of
  `--vecdial-budgets` (default VECDIAL_BUDGETS); a budget that does not parse or that this
  collection cannot answer (sparse without sparse codes) is skipped with a printed note.

Per setting: build time (on --build-threads threads; search is always one thread),
one-query-at-a-time QPS (1 / median latency, all settings interleaved per query) and
p99 latency over --single queries, batch QPS (best of --rounds) over --queries,
recall@10 against IndexFlatIP on the same unit vectors, and resident RAM per vector
in a fresh process (for vecdial: heap + memory-mapped index pages touched). Then the
fastest setting per system at R@10 0.90 / 0.95 / 0.99, whether any peer is both
faster and smaller (resident bytes, vecdial's mapped pages counted) than vecdial's
fastest there, and a plot of recall vs one-query QPS with the Pareto front (--plot;
the rows go to the same path with .json).

Run time, 2 cores: WordNet with the full grid ~8-10 minutes (builds ~4 min, of which
~35 s is the shared k-means, timings ~3 min, RAM probes ~2 min). wordnet-1m
(bench/datasets/wordnet_1m.py, built on first use, ~20 s) with `--grid small
--build-threads 2` and a shorter system/budget list: ~45-60 minutes, most of it
building the two HNSW graphs (~10 min each on a busy 2-core box) and the 1M-row
flat/exact timings; R@10 real is then the recall over the true neighbours that are
real WordNet rows.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from bench.peers.measure import Pair, measure_ram, recall, time_pairs
from bench.peers.registry import PEERS, available
from bench.peers.report import Row, plot, print_report
from bench.peers.systems import GRIDS, VECDIAL_BUDGETS, K

DATASETS = ("demo", "demo-117k", "wordnet", "wordnet-1m")
WARM_SIZE = 4096


def load(name: str) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(docs, queries, n_real or None): float32 unit rows in RAM."""
    if name == "wordnet-1m":
        from bench.datasets.wordnet_1m import load_wordnet_1m

        docs, queries, n_real = load_wordnet_1m()
        return np.ascontiguousarray(docs, dtype=np.float32), queries, n_real
    if name == "demo-117k":  # no encoding: for machines without the WordNet cache
        from bench.datasets.wordnet_1m import generate
        from vecdial._internal import demo_embeddings

        real, queries = demo_embeddings(show_progress=False)
        docs, _ = generate(np.ascontiguousarray(real, dtype=np.float32), size=117_000)
        return docs, np.ascontiguousarray(queries, dtype=np.float32), len(real)
    from bench.datasets.sets import load_vectors

    docs, queries = load_vectors(name)
    return docs, queries, None


def run_peers(
    docs: np.ndarray,
    queries: np.ndarray,
    systems: list[str] | None = None,
    *,
    budgets: list[str] | None = None,
    grid: str = "full",
    single: int = 300,
    batch: int = 1000,
    rounds: int = 3,
    max_seconds: float = 120.0,
    build_threads: int = 1,
    graph: int = 16,
    ram: bool = True,
    n_real: int | None = None,
    log=print,
) -> tuple[list[Row], list[str]]:
    """Build every system, time every setting, measure recall (and RAM); (rows, notes).

    docs, queries: (n, dim), (nq, dim) float32 unit rows. n_real: rows below it are real (1M set).
    Call inside one-thread limits (main() does): faiss.omp_set_num_threads(1), threadpool_limits(1).
    """
    docs = np.ascontiguousarray(docs, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    systems = list(systems or PEERS)
    notes: list[str] = []
    truth_index = faiss.IndexFlatIP(docs.shape[1])
    truth_index.add(docs)
    truth = truth_index.search(queries[:batch], K)[1]
    del truth_index
    real_mask = None if n_real is None else np.arange(len(docs)) < n_real

    peers, build_s, pairs = {}, {}, []
    for key in systems:
        why = available(key)
        if why:
            notes.append(f"{key}: {why}")
            log(f"{key}: {why}")
            continue
        kwargs = {"grid": grid, "build_threads": build_threads} | ({"budgets": budgets, "graph": graph} if key == "vecdial" else {})
        peer = PEERS[key](**kwargs)
        started = time.perf_counter()
        peer.build(docs)
        build_s[key] = time.perf_counter() - started + peer.build_extra_s
        settings = peer.settings()
        notes += peer.notes
        for note in peer.notes:
            log(note)
        log(f"{peer.name}: built in {build_s[key]:.1f} s, {len(settings)} settings")
        peers[key] = (peer, kwargs)
        pairs += [Pair(key, s.label, s.knobs, peer.searcher(s.knobs)) for s in settings]

    log(
        f"timing {len(pairs)} settings: {min(single, len(queries))} queries one at a time, then {min(batch, len(queries))} as a batch x {rounds}"
    )
    timings = time_pairs(pairs, queries[:single], queries[:batch], rounds, max_seconds)
    rows = []
    for pair, t in zip(pairs, timings):
        peer = peers[pair.system][0]
        rows.append(
            Row(
                pair.system,
                peer.name,
                pair.setting,
                build_s[pair.system],
                t.single_qps,
                t.p99_ms,
                t.timed,
                t.batch_qps,
                recall(t.ids, truth),
                None if real_mask is None else recall(t.ids, truth, real_mask),
            )
        )
        if t.timed < min(single, len(queries)) or t.rounds < rounds:
            notes.append(f"{peer.name} {pair.setting}: --max-seconds stopped it at {t.timed} one-query timings, {t.rounds} batch rounds")
    if ram:
        measure_all_ram(peers, rows, pairs, docs, queries[:batch], log)
    return rows, notes


def measure_all_ram(peers: dict, rows: list[Row], pairs: list[Pair], docs: np.ndarray, queries: np.ndarray, log) -> None:
    """One RAM probe per peer (its most expensive setting; the index is the same for all), per budget for vecdial."""
    with tempfile.TemporaryDirectory(prefix="vecdial-peers-ram-") as folder:
        root = Path(folder)
        np.save(root / "queries.npy", queries)
        np.save(root / "warm.npy", docs[:WARM_SIZE])
        for key, (peer, kwargs) in peers.items():
            saved = root / key
            saved.mkdir()
            peer.save(saved)
            mine = [(i, p) for i, p in enumerate(pairs) if p.system == key]
            probes = mine if key == "vecdial" else mine[-1:]
            for i, pair in probes:
                spec = {"key": key, "kwargs": kwargs, "knobs": pair.knobs, "path": str(saved)}
                found = measure_ram(spec, root, len(docs))
                targets = [i] if key == "vecdial" else [j for j, _ in mine]
                for j in targets:
                    rows[j].ram_heap, rows[j].ram_mapped = found if found else (None, None)
                log(
                    f"RAM {peer.name} {pair.setting}: "
                    + ("probe failed" if found is None else f"{found[0]:,.0f} + {found[1]:,.0f} mapped B/vec")
                )
            for path in saved.iterdir():  # the 1M set's saved indexes are GBs each
                if path.is_file():
                    path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, default="wordnet")
    parser.add_argument("--systems", nargs="+", choices=list(PEERS), help="default: all")
    parser.add_argument("--vecdial-budgets", nargs="+", default=VECDIAL_BUDGETS, metavar="BUDGET", help="vecdial budgets (string form)")
    parser.add_argument("--grid", choices=list(GRIDS), help="knob grid (default: full below 500k vectors, else small)")
    parser.add_argument("--queries", type=int, default=1000, help="queries in the batch and for recall")
    parser.add_argument("--single", type=int, default=300, help="queries timed one at a time")
    parser.add_argument("--rounds", type=int, default=3, help="batch rounds (best counts)")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="cap on each system's timed searches per phase")
    parser.add_argument("--build-threads", type=int, default=1, help="threads for building (search: always 1)")
    parser.add_argument(
        "--vecdial-graph", type=int, default=16, help="links a row of vecdial's graph over its RaBitQ codes (build setting graph; 0: none)"
    )
    parser.add_argument("--no-ram", action="store_true", help="skip the RAM probes (one fresh process per system, per vecdial budget)")
    parser.add_argument("--plot", type=Path, default=Path("bench-peers.png"), help="where the recall vs QPS plot goes")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    with threadpool_limits(1):
        docs, queries, n_real = load(args.dataset)
        grid = args.grid or ("full" if len(docs) < 500_000 else "small")
        started = time.perf_counter()
        rows, notes = run_peers(
            docs,
            queries,
            args.systems,
            budgets=args.vecdial_budgets,
            grid=grid,
            single=args.single,
            batch=args.queries,
            rounds=args.rounds,
            max_seconds=args.max_seconds,
            build_threads=args.build_threads,
            graph=args.vecdial_graph,
            ram=not args.no_ram,
            n_real=n_real,
        )
    n, dim = docs.shape
    title = f"{args.dataset}: {n:,} unit vectors x {dim} dims, k={K}, 1 search thread, faiss {faiss.__version__}, {grid} grid"
    caption = (
        f"1-query QPS: 1 / median latency over {min(args.single, len(queries))} queries, all settings interleaved; p99 of the same. "
        f"Batch: {min(args.queries, len(queries))} queries in one call, best of {args.rounds}. x flat: over IndexFlatIP in this run. "
        f"R@10 vs IndexFlatIP. Build on {args.build_threads} thread(s). RAM: fresh process's resident growth over loading the "
        "index + one batch search, per vector (vecdial: heap + memory-mapped index pages touched)."
        + (f" R@10 real: over true neighbours among the {n_real:,} real rows." if n_real else "")
    )
    print_report(rows, title, caption, notes)
    args.plot.with_suffix(".json").write_text(json.dumps({"title": title, "rows": [asdict(r) for r in rows], "notes": notes}, indent=1))
    where = plot(rows, args.plot, title)
    print(f"plot: {where}" if where else "plot: matplotlib is not installed (pip install 'vecdial[bench]'): no plot")
    print(f"whole run: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
