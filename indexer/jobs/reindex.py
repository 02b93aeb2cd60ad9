"""Reindex jobs: rebuild a live collection with new compression settings, then swap.

snapshot (version + log prefix, minus deletes; its checksums verified, so a damaged
version is never folded into a fresh one) -> export full vectors (and ids, texts,
payloads) in batches ->
`build_version` (the one build path, staged under a temp name) -> validate -> under
the write lock (`swap.swap_in`): name the version, start its log with the records
written since the snapshot, point CURRENT at it -> prune.

Searches never wait for a job and never see a half-built index: the new version
is invisible until CURRENT names it, and every reader keeps the snapshot it
started with. A failed or cancelled job removes what it built and leaves the old
version (and its log) serving; a killed one leaves leftovers that the next job or
open removes (`swap.clean_leftovers`) and that no job mistakes for a version.

Job statuses are JSON files under `<data_dir>/.jobs/`, so every server worker
and the CLI see every job; a job holds `<id>.lock` while it runs, so a status
left "running" by a process that died is reported as failed. Cancelling sets a
threading.Event in the job's own process and drops a `<id>.cancel` marker for
the others; the job checks both between batches.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.disk.integrity import verify_files
from vecdial.indexer.disk.locks import FileLock
from vecdial.indexer.disk.sweep_file import write_sweep
from vecdial.indexer.disk.version import Version, full_vectors, open_version
from vecdial.indexer.errors import AlreadyExists, CorruptIndex, InvalidInput, VecdialError
from vecdial.indexer.eval.sweep import candidate_budgets, run_sweep, sweep_queries
from vecdial.indexer.io.readers import Dataset
from vecdial.indexer.jobs.build import StagedVersion, build_version
from vecdial.indexer.jobs.store import JobStateName, JobStatus, JobStore
from vecdial.indexer.jobs.swap import clean_leftovers, swap_in
from vecdial.indexer.live.collection import LiveCollection, LiveSnapshot
from vecdial.indexer.live.wal import WriteAheadLog
from vecdial.indexer.modes import build_settings_of
from vecdial.indexer.modes.settings import BuildSettings
from vecdial.indexer.plan.budget import AutoBudget, format_budget, parse_budget
from vecdial.indexer.plan.execute import View, search
from vecdial.indexer.plan.per_query import make_bins
from vecdial.indexer.vectors import Rows

log = logging.getLogger("vecdial.jobs")

REPORT_EVERY_S = 0.25
VALIDATION_QUERIES = 32

# Share of the progress bar each phase fills.
PHASES = {
    "snapshot": (0.0, 0.02),
    "export": (0.02, 0.25),
    "build": (0.25, 0.88),
    "validate": (0.88, 0.9),
    "calibrate": (0.9, 0.98),
    "swap": (0.98, 1.0),
}
# Stored documents the new version is calibrated on (each leaving itself out), for the recall gate and auto.
CALIBRATION_QUERIES = 300
DEFAULT_GATE_BUDGET = "binary:rescore=10"


class JobCancelled(Exception):
    """Raised inside a job when cancellation was asked for; never leaves the job."""


class RecallGateFailed(VecdialError):
    """The new version's calibrated recall is below the job's min_recall: it is not swapped in."""


class ReindexJob:
    """One reindex of one collection. Make it with `start_reindex` (locks taken), then
    `run()` in the foreground or `start()` in a thread; `cancel()` from anywhere."""

    def __init__(
        self,
        collection: Collection,
        changes: dict[str, Any],
        store: JobStore,
        on_update: Callable[[JobStatus], None] | None = None,
        live: LiveCollection | None = None,
        min_recall: float | None = None,
        budget: str | None = None,
        ray: str | None = None,
    ):
        self.collection = collection
        self.ray = ray  # build on this Ray cluster (indexer/scale); None: in this process
        self.changes = dict(changes)
        self.min_recall, self.budget = min_recall, budget
        self.store = store
        self.on_update = on_update
        self.live = live
        self.status = JobStatus(id=uuid.uuid4().hex, collection=collection.name, settings=dict(changes))
        self._cancel = threading.Event()
        self._job_lock = FileLock(store.lock_path(self.status.id))
        self._collection_lock = FileLock(collection.layout.reindex_lock)
        self._last_report = 0.0
        self.thread: threading.Thread | None = None

    @property
    def id(self) -> str:
        return self.status.id

    def cancel(self) -> None:
        self._cancel.set()

    def start(self) -> threading.Thread:
        self.thread = threading.Thread(target=self.run, name=f"reindex-{self.collection.name}", daemon=True)
        self.thread.start()
        return self.thread

    def run(self) -> JobStatus:
        """Run to the end; never raises (the outcome is in the returned status)."""
        staged: StagedVersion | None = None
        export: Path | None = None
        outcome: tuple[JobStateName, str] = ("failed", "ended without an outcome")
        try:
            self._update(state="running", phase="snapshot", started_at=time.time())
            live = self.live or LiveCollection(self.collection, verify_checksums=True)
            live.refresh()  # every write acknowledged so far, by any process
            snapshot = live.snapshot()
            verify_files(snapshot.version.path, snapshot.version.manifest)  # once per version per process
            settings = build_settings_of(snapshot.version.manifest).changed(self.changes)
            self._update(from_version=snapshot.version_name, settings=settings.model_dump())
            export = self.collection.layout.export(self.id)
            exported = self._export(snapshot, export)
            reads = len(exported.ids) + min(len(exported.ids), settings.sample_size)  # the sample, then every batch
            watched = WatchedVectors(exported.vectors, lambda rows: self._progress("build", rows / reads))
            dataset = dataclasses.replace(exported, vectors=watched)
            self._update(phase="build", vectors=len(dataset.ids))
            staged = self._build(dataset, settings)
            self._update(phase="validate")
            built = open_version(staged.path, verify_checksums=True)
            validate_version(built, exported.vectors)
            gate = self._calibrate(built, swept=snapshot.view.sweep is not None)
            name = self._swap(snapshot, staged)
            outcome = ("succeeded", f"{snapshot.version_name} -> {name}: {len(dataset.ids)} vectors{gate}")
        except JobCancelled:
            outcome = ("cancelled", "cancelled; the previous version keeps serving")
        except VecdialError as exc:
            outcome = ("failed", str(exc))
        except Exception as exc:  # an unexpected bug must still end the job, not hang it
            log.exception("reindex %s of %s failed", self.id, self.collection.name)
            outcome = ("failed", f"{type(exc).__name__}: {exc}")
        finally:
            if staged is not None:
                staged.close()  # removes it unless it was published
            if export is not None:
                export.unlink(missing_ok=True)
            self.store.dir.joinpath(f"{self.id}.cancel").unlink(missing_ok=True)
            self._collection_lock.release()
        # Reported last: whoever sees the job finished (another process polling its status, a
        # remote client) may drop or reindex the collection at once, its lock free.
        try:
            self._finish(*outcome)
        finally:
            self._job_lock.release()
        return self.status

    # -- phases ------------------------------------------------------------------------------

    def _calibrate(self, version: Version, swept: bool) -> str:
        """Sweep the new version (so `auto` keeps working after the swap) when the old one was
        swept or a recall gate was asked for; with `min_recall`, refuse a version whose gate
        budget's recall lower bound falls short (RecallGateFailed: the job fails saying why,
        the old version keeps serving). Returns what the gate measured, for the job's message."""
        if self.min_recall is None and not swept:
            return ""
        self._update(phase="calibrate")
        gate = format_budget(parse_budget(self.budget or DEFAULT_GATE_BUDGET))
        budgets = candidate_budgets(version)
        budgets = budgets if gate in budgets else [gate, *budgets]
        calibration = sweep_queries(version, "default", CALIBRATION_QUERIES, self.collection.path)
        bins = make_bins(version.partitions, calibration.queries)  # per-query auto survives the reindex too
        points = run_sweep(
            View(version, version.name),
            calibration.queries,
            budgets,
            calibration.exclude_rows,
            miss_factor=calibration.miss_factor,
            bins=bins,
        )
        write_sweep(
            version.path,
            points,
            f"{calibration.source}, at reindex {time.strftime('%Y-%m-%d %H:%M:%S')}",
            None if bins is None else bins[0],
        )
        if self.min_recall is None:
            return ""
        point = next(p for p in points if p.budget == gate)
        if point.trusted_recall < self.min_recall:
            raise RecallGateFailed(
                f"the new version misses min_recall={self.min_recall:g}: {point.describe()}; "
                "it was discarded and the previous version keeps serving"
            )
        return f"; recall gate met: {point.describe()}"

    def _build(self, dataset: Dataset, settings: BuildSettings) -> StagedVersion:
        """The one build path, its per-row passes on Ray when the job asks for it."""
        from vecdial.indexer.scale.engines import engine_for

        engine = engine_for(self.ray)
        try:
            return build_version(dataset, self.collection.versions_dir, settings, show_progress=False, engine=engine)
        finally:
            if engine is not None:
                engine.close()

    def _export(self, snapshot: LiveSnapshot, path: Path) -> Dataset:
        self._update(phase="export")
        return export_live(snapshot, path, self.collection.name, lambda fraction: self._progress("export", fraction))

    def _swap(self, snapshot: LiveSnapshot, staged: StagedVersion) -> str:
        """The only step that touches what readers see, under the write lock: name the
        version, start its log with the writes made since the snapshot, swap CURRENT."""
        self._update(phase="swap")
        self._check_cancel()  # last chance; after this the job completes
        with FileLock(self.collection.layout.write_lock):
            current = self.collection.current_version_name()
            if current != snapshot.version_name:
                raise InvalidInput(
                    f"collection {self.collection.name!r} moved to version {current} while this job ran; run the reindex again"
                )
            old_log = WriteAheadLog(self.collection.layout.log(snapshot.version_name))
            tail = old_log.read(snapshot.wal_end)
            name = swap_in(self.collection, staged, lambda target: old_log.copy_tail(snapshot.wal_end, tail.end, target))
        self.status.to_version = name
        return name

    # -- reporting ---------------------------------------------------------------------------

    def _check_cancel(self) -> None:
        if self._cancel.is_set() or self.store.cancel_requested(self.id):
            raise JobCancelled

    def _progress(self, phase: str, fraction: float) -> None:
        """Called between batches: the place where cancellation takes effect."""
        self._check_cancel()
        low, high = PHASES[phase]
        progress = round(low + (high - low) * min(max(fraction, 0.0), 1.0), 4)
        if time.monotonic() - self._last_report >= REPORT_EVERY_S:
            self._update(progress=progress)
        else:
            self.status.progress = progress

    def _update(self, **changes: Any) -> None:
        if "phase" in changes and "progress" not in changes:
            changes["progress"] = PHASES.get(changes["phase"], (self.status.progress,))[0]
        for key, value in changes.items():
            setattr(self.status, key, value)
        self._last_report = time.monotonic()
        self.store.save(self.status)
        if self.on_update is not None:
            self.on_update(self.status)

    def _finish(self, state: JobStateName, message: str) -> None:
        progress = 1.0 if state == "succeeded" else self.status.progress
        self._update(state=state, phase="done", message=message, progress=progress, finished_at=time.time())
        log.info("reindex %s of %s %s: %s", self.id, self.collection.name, state, message)


