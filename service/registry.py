"""What one server process holds open: its collections and the jobs it runs.

Collections are opened once and cached as `LiveCollection`s. Before a request
uses one, the registry asks it to `refresh()`: two `stat` calls when nothing
changed; a replay of new log records when another worker wrote; a reopen when
CURRENT names a new version (a reindex swapped, possibly in another process).
That is how every worker serves every acknowledged write and every swap.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from vecdial.indexer.jobs.settings import BuildSettings
from vecdial.indexer.disk.collection import Collection, list_collections, validate_name
from vecdial.indexer.errors import NotFound, VecdialError
from vecdial.indexer.jobs.reindex import JobStatus, JobStore, ReindexJob, start_reindex
from vecdial.indexer.live.collection import LiveCollection, create_collection, drop_collection
from vecdial.indexer.io.readers import Dataset
from vecdial.service import metrics

log = logging.getLogger("vecdial.registry")


class CollectionRegistry:
    """Open collections of one data directory, shared by every request of this process."""

    def __init__(self, data_dir: Path, verify_checksums: bool = False, refresh_interval_s: float = 0.0):
        self.data_dir = Path(data_dir)
        self.verify_checksums = verify_checksums
        self.refresh_interval_s = refresh_interval_s
        self._open: dict[str, LiveCollection] = {}
        self._checked: dict[str, float] = {}
        self._lock = threading.Lock()
        self._opening: dict[str, threading.Lock] = {}

    def names(self) -> list[str]:
        return list_collections(self.data_dir)

    def loaded(self) -> list[LiveCollection]:
        return list(self._open.values())

    def get(self, name: str) -> LiveCollection:
        """The named collection, current with every write and swap on disk; NotFound if there is none."""
        validate_name(name)
        live = self._open.get(name)
        if live is None:
            return self._load(name)
        now = time.monotonic()
        if now - self._checked.get(name, 0.0) >= self.refresh_interval_s:
            before = live.snapshot().version_name
            try:
                live.refresh()
            except NotFound:
                self._forget(name)
                raise
            self._checked[name] = now
            if live.snapshot().version_name != before:
                metrics.SWAPS.labels(name).inc()
                log.info("collection moved to a new version", extra={"collection": name, "version": live.snapshot().version_name})
        return live

    def preload(self) -> None:
        """Open every collection now, so first queries do not pay for it; log (not raise) failures."""
        for name in self.names():
            try:
                self.get(name)
            except VecdialError as exc:
                log.error("cannot open collection at startup: %s", exc, extra={"collection": name})

    def create(self, name: str, dataset: Dataset, settings: BuildSettings) -> LiveCollection:
        create_collection(Collection(self.data_dir, name), dataset, settings)
        return self.get(name)

    def drop(self, name: str) -> None:
        drop_collection(Collection(self.data_dir, name))
        self._forget(name)

    def _load(self, name: str) -> LiveCollection:
        with self._lock:
            gate = self._opening.setdefault(name, threading.Lock())
        with gate:  # one opener per name; others wait and share its result
            live = self._open.get(name)
            if live is None:
                live = LiveCollection(Collection(self.data_dir, name), self.verify_checksums)
                self._open[name] = live
                self._checked[name] = time.monotonic()
        return live

    def _forget(self, name: str) -> None:
        self._open.pop(name, None)
        self._checked.pop(name, None)


class JobBoard:
    """Starts reindex jobs in background threads and answers for every job on disk."""

    def __init__(self, registry: CollectionRegistry):
        self.registry = registry
        self.data_dir = registry.data_dir
        self.store = JobStore(self.data_dir)
        self._running: dict[str, ReindexJob] = {}

    def start_reindex(self, name: str, changes: dict[str, Any]) -> JobStatus:
        live = self.registry.get(name)  # validates the name; NotFound if there is no such collection
        job = start_reindex(self.data_dir, name, changes, self.store, on_update=self._on_update, live=live)
        self._running[job.id] = job
        job.start()
        return job.status

    def get(self, job_id: str) -> JobStatus:
        return self.store.load(job_id)

    def list(self, limit: int = 100) -> list[JobStatus]:
        return self.store.list(limit)

    def cancel(self, job_id: str) -> JobStatus:
        """Ask a job to stop at its next batch; works for jobs of other workers too."""
        job = self._running.get(job_id)
        if job is not None:
            job.cancel()
        return self.store.request_cancel(job_id)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel this process's running jobs and wait for them to clean up."""
        for job in list(self._running.values()):
            job.cancel()
        for job in list(self._running.values()):
            if job.thread is not None:
                job.thread.join(timeout)

    def _on_update(self, status: JobStatus) -> None:
        if status.finished:
            self._running.pop(status.id, None)
            metrics.JOBS.labels(status.kind, status.state).inc()
