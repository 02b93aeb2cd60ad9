"""The CLI's maintenance commands (eval, sweep, reindex, shard, repair, backup) and how every
command opens a collection; service/cli.py holds the parser, search, info and serve.

Each command takes the parsed arguments and returns the exit status (errors raise
`VecdialError`s, which `cli.main` prints as one line and exits 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

import vecdial
from vecdial import InvalidInput, NotFound, VecdialError
from vecdial.service.cli_help import holds_the_demo_corpus, missing_collection
from vecdial.service.cli_settings import settings_changes
from vecdial.service.output import print_eval_table, print_sweep_table


def vectors_file(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read query vectors from {path}: {exc}") from None


def open_collection(args: argparse.Namespace) -> vecdial.Collection:
    """Checksums are verified when a version is first opened (the library's default)."""
    db = vecdial.connect(args.data_dir)
    try:
        return db.open(args.collection)
    except NotFound:
        raise NotFound(missing_collection(args, db)) from None


def evaluate(args: argparse.Namespace) -> int:
    collection = open_collection(args)
    qrels = None
    holds_demo = holds_the_demo_corpus(collection)
    if args.queries is None and not holds_demo:
        raise InvalidInput(
            f"collection {args.collection!r} has no judged queries of its own: pass --queries Q.npy (query vectors; "
            f"eval then measures each budget's recall against exact search), or run `vecdial sweep -c {args.collection}` "
            "to measure recall and latency on a sample of its documents"
        )
    if args.queries == "demo" and not holds_demo:
        raise InvalidInput(f"--queries demo judges the demo corpus, which {args.collection!r} does not hold: pass --queries Q.npy")
    if args.queries in (None, "demo"):
        from vecdial._internal import demo_embeddings, load_demo_corpus

        corpus = load_demo_corpus()
        _, queries = demo_embeddings()
        qrels = [corpus.qrels.get(qid, {}) for qid in corpus.query_ids]
    else:
        queries = vectors_file(Path(args.queries))
    rows = collection.evaluate(queries, args.budgets, qrels)
    print_eval_table(rows, title=f"{args.collection}: {collection.info().size} vectors, {len(queries)} queries")
    return 0


def sweep(args: argparse.Namespace) -> int:
    for path in args.report:  # before minutes of sweeping
        if Path(path).suffix.lower() not in vecdial.REPORT_FORMATS:
            raise InvalidInput(f"--report {path}: name a {', '.join(vecdial.REPORT_FORMATS)} file")
    collection = open_collection(args)
    queries = args.queries if args.queries in ("default", "pseudo", "documents", "traffic", "demo") else vectors_file(Path(args.queries))
    points = collection.sweep(queries, n=args.n, max_seconds=args.max_seconds, show_progress=not args.quiet)
    if args.json:
        source, stored = collection.sweep_points()
        print(json.dumps({"queries": source, "points": [dataclasses.asdict(p) for p in stored]}, indent=2))
        for path in args.report:
            collection.report(path)
        return 0
    print_sweep_table(points, title=f"{args.collection}: {collection.info().swept_on}, one query at a time")
    print(f"calibrated on {collection.info().swept_on}")
    print("saved beside the version; search with budget auto:target_recall=0.95 to use it")
    for path in args.report:
        print(f"report written to {collection.report(path)}")
    return 0


def reindex(args: argparse.Namespace) -> int:
    status = (
        open_collection(args)
        .reindex(
            settings_changes(args), min_recall=args.min_recall, budget=args.budget, wait=True, show_progress=not args.quiet, ray=args.ray
        )
        .status
    )
    if status.state == "succeeded":
        print(f"reindexed {args.collection!r}: {status.message}")
        return 0
    if status.state == "cancelled":
        print(f"vecdial: reindex cancelled; {args.collection!r} still serves {status.from_version}", file=sys.stderr)
        return 130
    raise VecdialError(f"reindex of {args.collection!r} failed: {status.message}")


def shard(args: argparse.Namespace) -> int:
    db, partial = vecdial.connect(args.data_dir), None if args.partial is None else args.partial == "allow"
    if args.collection not in db:
        raise NotFound(missing_collection(args, db))
    info = db.shard(args.collection, args.shards, partial=partial, show_progress=not args.quiet).info()
    return print(f"{args.collection!r} now holds {info.size} vectors in {info.shards} shard{'s' * (info.shards > 1)}") or 0


def repair(args: argparse.Namespace) -> int:
    report = open_collection(args).repair(dry_run=args.dry_run)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 1 if args.dry_run and report.needed else 0


def backup(args: argparse.Namespace) -> int:
    db = vecdial.connect(args.data_dir)
    for name in [args.collection] if args.collection else db.list():
        print(f"{name}: {db.open(name).backup(args.dest)}")
    return 0