def start_reindex(
    data_dir: Path,
    name: str,
    changes: dict[str, Any],
    store: JobStore | None = None,
    on_update: Callable[[JobStatus], None] | None = None,
    live: LiveCollection | None = None,
    min_recall: float | None = None,
    budget: str | None = None,
    ray: str | None = None,
) -> ReindexJob:
    """Check the request, take the collection's reindex lock and record the job as queued.

    `live`: the collection already open in this process, if any (saves opening
    the version a second time). `min_recall`: swap the new version in only if the
    95% lower bound of recall@10 of `budget` (default binary:rescore=10), measured on
    stored documents, meets it. `ray`: run the build's per-row passes on that Ray cluster
    ("auto", "host:port" or "local"; see indexer/scale). Raises NotFound (no such collection),
    InvalidInput (bad settings) or AlreadyExists (a reindex of this collection
    is running) before anything starts.
    """
    collection = Collection(data_dir, name)
    collection.current_version_name()  # NotFound early
    BuildSettings().changed(changes)
    if min_recall is not None and not 0 < min_recall <= 1:
        raise InvalidInput(f"min_recall={min_recall}: give a recall@10 between 0 and 1")
    if budget is not None:
        if isinstance(parse_budget(budget), AutoBudget):  # BudgetError for a bad one, before anything starts
            raise InvalidInput("budget: name the budget the gate measures (auto is chosen by the sweep the gate makes)")
    job = ReindexJob(collection, changes, store or JobStore(data_dir), on_update, live, min_recall, budget, ray)
    if not job._collection_lock.acquire(blocking=False):  # held until the job ends
        running = [s.id for s in job.store.list() if s.collection == name and not s.finished]
        raise AlreadyExists(
            f"a reindex or build of {name!r} is running already ({'job ' + running[0] if running else 'started elsewhere'}): wait for it or cancel it"
        )
    try:
        job.store.dir.mkdir(parents=True, exist_ok=True)
        job._job_lock.acquire()
        clean_leftovers(collection, job_lock_held=True)  # what jobs killed earlier left behind
        job.store.prune()
        job._update()
    except BaseException:
        job._job_lock.release()
        job._collection_lock.release()
        raise
    return job


