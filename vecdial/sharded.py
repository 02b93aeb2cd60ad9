"""A collection split into shards by id hash, behind the same interface as `Collection`.

`db.open(name)` returns a `ShardedCollection` when `<data_dir>/<name>` holds shards
(`vecdial shard -c NAME --shards N`, `Database.shard`): every door (Python, the command
line, `vecdial serve` and so the remote client and the explorer) then works unchanged.

A search goes to every shard at once with its budget, filter, hybrid and steer, on a
small thread pool of this process (the calling thread runs shard 0; the kernels release
the GIL, and a one-query search stays on one native thread per shard), and the top k
are merged (`indexer/scale/shards.merge_shard_hits`): exact over the shards returns what
exact over the whole does, and `explain.shards` keeps each shard's own explain. A write
goes to the shard owning each id (`shard_of`) and returns when every owning shard's log
holds it. A shard that cannot be opened or fails: searches answer from the others with
`explain.partial` true and the shard named in `explain.shards` (or fail with Unavailable
when the manifest says `partial: false`); writes it owns fail with Unavailable (HTTP 503)
before anything is written.
"""

from __future__ import annotations

import heapq
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, TypeVar

import numpy as np

from vecdial import arguments
from vecdial.collection import Collection, Texts
from vecdial.indexer.disk.collection import Collection as CollectionDir
from vecdial.indexer.disk.collection import shard_dir_name
from vecdial.indexer.disk.locks import FileLock
from vecdial.indexer.errors import AlreadyExists, InvalidInput, NotFound, Unavailable, VecdialError
from vecdial.indexer.eval.evaluate import EvalRow
from vecdial.indexer.filters.table import check_payloads
from vecdial.indexer.jobs.settings import BuildSettings
from vecdial.indexer.jobs.store import JobStatus, JobStore
from vecdial.indexer.live.checks import check_ids, check_texts, check_vectors
from vecdial.indexer.live.collection import WriteResult
from vecdial.indexer.live.repair import RepairReport
from vecdial.indexer.plan.calibration import SweepPoint
from vecdial.indexer.plan.execute import MAX_K, Hits
from vecdial.indexer.scale.shards import ShardAnswer, ShardLayout, merge_shard_hits, shard_of
from vecdial.info import Info
from vecdial.job import Job

if TYPE_CHECKING:
    from vecdial.api import Database

log = logging.getLogger("vecdial.sharded")

RETRY_DOWN_S = 5.0  # a shard that failed to open is tried again after this long, not on every request
T = TypeVar("T")


