"""A live collection's handle: search, write, sweep, reindex, describe.

Every search sees every write acknowledged so far (by this process or any other: a search
first catches up with the collection's log and CURRENT pointer, a few `stat` calls when
nothing changed). `vecdial.connect(dir)` hands these out (vecdial/api.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from vecdial import arguments
from vecdial.indexer.disk.query_sample import append_queries
from vecdial.indexer.disk.sweep_file import write_sweep
from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.eval.evaluate import EvalRow, evaluate
from vecdial.indexer.eval.sweep import candidate_budgets, resumable_sweep, sweep_queries, with_documents_recall
from vecdial.indexer.features.serve import browse
from vecdial.indexer.filters.table import check_payloads
from vecdial.indexer.io.checks import check_ids, check_texts
from vecdial.indexer.jobs.reindex import start_reindex
from vecdial.indexer.live.backup import backup_collection
from vecdial.indexer.live.collection import LiveCollection, WriteResult
from vecdial.indexer.live.repair import RepairReport
from vecdial.indexer.modes import build_settings_of, warm_budgets
from vecdial.indexer.modes.settings import BuildSettings
from vecdial.indexer.plan.calibration import SweepPoint
from vecdial.indexer.plan.describe import dense_costs, describe_modes
from vecdial.indexer.plan.execute import MAX_K, Hits
from vecdial.indexer.plan.execute import run as run_search
from vecdial.indexer.plan.hybrid import Hybrid
from vecdial.indexer.plan.options import SearchOptions
from vecdial.indexer.plan.per_query import make_bins
from vecdial.indexer.vectors import as_query_matrix
from vecdial.info import Info
from vecdial.job import Job

if TYPE_CHECKING:
    from vecdial.api import Database

Texts = Sequence[str]


class Collection:
    """One live collection: search, write, sweep, reindex, describe."""

    def __init__(self, db: Database, live: LiveCollection):
        self.db = db
        self._live = live

    @property
    def name(self) -> str:
        return self._live.name

    @property
    def damaged(self) -> str | None:
        """What in the write-ahead log is damaged and what to run, or None (cheap: no refresh)."""
        return self._live.damaged

    def __repr__(self) -> str:
        return f"<vecdial.Collection {self.name!r} ({self._live.snapshot().size} items)>"

    def search(
        self,
        queries: str | Texts | np.ndarray,
        k: int = 10,
        budget: Any = "exact",
        *,
        with_text: bool = False,
        threads: int | None = None,
        filter: dict | None = None,
        with_payload: bool = False,
        hybrid: dict | str | None = None,
        texts: Texts | None = None,
        steer: dict | None = None,
        explain_features: bool = False,
    ) -> Hits:
        """The best k live items per query under the budget, among those `filter` keeps.

        queries: a text, a list of texts (encoded with the bundled model), a vector
        (dim,) or a matrix (nq, dim). budget: string form (`binary:rescore=10`),
        JSON form or a budget model. threads: native threads for a batch (a single
        query always runs on one). filter: on payloads, e.g. `{"module": "os",
        "chars": {"range": {"lt": 300}}}` (eq, in, range, and/or/not). with_payload:
        return each hit's payload. hybrid: fuse the budget's hits with BM25 over the stored
        texts, e.g. `{"lexical": 0.3}` or "lexical=0.3,method=rrf" (text queries only;
        `{}` takes the measured default, dense 0.7 + lexical 0.3; weights are shares of 1 and
        the signals left out among dense and lexical share the rest, so `{"lexical": 0.5}` is
        dense 0.5 + lexical 0.5; explain.hybrid shows them). texts: the queries' texts
        when `queries` are their vectors already (hybrid reads them). steer: move the queries
        along sparse features, `{"1304": 0.5, "json": 0.3}` (id or label words: weight, |w| <= 2);
        explain_features: add each hit's top features shared with the query (see `features`).
        """
        k = arguments.whole(k, "k", 1, MAX_K)
        if threads is not None:
            threads = arguments.whole(threads, "threads", 1)
        if texts is not None:
            texts = arguments.texts(texts, "texts")
        self._live.refresh()
        snapshot = self._live.snapshot()
        if isinstance(queries, str):
            texts = [arguments.text(queries, "query")]
            queries = self.encode(texts)
        elif isinstance(queries, (list, tuple)) and any(isinstance(query, str) for query in queries):
            texts = arguments.texts(queries, "queries")
            queries = self.encode(texts)
        fusion = None if hybrid is None else Hybrid.of(hybrid, texts)
        options = SearchOptions(
            k,
            budget,
            with_text=with_text,
            with_payload=with_payload,
            threads=threads,
            filter=filter,
            hybrid=fusion,
            steer=steer,
            explain_features=explain_features,
        )
        return run_search(snapshot.view, cast(np.ndarray, queries), options)

    def warm_up(self) -> list[str]:
        """Search once with each kind of budget the collection serves, one query and a batch (their
        kernels differ), so every kernel is loaded (on a fresh install: compiled, ~1 s each) before
        the first real search; and load the encoder (5-15 s) when it takes text queries. Every
        registered mode names its own warm-up budgets. Returns the budgets searched."""
        budgets, takes_text = self._warm_searches()
        if takes_text:  # this frame holds no version: loading the model can keep it alive (below)
            self.encode(["warm up"])
        return budgets

    def _warm_searches(self) -> tuple[list[str], bool]:
        """(budgets searched, whether the collection takes text queries). Apart from warm_up: the
        model's first load raises and catches exceptions whose tracebacks sit in reference cycles
        with the frames above them, and a version in such a frame would stay mapped until the
        cycle collector ran."""
        from vecdial.models.encoder import MODEL_NAME

        self._live.refresh()
        version = self._live.snapshot().version
        queries = np.random.default_rng(0).normal(size=(2, version.dim)).astype(np.float32)
        budgets = warm_budgets(version)
        for budget in budgets:
            self.search(queries[0], k=1, budget=budget)
            self.search(queries, k=1, budget=budget)
        return budgets, version.manifest.source_model == MODEL_NAME

    def features(self, query: str | None = None, limit: int = 50) -> list[dict]:
        """The labelled features of the sparse codes: those whose label holds `query`'s words (or a
        feature id), else the most frequent; each {id, label, terms, frequency, documents}."""
        if query is not None:
            arguments.text(query, "query")
        limit = arguments.whole(limit, "limit", 1, 1000)
        self._live.refresh()
        return browse(self._live.snapshot().view, query, limit)

    def encode(self, texts: Texts) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors, for a collection built with the bundled model."""
        from vecdial.models.encoder import MODEL_NAME, encode_texts

        texts = arguments.texts(texts, "texts")
        source = self._live.snapshot().version.manifest.source_model
        if source != MODEL_NAME:
            raise InvalidInput(
                f"collection {self.name!r} holds vectors from {source or 'an unknown model'}, not the bundled "
                f"{MODEL_NAME}, so it cannot encode text: send vectors instead (if the vectors are that model's, "
                f"create the collection with source_model={MODEL_NAME!r})"
            )
        if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
            raise InvalidInput("query text is empty: send words to search for")
        return encode_texts(list(texts))

    def upsert(
        self,
        ids: Sequence,
        vectors: np.ndarray | None = None,
        *,
        texts: Sequence[str | None] | None = None,
        payloads: Sequence[dict | None] | None = None,
    ) -> WriteResult:
        """Add or replace items by id (an item replaced loses its old payload); durable (fsynced)
        and searchable when this returns. Without vectors, `texts` are encoded with the bundled model."""
        ids = arguments.listed(ids, "ids", '["a", "b"] or [1, 2]')
        if texts is not None:
            texts = arguments.listed(texts, "texts", '["a text", None]')
        if payloads is not None:
            payloads = arguments.listed(payloads, "payloads", '[{"module": "os"}, None]')
        check_ids(ids, self._live.snapshot().version.manifest.id_kind)  # all checked before encoding
        check_texts(texts, len(ids))
        check_payloads(None if payloads is None else list(payloads), len(ids), self._live.snapshot().segment.payload_types)
        if vectors is None:
            if texts is None or any(t is None for t in texts):
                raise InvalidInput("send vectors, or a text for every item to encode")
            vectors = self.encode(list(texts))
        self._live.refresh()
        return self._live.upsert(ids, vectors, list(texts) if texts is not None else None, None if payloads is None else list(payloads))

    def delete(self, ids: Sequence) -> WriteResult:
        """Remove items by id (unknown ids are ignored); durable when this returns."""
        ids = arguments.listed(ids, "ids", '["a", "b"] or [1, 2]')
        self._live.refresh()
        return self._live.delete(ids)

    def ids(self, after: Any = None, limit: int = 1000) -> tuple[list, Any]:
        """One page of live ids, ascending (numbers, or strings by code point), all after `after`:
        (ids, cursor). Pass the cursor as `after` for the next page; it is None after the last.
        Sorted order keeps paging exact across writes between pages. limit: 1..10000."""
        self._live.refresh()
        return self._live.ids(after, limit)

    def repair(self, *, dry_run: bool = False) -> RepairReport:
        """Scan the whole write-ahead log and report damage; unless dry_run, salvage every valid
        record into a new log (the damaged file is kept beside it) and take writes again."""
        return self._live.repair(dry_run=dry_run)

    def backup(self, dest: str | Path) -> Path:
        """Copy this collection into `dest/<name>` while it serves; return that path.

        The copy holds every write acknowledged before it was taken and opens whole:
        `vecdial.connect(dest).open(name)`. Writes wait only while the log's newest bytes
        are copied; searches never wait. AlreadyExists if `dest/<name>` exists.
        """
        return backup_collection(self._live.collection, Path(dest))

    def sweep(
        self,
        queries: str | np.ndarray = "default",
        *,
        n: int = 300,
        budgets: list[str] | None = None,
        max_seconds: float | None = None,
        show_progress: bool = True,
    ) -> list[SweepPoint]:
        """Measure recall@10 and one-query latency of many budgets, store the result beside the
        version and serve `auto` budgets from it. queries: "default" (the traffic sample once it
        holds 100 queries, else "pseudo" when the collection has texts from the bundled model, else
        "documents"), "pseudo" (n short texts cut from stored texts and encoded, each leaving its
        document out), "documents" (n stored vectors, each leaving itself out), "traffic" (the
        sample of real searches a service keeps when its query_sample_rate is set), "demo" (the
        shipped demo queries) or an (nq, dim) array. Pseudo-queries and documents are easier than
        real queries: their points carry a measured correction (`SweepPoint.miss_factor`). Knobs
        are then bisected near recall targets 0.9/0.95/0.99; max_seconds bounds the whole sweep."""
        n = arguments.whole(n, "n", 1)
        if budgets is not None:
            budgets = arguments.listed(budgets, "budgets", '["exact", "binary:rescore=10"]')
        if max_seconds is not None:
            max_seconds = arguments.number(max_seconds, "max_seconds", 0, math.inf)
        if not isinstance(queries, (str, np.ndarray, list, tuple)):
            raise InvalidInput(f'queries is {queries!r}: pass "default", "pseudo", "documents", "traffic", "demo" or an (nq, dim) array')
        self._live.refresh()
        snapshot = self._live.snapshot()
        version = snapshot.version
        calibration = sweep_queries(version, queries, n, self._live.collection.path, show_progress)
        bins = make_bins(version.partitions, calibration.queries)
        points = resumable_sweep(
            snapshot.view,
            calibration.queries,
            budgets or candidate_budgets(version),
            calibration.exclude_rows,
            show_progress=show_progress,
            max_seconds=max_seconds,
            miss_factor=calibration.miss_factor,
            bins=bins,
        )
        if calibration.exclude_rows is None:  # real queries: measure how optimistic documents would have been
            points = with_documents_recall(snapshot.view, points, n)
        write_sweep(version.path, points, f"{calibration.source}, {time.strftime('%Y-%m-%d %H:%M:%S')}", None if bins is None else bins[0])
        self._live.sweep_changed()
        return points

    def sweep_points(self) -> tuple[str | None, list[SweepPoint]]:
        """(what the serving version was calibrated on, its measured points); (None, []) if never swept."""
        self._live.refresh()
        view = self._live.snapshot().view
        return view.sweep_source, list(view.sweep or ())

    def keep_queries(self, queries: np.ndarray, limit: int = 10_000) -> int:
        """Add (n, dim) query vectors to the collection's traffic sample (kept up to `limit` rows),
        for `sweep(queries="traffic")`; returns the rows kept."""
        limit = arguments.whole(limit, "limit", 1)
        return append_queries(self._live.collection.path, as_query_matrix(queries, self._live.snapshot().version.dim), limit)

    def report(self, path: Path | str) -> Path:
        """Write the stored sweep as a report: .json, .csv, .png (recall against latency, the
        Pareto front, auto's choices) or a self-contained .html page, by the path's suffix."""
        from vecdial.indexer.eval.report import write_report

        arguments.path(path, "path")
        self._live.refresh()
        view = self._live.snapshot().view
        if not view.sweep:
            raise InvalidInput(f"collection {self.name!r} has no sweep to report: run `vecdial sweep -c {self.name}` first")
        return write_report(
            view.sweep,
            path,
            f"{self.name} ({view.name}, {view.version.size:,} vectors): recall@10 against latency",
            view.sweep_source or "unknown queries",
        )

    def evaluate(self, queries: np.ndarray, budgets: list | None = None, qrels: list[dict] | None = None) -> list[EvalRow]:
        """Recall@10/@100 against exact search (and nDCG/MRR@10 with relevance judgments) per budget."""
        if budgets is not None:
            budgets = arguments.listed(budgets, "budgets", '["exact", "binary:rescore=10"]')
        if qrels is not None:
            qrels = arguments.listed(qrels, "qrels", '[{"doc-id": 1}, ...] (one dict per query)')
        self._live.refresh()
        view = self._live.snapshot().view
        matrix = as_query_matrix(queries, view.version.dim)
        return evaluate(view, matrix, budgets or candidate_budgets(view.version), qrels)

    def reindex(
        self,
        settings: BuildSettings | dict | None = None,
        *,
        min_recall: float | None = None,
        budget: str | None = None,
        wait: bool = False,
        show_progress: bool = True,
        ray: str | None = None,
    ) -> Job:
        """Rebuild with new settings beside the serving version, then swap atomically.
        Searches and writes go on meanwhile. wait=True blocks (with a progress bar) and raises
        JobFailed if the job fails. min_recall: swap only if `budget`'s (default
        binary:rescore=10) recall@10 lower bound on the new version meets it, else the job
        fails saying what it measured; the new version is swept, so `auto` keeps working.
        ray: run the rebuild's per-row passes on a Ray cluster ("auto", "host:port", "local")."""
        arguments.one_of(settings, "settings", (BuildSettings, dict), 'a BuildSettings or a dict such as {"partitions": 64}')
        if min_recall is not None:
            min_recall = arguments.number(min_recall, "min_recall", 0, 1)
        changes = settings if isinstance(settings, dict) else _changes(settings)
        self._live.refresh()
        self._live.check_writable()  # a reindex would fold a damaged log away: DamagedLog until repaired
        job = Job(
            start_reindex(
                self.db.data_dir, self.name, changes, self.db._jobs, live=self._live, min_recall=min_recall, budget=budget, ray=ray
            )
        )
        job.start()
        if wait:
            job.wait(show_progress=show_progress)
        return job

    def info(self) -> Info:
        self._live.refresh()
        snapshot = self._live.snapshot()
        version, manifest = snapshot.version, snapshot.version.manifest
        from vecdial.models.encoder import MODEL_NAME

        return Info(
            name=self.name,
            version=snapshot.version_name,
            size=snapshot.size,
            dim=version.dim,
            partitions=manifest.partitions,
            version_size=version.size,
            segment_size=snapshot.segment.live,
            deleted=len(snapshot.dead_rows),
            id_kind=manifest.id_kind,
            source_model=manifest.source_model,
            text_queries=manifest.source_model == MODEL_NAME,
            has_texts=manifest.has_texts,
            created_at=manifest.created_at,
            settings=build_settings_of(manifest).model_dump(),
            modes=describe_modes(version, swept=snapshot.view.sweep is not None),
            dense_bytes_per_vector=dense_costs(version),
            swept_on=snapshot.view.sweep_source,
            damaged=self._live.damaged,
        )


def _changes(settings: BuildSettings | None) -> dict:
    return {} if settings is None else settings.model_dump()
