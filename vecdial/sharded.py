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
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vecdial import arguments
from vecdial.collection import Collection, Texts
from vecdial.indexer.disk.collection import Collection as CollectionDir
from vecdial.indexer.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    Unavailable,
)
from vecdial.indexer.eval.evaluate import EvalRow
from vecdial.indexer.filters.table import check_payloads
from vecdial.indexer.io.checks import check_ids, check_texts, check_vectors
from vecdial.indexer.live.collection import WriteResult
from vecdial.indexer.live.repair import RepairReport
from vecdial.indexer.modes.settings import BuildSettings
from vecdial.indexer.plan.calibration import SweepPoint
from vecdial.indexer.plan.execute import MAX_K, Hits
from vecdial.indexer.scale.shards import (
    ShardAnswer,
    ShardLayout,
    merge_shard_hits,
    shard_of,
)
from vecdial.info import Info
from vecdial.job import Job
from vecdial.shard_handles import PROBE_EVERY, SERIAL_MS, ShardHandles

if TYPE_CHECKING:
    from vecdial.api import Database


class ShardedCollection:
    """One collection held as N shard collections: search, write, sweep, reindex, describe, as
    `Collection` does. Shard i is the ordinary collection `shard<i>` in `<name>/shards/`."""

    def __init__(self, db: Database, collection: CollectionDir):
        from vecdial.api import Database

        self.db = db
        self._name = collection.name
        self._dir = collection
        self.layout = ShardLayout.load(collection.path)
        self.parts = ShardHandles(
            collection.name, Database(collection.shards_dir, verify_checksums=db.verify_checksums), self.layout.shards
        )
        self.shards, self.shard_names = self.parts.db, self.parts.names
        self._serial_ms: dict[str, float] = {}  # one-query searches run in turn: the slowest shard's ms, by budget mode
        self._searches = 0

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
        return self.parts.damaged()

    def __repr__(self) -> str:
        return f"<vecdial.ShardedCollection {self.name!r} ({self.layout.shards} shards)>"

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
        options: dict[str, Any] = {
            "with_text": with_text,
            "threads": threads,
            "filter": filter,
            "with_payload": with_payload,
            "hybrid": hybrid,
            "texts": texts,
            "steer": steer,
            "explain_features": explain_features,
        }
        start = time.perf_counter()

        def one(shard: int) -> ShardAnswer:
            name = self.shard_names[shard]
            try:
                handle = self.parts.handle(shard)
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
                return ShardAnswer(name, missing=self.parts.fail(shard, NotFound(f"shard {name} is gone")))
            except Exception as exc:  # noqa: BLE001 - any other failure is this shard's: the others answer
                return ShardAnswer(name, missing=self.parts.fail(shard, exc))
            return ShardAnswer(name, hits, (time.perf_counter() - began) * 1000)

        one_query = np.ndim(queries) == 1 or len(queries) == 1
        mode = (budget.split(":", 1)[0] if isinstance(budget, str) else str(getattr(budget, "mode", budget))) if one_query else None
        # In turn while the shards' one-query searches in this mode (timed in turn: at once, the GIL
        # handoffs inflate them; a moving mean, so one slow query does not flip it) take under
        # SERIAL_MS; at once otherwise, one query in PROBE_EVERY timed in turn again.
        self._searches += 1
        serial = mode is not None and (self._serial_ms.get(mode, 0.0) < SERIAL_MS or self._searches % PROBE_EVERY == 0)
        answers = self.parts.each(range(self.layout.shards), one, serial=serial)
        if serial and mode is not None:
            slowest = max(a.ms for a in answers)
            self._serial_ms[mode] = 0.8 * self._serial_ms.get(mode, slowest) + 0.2 * slowest
        missing = [a.missing for a in answers if a.hits is None]
        if missing and (not self.partial or len(missing) == len(answers)):
            rule = "" if self.partial else " (this collection answers only with every shard: partial is false)"
            raise Unavailable("; ".join(m for m in missing if m) + rule + ": retry later, or repair the shard")
        return merge_shard_hits(answers, k, (time.perf_counter() - start) * 1000)

    def encode(self, texts: Texts) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors, for a collection built with the bundled model."""
        return self.parts.live()[0].encode(texts)

    def features(self, query: str | None = None, limit: int = 50) -> list[dict]:
        """The labelled features of the first live shard's sparse codes (each shard learns its own)."""
        return self.parts.live()[0].features(query, limit)

    # -- writes --------------------------------------------------------------------------------

    def upsert(
        self,
        ids: Sequence,
        vectors: np.ndarray | None = None,
        *,
        texts: Sequence[str | None] | None = None,
        payloads: Sequence[dict | None] | None = None,
    ) -> WriteResult:
        """Add or replace items by id, each in the shard owning it; durable in every owning
        shard's log when this returns. Unavailable (nothing written) if an owning shard is down.
        Without vectors, `texts` are encoded with the bundled model."""
        ids = arguments.listed(ids, "ids", '["a", "b"] or [1, 2]')
        if texts is not None:
            texts = arguments.listed(texts, "texts", '["a text", None]')
        if payloads is not None:
            payloads = arguments.listed(payloads, "payloads", '[{"module": "os"}, None]')
        first = self.parts.live()[0]
        snapshot = first._live.snapshot()
        ids = check_ids(ids, snapshot.version.manifest.id_kind)  # all checked before any shard writes
        check_texts(texts, len(ids))
        check_payloads(None if payloads is None else list(payloads), len(ids), snapshot.segment.payload_types)
        if vectors is None:
            if texts is None or any(t is None for t in texts):
                raise InvalidInput("send vectors, or a text for every item to encode")
            vectors = self.encode(list(texts))
        vectors = check_vectors(vectors, len(ids), snapshot.version.dim)

        def write(handle: Collection, rows: np.ndarray) -> WriteResult:
            picked = rows.tolist()
            return handle.upsert(
                [ids[r] for r in picked],
                vectors[rows],
                texts=None if texts is None else [texts[r] for r in picked],
                payloads=None if payloads is None else [payloads[r] for r in picked],
            )

        return self._route(ids, write)

    def delete(self, ids: Sequence) -> WriteResult:
        """Remove items by id from the shards owning them (unknown ids are ignored); durable when
        this returns. Unavailable (nothing deleted) if an owning shard is down."""
        ids = arguments.listed(ids, "ids", '["a", "b"] or [1, 2]')
        ids = check_ids(ids, self.parts.live()[0]._live.snapshot().version.manifest.id_kind)  # before hashing them
        return self._route(ids, lambda handle, rows: handle.delete([ids[r] for r in rows.tolist()]))

    def _route(self, ids: list, write: Callable[[Collection, np.ndarray], WriteResult]) -> WriteResult:
        """write(shard handle, rows of `ids` it owns) on every owning shard at once."""
        owner = shard_of(ids, self.layout.shards) if ids else np.zeros(0, dtype=np.int64)
        owning = [int(s) for s in np.unique(owner)] or [0]
        handles = {shard: self.parts.handle(shard) for shard in owning}  # Unavailable here writes nothing

        def one(shard: int) -> WriteResult:
            try:
                return write(handles[shard], np.flatnonzero(owner == shard))
            except InvalidInput:
                raise
            except Exception as exc:  # noqa: BLE001
                why = self.parts.fail(shard, exc)
                raise Unavailable(f"{why}: the items of the other shards were written; retry the write (it is idempotent)") from None

        results = self.parts.each(owning, one)
        size = sum(h._live.snapshot().size for h in self.parts.handles if h is not None)
        return WriteResult(sum(r.upserted for r in results), sum(r.deleted for r in results), size, self._version())

    def ids(self, after: Any = None, limit: int = 1000) -> tuple[list, Any]:
        """One page of live ids over every shard, ascending, all after `after`: (ids, cursor), as
        `Collection.ids`. Unavailable while a shard is down (a page must not skip its ids)."""
        pages = self.parts.each(range(self.layout.shards), lambda shard: self.parts.handle(shard).ids(after, limit))
        merged = list(heapq.merge(*(page for page, _ in pages)))
        more = len(merged) > limit or any(cursor is not None for _, cursor in pages)
        page = merged[:limit]
        return page, (page[-1] if more and page else None)

    # -- describe ------------------------------------------------------------------------------

    def info(self) -> Info:
        """The shards' infos summed (sizes, rows) over the live shards, the first's settings and
        modes; `shards` the shard count, `damaged` naming any shard down."""
        infos = [handle.info() for handle in self.parts.live()]
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
        return self.parts.version()

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
        points = [h.sweep(queries, n=n, budgets=budgets, max_seconds=max_seconds, show_progress=show_progress) for h in self.parts.every()]
        return points[0]

    def sweep_points(self) -> tuple[str | None, list[SweepPoint]]:
        """The first live shard's sweep: (what it was calibrated on, its points)."""
        return self.parts.live()[0].sweep_points()

    def keep_queries(self, queries: np.ndarray, limit: int = 10_000) -> int:
        """Add the queries to every live shard's traffic sample; returns the rows the first kept."""
        return [h.keep_queries(queries, limit) for h in self.parts.live()][0]

    def report(self, path: Path | str) -> Path:
        """The first shard's sweep as a report (see `Collection.report`)."""
        return self.parts.live()[0].report(path)

    def evaluate(self, queries: np.ndarray, budgets: list | None = None, qrels: list[dict] | None = None) -> list[EvalRow]:
        raise InvalidInput(
            f"collection {self.name!r} is sharded: evaluate it merged back (`vecdial shard -c {self.name} --shards 1`), or its sweep per shard"
        )

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
        handles = self.parts.every()
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
        from vecdial.sharded_job import ShardedJob

        job = Job(ShardedJob(self, started, self.db._jobs, changes))  # type: ignore[arg-type]
        job.start()
        if wait:
            job.wait(show_progress=show_progress)
        return job

    def repair(self, *, dry_run: bool = False) -> RepairReport:
        """Repair every shard's log; returns the first report that needed it, else the first."""
        reports = [h.repair(dry_run=dry_run) for h in self.parts.every()]
        return next((r for r in reports if r.needed), reports[0])

    def backup(self, dest: str | Path) -> Path:
        """Copy the collection, every shard, into `dest/<name>` while it serves (see `Collection.backup`)."""
        target = Path(dest) / self.name
        if target.exists():
            raise AlreadyExists(f"{target} exists already: back up into another directory")
        handles = self.parts.every()
        target.mkdir(parents=True)
        for handle in handles:
            handle.backup(CollectionDir(Path(dest), self.name).shards_dir)
        self.layout.save(target)
        return target

    def close(self) -> None:
        self.parts.close()