def export_live(
    snapshot: LiveSnapshot, path: Path, name: str, on_batch: Callable[[float], None] = lambda fraction: None, batch: int = 8192
) -> Dataset:
    """A snapshot's live vectors (version rows not deleted, then the segment) as one memory-mapped
    .npy at `path`, with their ids, texts and payloads: every acknowledged write the snapshot holds.
    on_batch(fraction done) runs between batches (where a job checks for cancellation)."""
    version, segment = snapshot.version, snapshot.segment
    rows = snapshot.alive_version_rows()
    seg_rows = segment.alive_rows()
    total = len(rows) + len(seg_rows)
    if total == 0:
        raise InvalidInput(f"collection {name!r} has no live vectors left to index: drop it instead")
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(total, version.dim))
    for start in range(0, len(rows), batch):
        on_batch(start / total)
        chunk = rows[start : start + batch]
        out[start : start + len(chunk)] = full_vectors(version, chunk)
    on_batch(len(rows) / total)
    out[len(rows) :] = segment.unit[seg_rows]
    out.flush()
    seg_ids = [segment.ids[r] for r in seg_rows]
    if version.manifest.id_kind == "int":
        ids = np.concatenate([np.asarray(version.ids[rows], dtype=np.int64), np.asarray(seg_ids, dtype=np.int64)])
    else:
        ids = np.concatenate([np.asarray(version.ids[rows]).astype(str), np.asarray(seg_ids, dtype=str)])
    texts = None
    if version.manifest.has_texts or any(segment.texts[r] is not None for r in seg_rows):
        texts = version.texts(rows) + [segment.texts[r] for r in seg_rows]
    payloads = snapshot.view.version_payloads().take(rows).concat(segment.payload_table.take(seg_rows))
    return Dataset(ids, np.load(path, mmap_mode="r"), texts, version.manifest.source_model, payloads if payloads.types else None)