class ShardedCollection:
    """One collection held as N shard collections: search, write, sweep, reindex, describe, as
    `Collection` does. Shard i is the ordinary collection `shard<i>` in `<name>/shards/`."""

    def __init__(self, db: Database, collection: CollectionDir):
        from vecdial.api import Database

        self.db = db
        self._name = collection.name
        self._dir = collection
        self.layout = ShardLayout.load(collection.path)
        self.shards = Database(collection.shards_dir, verify_checksums=db.verify_checksums)
        self.shard_names = [shard_dir_name(i) for i in range(self.layout.shards)]
        self._handles: list[Collection | None] = [None] * self.layout.shards
        self._down: dict[int, tuple[float, str]] = {}  # shard -> (when it failed, why)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(self.layout.shards - 1, 1), thread_name_prefix=f"vecdial-shards-{self._name}")
        for shard in range(self.layout.shards):
            try:
                self._handle(shard)
            except Unavailable as exc:
                log.error("%s", exc)

    @property
    def name(self) -> str:
        return self._name

    @property
    def partial(self) -> bool:
        """Whether a search answers from the live shards when one is down (the manifest's rule)."""
        return self.layout.partial

    @property
    def damaged(self) -> str | None:
        """What is damaged in a shard's log, or which shards are down, and what to run; or None."""
        notes = [f"shard {self.shard_names[i]}: {why}" for i, (_, why) in sorted(self._down.items())]
        notes += [f"shard {h.name}: {h.damaged}" for h in self._handles if h is not None and h.damaged]
        return "; ".join(notes) or None

    def __repr__(self) -> str:
        return f"<vecdial.ShardedCollection {self.name!r} ({self.layout.shards} shards)>"

    # -- shards --------------------------------------------------------------------------------

    def _handle(self, shard: int) -> Collection:
        """Shard `shard`'s handle, opened on first use; Unavailable if it cannot be opened
        (tried again after RETRY_DOWN_S)."""
        handle = self._handles[shard]
        if handle is not None:
            return handle
        with self._lock:
            down = self._down.get(shard)
            if down is not None and time.monotonic() - down[0] < RETRY_DOWN_S:
                raise Unavailable(down[1])
            try:
                handle = self._handles[shard] = self.shards.open(self.shard_names[shard])
            except (VecdialError, OSError) as exc:
                why = f"shard {self.shard_names[shard]} of {self.name!r} is unavailable ({exc})"
                self._down[shard] = (time.monotonic(), why)
                raise Unavailable(why) from None
            self._down.pop(shard, None)
            return handle

    def _fail(self, shard: int, exc: BaseException) -> str:
        """Take a shard that failed out of service until it opens again; why, for explain."""
        why = f"shard {self.shard_names[shard]} of {self.name!r} failed ({type(exc).__name__}: {exc})"
        log.error("%s", why, exc_info=not isinstance(exc, VecdialError))
        with self._lock:
            self._handles[shard] = None
            self._down[shard] = (time.monotonic(), why)
        self.shards.forget(self.shard_names[shard])
        return why

    def _live(self) -> list[Collection]:
        """The handles of the shards up now; Unavailable if none is."""
        handles = []
        for shard in range(self.layout.shards):
            try:
                handles.append(self._handle(shard))
            except Unavailable:
                continue
        if not handles:
            raise Unavailable(f"no shard of {self.name!r} is available: {self.damaged}")
        return handles

    def _each(self, shards: Sequence[int], call: Callable[[int], T]) -> list[T]:
        """call(shard) for every shard given, at once: shard 0 of them on this thread, the
        others on the pool. The first exception raised is raised once all are done."""
        futures = [self._pool.submit(call, shard) for shard in shards[1:]]
        results, error = [], None
        try:
            results.append(call(shards[0]))
        except BaseException as exc:  # noqa: BLE001 - raised below, after the others finish
            error = exc
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:  # noqa: BLE001
                error = error or exc
        if error is not None:
            raise error
        return results

    # -- search --------------------------------------------------------------------------------

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
        """The best k live items per query over every shard, as `Collection.search` gives them.

        Every option goes to every shard; the merge keeps the k best scores. Scores that
        depend on the collection's statistics (a hybrid search's BM25, steered features)
        are each shard's own, as in other engines sharded by document. `explain.shards`
        holds each shard's explain (or why it is missing) and `explain.partial` whether
        one was; with the manifest's `partial: false` a missing shard is Unavailable instead.
        """
        k = arguments.whole(k, "k", 1, MAX_K)
        if texts is not None:
            texts = arguments.texts(texts, "texts")
        if isinstance(queries, str):
            texts = [arguments.text(queries, "query")]
            queries = self.encode(texts)
        elif isinstance(queries, (list, tuple)) and any(isinstance(query, str) for query in queries):
            texts = arguments.texts(queries, "queries")
            queries = self.encode(texts)
        options = {"with_text": with_text, "threads": threads, "filter": filter, "with_payload": with_payload, "hybrid": hybrid, "texts": texts, "steer": steer, "explain_features": explain_features}
        start = time.perf_counter()

        def one(shard: int) -> ShardAnswer:
            name = self.shard_names[shard]
            try:
                handle = self._handle(shard)
            except Unavailable as exc:
                return ShardAnswer(name, missing=str(exc))
            began = time.perf_counter()
            try:
                hits = handle.search(queries, k, budget, **options)
            except InvalidInput:
                raise  # the request's fault: every shard would say the same
            except NotFound:
                if not self._dir.sharded():
                    raise NotFound(f"collection {self.name!r} does not exist (dropped?)") from None
                return ShardAnswer(name, missing=self._fail(shard, NotFound(f"shard {name} is gone")))
            except Exception as exc:  # noqa: BLE001 - any other failure is this shard's: the others answer
                return ShardAnswer(name, missing=self._fail(shard, exc))
            return ShardAnswer(name, hits, (time.perf_counter() - began) * 1000)

        answers = self._each(range(self.layout.shards), one)
        missing = [a.missing for a in answers if a.hits is None]
        if missing and (not self.partial or len(missing) == len(answers)):
            rule = "" if self.partial else " (this collection answers only with every shard: partial is false)"
            raise Unavailable("; ".join(m for m in missing if m) + rule + ": retry later, or repair the shard")
        return merge_shard_hits(answers, k, (time.perf_counter() - start) * 1000)

    def encode(self, texts: Texts) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors, for a collection built with the bundled model."""
        return self._live()[0].encode(texts)

    def features(self, query: str | None = None, limit: int = 50) -> list[dict]:
        """The labelled features of the first live shard's sparse codes (each shard learns its own)."""
        return self._live()[0].features(query, limit)

    # -- writes --------------------------------------------------------------------------------

    def upsert(
        self, ids: Sequence, vectors: np.ndarray | None = None, *, texts: Sequence[str | None] | None = None, payloads: Sequence[dict | None] | None = None
    ) -> WriteResult:
        """Add or replace items by id, each in the shard owning it; durable in every owning
        shard's log when this returns. Unavailable (nothing written) if an owning shard is down.
        Without vectors, `texts` are encoded with the bundled model."""
        ids = arguments.listed(ids, "ids", '["a", "b"] or [1, 2]')
        if texts is not None:
            texts = arguments.listed(texts, "texts", '["a text", None]')
        if payloads is not None:
            payloads = arguments.listed(payloads, "payloads", '[{"module": "os"}, None]')
        first = self._live()[0]
        snapshot = first.live.snapshot()
        ids = check_ids(ids, snapshot.version.manifest.id_kind)  # all checked before any shard writes
        check_texts(texts, len(ids))
        check_payloads(None if payloads is None else list(payloads), len(ids), snapshot.segment.payload_types)
        if vectors is None:
            if texts is None or any(t is None for t in texts):
                raise InvalidInput("send vectors, or a text for every item to encode")
            vectors = self.encode(list(texts))  # type: ignore[arg-type]
        vectors = check_vectors(vectors, len(ids), snapshot.version.dim)

        def write(handle: Collection, rows: np.ndarray) -> WriteResult:
            picked = rows.tolist()
            return handle.upsert(
                [ids[r] for r in picked], vectors[rows], texts=None if texts is None else [texts[r] for r in picked],
                payloads=None if payloads is None else [payloads[r] for r in picked],
            )

        return self._route(ids, write)

    def delete(self, ids: Sequence) -> WriteResult:
        """Remove items by id from the shards owning them (unknown ids are ignored); durable when
        this returns. Unavailable (nothing deleted) if an owning shard is down."""
        ids = arguments.listed(ids, "ids", '["a", "b"] or [1, 2]')
        ids = check_ids(ids, self._live()[0].live.snapshot().version.manifest.id_kind)  # before hashing them
        return self._route(ids, lambda handle, rows: handle.delete([ids[r] for r in rows.tolist()]))

    def _route(self, ids: list, write: Callable[[Collection, np.ndarray], WriteResult]) -> WriteResult:
        """write(shard handle, rows of `ids` it owns) on every owning shard at once."""
        owner = shard_of(ids, self.layout.shards) if ids else np.zeros(0, dtype=np.int64)
        owning = [int(s) for s in np.unique(owner)] or [0]
        handles = {shard: self._handle(shard) for shard in owning}  # Unavailable here writes nothing

        def one(shard: int) -> WriteResult:
            try:
                return write(handles[shard], np.flatnonzero(owner == shard))
            except InvalidInput:
                raise
            except Exception as exc:  # noqa: BLE001
                why = self._fail(shard, exc)
                raise Unavailable(f"{why}: the items of the other shards were written; retry the write (it is idempotent)") from None

        results = self._each(owning, one)
        size = sum(h.live.snapshot().size for h in self._handles if h is not None)
        return WriteResult(sum(r.upserted for r in results), sum(r.deleted for r in results), size, self._version())

    def ids(self, after: Any = None, limit: int = 1000) -> tuple[list, Any]:
        """One page of live ids over every shard, ascending, all after `after`: (ids, cursor), as
        `Collection.ids`. Unavailable while a shard is down (a page must not skip its ids)."""
        pages = self._each(range(self.layout.shards), lambda shard: self._handle(shard).ids(after, limit))
        merged = list(heapq.merge(*(page for page, _ in pages)))
        more = len(merged) > limit or any(cursor is not None for _, cursor in pages)
        page = merged[:limit]
        return page, (page[-1] if more and page else None)

    # -- describe ------------------------------------------------------------------------------

    def info(self) -> Info:
        """The shards' infos summed (sizes, rows) over the live shards, the first's settings and
        modes; `shards` the shard count, `damaged` naming any shard down."""
        infos = [handle.info() for handle in self._live()]
        first = infos[0]
        return Info(
            name=self.name,
            version=self._version(),
            size=sum(i.size for i in infos),
            dim=first.dim,
            partitions=first.partitions,
            version_size=sum(i.version_size for i in infos),
            segment_size=sum(i.segment_size for i in infos),
            deleted=sum(i.deleted for i in infos),
            id_kind=first.id_kind,
            source_model=first.source_model,
            text_queries=first.text_queries,
            has_texts=any(i.has_texts for i in infos),
            created_at=min(i.created_at for i in infos),
            settings=first.settings,
            modes=first.modes,
            dense_bytes_per_vector=first.dense_bytes_per_vector,
            swept_on=first.swept_on if all(i.swept_on for i in infos) else None,
            damaged=self.damaged,
            shards=self.layout.shards,
        )

    def _version(self) -> str:
        """The shards' serving versions joined with '+' (a shard down: '?')."""
        return "+".join(h.live.snapshot().version_name if h is not None else "?" for h in self._handles)

    # -- sweep, reindex, upkeep ------------------------------------------------------------------

    def sweep(
        self,
        queries: str | np.ndarray = "default",
        *,
        n: int = 300,
        budgets: list[str] | None = None,
        max_seconds: float | None = None,
        show_progress: bool = True,
    ) -> list[SweepPoint]:
        """Sweep every shard in turn (each serves `auto` from its own sweep; in turn, so one
        shard's timings are not another's load); returns the first shard's points."""
        points = [h.sweep(queries, n=n, budgets=budgets, max_seconds=max_seconds, show_progress=show_progress) for h in self._every()]
        return points[0]

    def sweep_points(self) -> tuple[str | None, list[SweepPoint]]:
        """The first live shard's sweep: (what it was calibrated on, its points)."""
        return self._live()[0].sweep_points()

    def keep_queries(self, queries: np.ndarray, limit: int = 10_000) -> int:
        """Add the queries to every live shard's traffic sample; returns the rows the first kept."""
        return [h.keep_queries(queries, limit) for h in self._live()][0]

    def report(self, path: Path | str) -> Path:
        """The first shard's sweep as a report (see `Collection.report`)."""
        return self._live()[0].report(path)

    def evaluate(self, queries: np.ndarray, budgets: list | None = None, qrels: list[dict] | None = None) -> list[EvalRow]:
        raise InvalidInput(f"collection {self.name!r} is sharded: evaluate it merged back (`vecdial shard -c {self.name} --shards 1`), or its sweep per shard")

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
        """Reindex every shard at once (see `Collection.reindex`), reported as one job: its
        progress the shards' mean; failed if any shard's failed (the others swapped: run it
        again to bring that one along). Unavailable (nothing started) while a shard is down."""
        arguments.one_of(settings, "settings", (BuildSettings, dict), 'a BuildSettings or a dict such as {"partitions": 64}')
        handles = self._every()
        started: list[Job] = []
        try:
            for handle in handles:
                started.append(handle.reindex(settings, min_recall=min_recall, budget=budget, wait=False, show_progress=False, ray=ray))
        except BaseException as exc:
            for job in started:
                job.cancel()
            running = [s.id for s in self.db._jobs.list() if s.collection == self.name and not s.finished]
            if isinstance(exc, AlreadyExists) and running:
                raise AlreadyExists(f"a reindex of {self.name!r} is running already (job {running[0]}): wait for it or cancel it") from None
            raise
        changes = settings if isinstance(settings, dict) else ({} if settings is None else settings.model_dump())
        job = Job(ShardedJob(self, started, self.db._jobs, changes))  # type: ignore[arg-type]
        job.start()
        if wait:
            job.wait(show_progress=show_progress)
        return job

    def repair(self, *, dry_run: bool = False) -> RepairReport:
        """Repair every shard's log; returns the first report that needed it, else the first."""
        reports = [h.repair(dry_run=dry_run) for h in self._every()]
        return next((r for r in reports if r.needed), reports[0])

    def backup(self, dest: str | Path) -> Path:
        """Copy the collection, every shard, into `dest/<name>` while it serves (see `Collection.backup`)."""
        target = Path(dest) / self.name
        if target.exists():
            raise AlreadyExists(f"{target} exists already: back up into another directory")
        handles = self._every()
        target.mkdir(parents=True)
        for handle in handles:
            handle.backup(CollectionDir(Path(dest), self.name).shards_dir)
        self.layout.save(target)
        return target

    def _every(self) -> list[Collection]:
        """Every shard's handle; Unavailable if one is down (what changes every shard needs all)."""
        return [self._handle(shard) for shard in range(self.layout.shards)]

    def close(self) -> None:
        self._pool.shutdown(wait=False)


