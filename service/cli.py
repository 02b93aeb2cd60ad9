"""The `vecdial` command line: build, search, eval, info, reindex, repair, serve.

Thin over the library: parse arguments, call indexer/models, print. Every
VecdialError becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import vecdial
from vecdial import BuildSettings, InvalidInput, VecdialError
from vecdial._internal import FORMATS
from vecdial.service import cli_commands
from vecdial.service.cli_commands import open_collection, vectors_file
from vecdial.service.cli_help import PARTIAL_HELP, SHARD_HELP
from vecdial.service.cli_settings import add_settings_flags, settings_changes
from vecdial.service.output import print_hits

DATA_DIR_HELP = "where collections live (env VECDIAL_DATA_DIR; default ./vecdial-data); before or after the command"
RAY_HELP = "run the build's per-row passes on a Ray cluster: 'auto' (the one this machine joined), the head's host:port, or 'local' (needs vecdial[ray]; docs/scale-out.md)"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    if args.data_dir is None and args.run is not _serve:  # serve lets its settings decide
        args.data_dir_from = "VECDIAL_DATA_DIR" if "VECDIAL_DATA_DIR" in os.environ else "the default"
        args.data_dir = Path(os.environ.get("VECDIAL_DATA_DIR", "vecdial-data"))
    else:
        args.data_dir_from = "--data-dir"
    try:
        return args.run(args) or 0
    except VecdialError as exc:
        print(f"vecdial: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vecdial: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vecdial", description="Compressed-embedding search where each query picks its budget.")
    parser.add_argument("--data-dir", type=Path, default=None, help=DATA_DIR_HELP)
    commands = _Subcommands(parser.add_subparsers(title="commands"))

    build = commands.add_parser("build", help="build a collection from embeddings or texts")
    build.add_argument("input", nargs="?", type=Path, help=f"input file ({', '.join(FORMATS)})")
    build.add_argument("--demo", action="store_true", help="build from the demo corpus shipped with vecdial")
    build.add_argument("-c", "--collection", help="collection name (default: the input's file stem, or 'demo')")
    build.add_argument("--format", choices=FORMATS, help="input format (default: from the file suffix)")
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    build.add_argument(
        "--discard-writes",
        action="store_true",
        help="replace an existing collection even if it holds writes made since its version (they are lost; reindex keeps them)",
    )
    build.add_argument("--ray", metavar="ADDRESS", help=RAY_HELP)
    add_settings_flags(build, show_defaults=True)
    build.set_defaults(run=_build)

    search = commands.add_parser("search", help="search a collection with a budget")
    search.add_argument("-c", "--collection", required=True)
    query = search.add_mutually_exclusive_group(required=True)
    query.add_argument("--text", help="query text, encoded with the bundled model")
    query.add_argument("--vector", type=Path, help=".npy file with one query vector (dim,) or several (nq, dim)")
    search.add_argument("-b", "--budget", default="exact", help="e.g. exact, dense:dim=64, binary:rescore=10, funnel:binary*20>128*4>full")
    search.add_argument("-k", type=int, default=10, help="results per query")
    search.add_argument("--json", action="store_true", help="print hits and explain as JSON")
    search.add_argument(
        "--filter",
        type=_filter_arg,
        help='keep items whose payload matches, as JSON: \'{"module": "os", "chars": {"range": {"lt": 300}}}\' (eq, in, range, and/or/not)',
    )
    search.add_argument("--with-payload", dest="with_payload", action="store_true", help="show each hit's payload")
    search.add_argument(
        "--hybrid",
        help='fuse with BM25 over the stored texts (--text only): "lexical=0.3", "lexical=0.3,method=rrf", or "default" (dense 0.7 + lexical 0.3)',
    )
    search.add_argument(
        "--steer",
        type=_steer_arg,
        help='move the query along sparse features, as JSON: \'{"1304": 0.5, "json": 0.3}\' (feature id or label words: weight, at most 2; up to 0.5 mostly reorders the hits, 1 replaces about half, 2 most)',
    )
    search.add_argument(
        "--explain-features", dest="explain_features", action="store_true", help="list each hit's top sparse features shared with the query"
    )
    search.set_defaults(run=_search)

    features = commands.add_parser(
        "features", help="browse the labelled features of a collection's sparse codes (for --steer and --explain-features)"
    )
    features.add_argument("-c", "--collection", required=True)
    features.add_argument("--query", help="words of a label (e.g. json), or a feature id; omit for the most frequent features")
    features.add_argument("--limit", type=int, default=50, help="features to list (default 50)")
    features.add_argument(
        "--json", action="store_true", help='print {"features": [...]}, as GET /v1/collections/{name}/features returns it'
    )
    features.set_defaults(run=_features)

    evaluate = commands.add_parser("eval", help="quality and cost of budgets against exact search")
    evaluate.add_argument("-c", "--collection", required=True)
    evaluate.add_argument(
        "--queries",
        help="an .npy of query vectors (recall of each budget against exact), or 'demo': the shipped demo queries with relevance judgments, for a collection built with --demo (its default)",
    )
    evaluate.add_argument(
        "-b", "--budgets", nargs="+", help="budgets to compare (default: the ones a sweep measures, sparse included when built)"
    )
    evaluate.set_defaults(run=cli_commands.evaluate)

    sweep = commands.add_parser("sweep", help="measure recall and latency of many budgets; enables auto:target_recall=R")
    sweep.add_argument("-c", "--collection", required=True)
    sweep.add_argument(
        "--queries",
        default="default",
        help="'default' (traffic once a server kept 100 real searches, else pseudo, else documents), 'pseudo' (short texts cut from the "
        "stored texts, encoded), 'documents' (a sample of the collection's own vectors), 'traffic' (real searches a server kept: "
        "query_sample_rate), 'demo', or an .npy of query vectors",
    )
    sweep.add_argument("-n", type=int, default=300, help="queries to sample with --queries pseudo or documents")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.add_argument(
        "--max-seconds", dest="max_seconds", type=float, help="stop measuring new budgets after this long (what was measured is kept)"
    )
    sweep.add_argument(
        "--report",
        nargs="+",
        default=[],
        metavar="FILE",
        help="also write the sweep as .json, .csv, .png (recall vs latency) or .html (a self-contained page)",
    )
    sweep.add_argument(
        "--json", action="store_true", help='print {"queries": ..., "points": [...]}, as GET /v1/collections/{name}/sweep returns it'
    )
    sweep.set_defaults(run=cli_commands.sweep)

    info = commands.add_parser("info", help="describe a collection (or list them)")
    info.add_argument("-c", "--collection", help="collection name; omit to list all")
    info.add_argument(
        "--verify", action="store_true", help="verify every file's checksum (done on every open now; kept for scripts that pass it)"
    )
    info.set_defaults(run=_info)

    reindex = commands.add_parser(
        "reindex",
        help="rebuild a collection with new compression settings, then swap it in (safe while serving)",
        description="Rebuild a collection with new compression settings, then swap it in. Settings not given keep their current value.",
    )
    reindex.add_argument("-c", "--collection", required=True)
    reindex.add_argument("--quiet", action="store_true", help="no progress bar")
    reindex.add_argument(
        "--min-recall",
        dest="min_recall",
        type=float,
        help="swap the new version in only if the gate budget's recall@10 (95%% lower bound) meets this",
    )
    reindex.add_argument("--budget", help="the budget the recall gate measures (default binary:rescore=10)")
    reindex.add_argument("--ray", metavar="ADDRESS", help=RAY_HELP)
    add_settings_flags(reindex, show_defaults=False)
    reindex.set_defaults(run=cli_commands.reindex)

    repair = commands.add_parser(
        "repair",
        help="check a collection's write-ahead log; salvage every valid record from a damaged one",
        description="Scan the collection's write-ahead log. If it is damaged, keep the damaged file beside it (renamed), "
        "write every valid record into a new log and take writes again. Exit code 1 when --dry-run finds something to repair.",
    )
    repair.add_argument("-c", "--collection", required=True)
    repair.add_argument("--dry-run", action="store_true", help="report what is damaged; change nothing")
    repair.add_argument("--json", action="store_true", help="print the report as JSON")
    repair.set_defaults(run=cli_commands.repair)

    shard = commands.add_parser(
        "shard", help="split a collection into shards by id hash (--shards 1 merges them back), keeping every write", description=SHARD_HELP
    )
    shard.add_argument("-c", "--collection", required=True)
    shard.add_argument("--shards", type=int, required=True, help="shards after: 1 (merged back) to 256")
    shard.add_argument("--partial", choices=["allow", "fail"], help=PARTIAL_HELP)
    shard.add_argument("--quiet", action="store_true", help="no progress bar")
    shard.set_defaults(run=cli_commands.shard)

    backup = commands.add_parser(
        "backup",
        help="copy collections into another directory while they serve (a consistent copy; restore by copying back)",
        description="Copy each collection (or the one given) into DEST/<name>: every write acknowledged before the copy, "
        "none half-copied. Safe while a server runs; DEST is then a data directory. Existing DEST/<name> is never overwritten.",
    )
    backup.add_argument("-c", "--collection", help="collection name; omit to back up every collection")
    backup.add_argument("dest", type=Path, help="directory to copy into (created if missing)")
    backup.set_defaults(run=cli_commands.backup)

    serve = commands.add_parser("serve", help="run the HTTP API (uvicorn) over the data directory")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1; env VECDIAL_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8000; env VECDIAL_PORT)")
    serve.add_argument("--workers", type=int, help="worker processes sharing the memory-mapped indexes (default 1)")
    serve.add_argument("--config", type=Path, help="TOML settings file (env VECDIAL_SETTINGS_FILE); env variables override it")
    serve.set_defaults(run=_serve)
    return parser


class _Subcommands:
    """Adds each command's parser with `--data-dir` of its own, so the option works before
    or after the command (`vecdial search --data-dir D ...`) as it does on `serve`."""

    def __init__(self, actions):
        self.actions = actions

    def add_parser(self, name: str, **options) -> argparse.ArgumentParser:
        parser = self.actions.add_parser(name, **options)
        # SUPPRESS: given after the command it overrides the global option, else leaves it alone
        parser.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=DATA_DIR_HELP)
        return parser


def _build(args: argparse.Namespace) -> int:
    if args.demo == (args.input is not None):
        raise InvalidInput("give either an input file or --demo")
    settings = BuildSettings().changed(settings_changes(args))  # before reading a possibly large input
    db, progress = vecdial.connect(args.data_dir), not args.quiet
    if args.demo:
        from vecdial._internal import MODEL_NAME, demo_embeddings, demo_payloads, load_demo_corpus

        corpus, name = load_demo_corpus(), args.collection or "demo"
        vectors = demo_embeddings(show_progress=progress)[0]
        collection = db.create(
            name,
            vectors,
            ids=corpus.doc_ids,
            texts=corpus.doc_texts,
            payloads=demo_payloads(corpus.doc_ids, corpus.doc_texts),
            source_model=MODEL_NAME,
            settings=settings,
            replace=True,
            discard_writes=args.discard_writes,
            show_progress=progress,
            ray=args.ray,
        )
    else:
        name = args.collection or args.input.stem
        collection = db.create(
            name,
            path=args.input,
            format=args.format,
            settings=settings,
            replace=True,
            discard_writes=args.discard_writes,
            show_progress=progress,
            ray=args.ray,
        )
    info = collection.info()
    print(f"built collection {name!r}: {info.size} vectors of {info.dim} dims -> version {info.version}")
    return 0


def _search(args: argparse.Namespace) -> int:
    collection = open_collection(args)
    queries = vectors_file(args.vector) if args.vector is not None else args.text
    hybrid = {} if args.hybrid == "default" else args.hybrid
    result = collection.search(
        queries,
        k=args.k,
        budget=args.budget,
        with_text=True,
        filter=args.filter,
        with_payload=args.with_payload,
        hybrid=hybrid,
        steer=args.steer,
        explain_features=args.explain_features,
    )
    if args.json:
        body = result.to_dict()
        if len(result) == 1:  # the HTTP API's shapes: one query -> hits, a batch -> results
            body = {"hits": body["results"][0], "explain": body["explain"]}
        print(json.dumps(body, indent=2))
    else:
        print_hits(result)
        for q in range(len(result)) if args.explain_features else ():
            for hit in result[q]:
                shared = ", ".join(f"{f['feature']} [{f['label']}] {f['contribution']:.3f}" for f in hit["features"])
                print(f"{hit['id']}: {shared or 'no shared feature'}")
    return 0


def _features(args: argparse.Namespace) -> int:
    listed = open_collection(args).features(args.query, args.limit)
    if args.json:
        print(json.dumps({"features": listed}, indent=2, ensure_ascii=False))
        return 0
    if not listed:
        print(f"no feature's label matches {args.query!r}: try one word, or the start of one")
    if listed:
        print(f"{'feature':>7}  {'of docs':>7}  {'label':<42}  top documents")
    for feature in listed:
        top = "; ".join(" ".join((doc["text"] or str(doc["id"])).split()[:6]) for doc in feature["documents"][:2])
        print(f"{feature['id']:>7}  {feature['frequency']:7.2%}  {feature['label']:<42}  {top}")
    return 0


def _json_object(what: str, example: str) -> Callable[[str], dict]:
    """An argparse type: a JSON object (its contents are checked by the search itself)."""

    def parse(text: str) -> dict:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"not JSON ({exc.msg} at character {exc.pos}): quote the {what}, e.g. '{example}'") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"a {what} is a JSON object, e.g. '{example}'")
        return value

    return parse


_steer_arg = _json_object("steer", '{"1304": 0.5}')
_filter_arg = _json_object("filter", '{"module": "os"}')


def _info(args: argparse.Namespace) -> int:
    if not args.collection:
        for name in vecdial.connect(args.data_dir).list():
            print(name)
        return 0
    info = open_collection(args).info()  # opening a version verifies every file's sha256 (the library's default)
    print(json.dumps(info.to_dict(), indent=2))
    if args.verify:
        print(f"verified: every file of version {info.version} matches the sha256 its manifest records", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Hand settings to the workers through the environment, then run uvicorn."""
    from pydantic import ValidationError

    from vecdial.service import server
    from vecdial.service.settings import SETTINGS_FILE_ENV, Settings

    if args.config is not None:
        os.environ[SETTINGS_FILE_ENV] = str(args.config.resolve())
    if args.data_dir is not None:
        os.environ["VECDIAL_DATA_DIR"] = str(args.data_dir.resolve())
    for option in ("host", "port", "workers"):
        if getattr(args, option) is not None:
            os.environ[f"VECDIAL_{option.upper()}"] = str(getattr(args, option))
    try:
        settings = Settings()
    except (ValidationError, ValueError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else []
        detail = f"{'.'.join(map(str, errors[0]['loc']))}: {errors[0]['msg']}" if errors else str(exc)
        raise InvalidInput(f"invalid settings: {detail}") from None
    server.check_exposure(settings)
    print(
        f"vecdial: serving {settings.data_dir} on http://{settings.host}:{settings.port} with {settings.workers} worker(s)", file=sys.stderr
    )
    server.run(settings)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