def validate_version(version: Version, vectors: Rows) -> None:
    """A built version must hold every vector and find a sample of them at the top, exactly."""
    if version.size != len(vectors):
        raise CorruptIndex(f"new version holds {version.size} vectors, expected {len(vectors)}")
    rows = np.unique(np.linspace(0, len(vectors) - 1, num=min(VALIDATION_QUERIES, len(vectors))).astype(np.int64))
    result = search(View(version, version.name), np.asarray(vectors[rows], dtype=np.float32), k=1, budget="exact")
    worst = float(result.scores[:, 0].min())
    if worst < 0.99:
        raise CorruptIndex(f"new version failed validation: a stored vector's best match scores {worst:.3f}, expected ~1")


class WatchedVectors:
    """The exported vectors as build_version reads them, with progress and cancellation.

    build_version reads its input in batches (`vectors[start:stop]`, and a sample
    first); routing those reads through here lets a job report progress and stop
    between batches without a second build path. Everything else is delegated.
    """

    def __init__(self, array: Rows, on_rows: Callable[[int], None]):
        self.array = array
        self._on_rows = on_rows
        self._rows_read = 0

    def __getitem__(self, key: Any) -> np.ndarray:
        out = self.array[key]
        self._rows_read += len(out) if getattr(out, "ndim", 0) > 1 else 1
        self._on_rows(self._rows_read)
        return out

    def __len__(self) -> int:
        return len(self.array)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.asarray(self.array, dtype=dtype)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.array, name)