class ShardedJob:
    """The shards' reindex jobs as one job: its status (in the data dir's job store, so every
    process and `GET /v1/jobs/{id}` see it) follows theirs; cancelling it cancels them."""

    def __init__(self, collection: ShardedCollection, jobs: list[Job], store: JobStore, changes: dict):
        self.collection = collection
        self.jobs = jobs
        self.store = store
        self.status = JobStatus(uuid.uuid4().hex, collection.name, changes)
        self.thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._lock = FileLock(store.lock_path(self.status.id))

    @property
    def id(self) -> str:
        return self.status.id

    def start(self) -> threading.Thread:
        self.store.dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        self.status.state, self.status.phase, self.status.started_at = "running", "running", time.time()
        self.status.from_version = "+".join(job.status.from_version or "?" for job in self.jobs)
        self.store.save(self.status)
        self.thread = threading.Thread(target=self.run, name=f"vecdial-reindex-{self.collection.name}", daemon=True)
        self.thread.start()
        return self.thread

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        try:
            while True:
                if self._cancel.is_set() or self.store.cancel_requested(self.id):
                    for job in self.jobs:
                        job.cancel()
                statuses = [job.status for job in self.jobs]
                if all(s.finished for s in statuses):
                    break
                self.status.progress = round(sum(s.progress for s in statuses) / len(statuses), 4)
                self.status.phase = ", ".join(sorted({s.phase for s in statuses}))
                self.store.save(self.status)
                time.sleep(0.25)
            for job in self.jobs:
                if job._job.thread is not None:
                    job._job.thread.join()
            self._finish([job.status for job in self.jobs])
        finally:
            self.store.dir.joinpath(f"{self.id}.cancel").unlink(missing_ok=True)
            self._lock.release()

    def _finish(self, statuses: list[JobStatus]) -> None:
        states = {s.state for s in statuses}
        state = "failed" if "failed" in states else "cancelled" if "cancelled" in states else "succeeded"
        names = self.collection.shard_names
        self.status.message = "; ".join(f"{name}: {s.message}" for name, s in zip(names, statuses))
        if state == "failed":
            failed = [name for name, s in zip(names, statuses) if s.state == "failed"]
            others = "the others swapped: run the reindex again" if len(failed) < len(statuses) else "every shard keeps its version"
            self.status.message = f"shard(s) {', '.join(failed)} failed, {others}. " + self.status.message
        self.status.to_version = "+".join(s.to_version or s.from_version or "?" for s in statuses)
        self.status.vectors = sum(s.vectors or 0 for s in statuses)
        self.status.state, self.status.phase, self.status.finished_at = state, "done", time.time()  # type: ignore[assignment]
        self.status.progress = 1.0 if state == "succeeded" else self.status.progress
        self.store.save(self.status)


def drop_sharded(collection: CollectionDir) -> None:
    """Delete a sharded collection and every shard; refused while a reindex of a shard runs."""
    from vecdial.indexer.live.collection import reindex_lock_path
    from vecdial.indexer.disk.locks import is_locked

    layout = ShardLayout.load(collection.path)
    for shard in range(layout.shards):
        if is_locked(reindex_lock_path(CollectionDir(collection.shards_dir, shard_dir_name(shard)))):
            raise AlreadyExists(f"a reindex of {collection.name!r} is running: cancel it (or wait) before dropping")
    shutil.rmtree(collection.path)
