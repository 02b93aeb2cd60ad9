"""What the command line says about where it looked: the data directory a missing collection
was looked for in, and whether a collection holds the demo corpus its judged queries need."""

from __future__ import annotations

import argparse
from pathlib import Path

import vecdial


def missing_collection(args: argparse.Namespace, db: vecdial.Database) -> str:
    """Where the CLI looked (the data directory, resolved, and which option chose it) and what is there."""
    where = f"data directory {str(args.data_dir)!r} ({args.data_dir_from}"
    if not args.data_dir.is_absolute():
        where += f", relative to {Path.cwd()}"
    where += ")"
    if not args.data_dir.is_dir():
        return f"no collection {args.collection!r}: the {where} does not exist; pass --data-dir or set VECDIAL_DATA_DIR"
    names = db.list()
    if not names:
        return f"no collection {args.collection!r} in the {where}: it holds none yet; build one with `vecdial build`"
    return f"no collection {args.collection!r} in the {where}; it holds: {', '.join(names)}"


def holds_the_demo_corpus(collection: vecdial.Collection) -> bool:
    """Whether every document the demo's queries judge is in the collection (built with --demo)."""
    from vecdial._internal import load_demo_corpus

    corpus, size = load_demo_corpus(), collection.info().size
    if not len(corpus.doc_ids) <= size <= 2 * len(corpus.doc_ids):
        return False
    ids = set(collection.ids(limit=min(size, 10_000))[0])  # the demo corpus has 2,032 documents
    return all(doc in ids for judged in corpus.qrels.values() for doc in judged)


SHARD_HELP = (
    "Split a collection into N shards by id hash, each an ordinary collection searched at once and merged "
    "(or with --shards 1 merge a sharded one back). Every acknowledged write is kept; writes wait meanwhile; refused "
    "while a reindex of it runs. Stop servers of the collection first (or restart them after), and sweep it again after."
)
PARTIAL_HELP = (
    "while a shard is down, searches answer from the others (allow, the default: explain.partial is true) "
    "or fail with 503 (fail); default: keep the collection's rule"
)
