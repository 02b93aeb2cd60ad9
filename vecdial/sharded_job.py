"""A sharded collection's reindex as one job, and its drop (vecdial/sharded.py)."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from typing import TYPE_CHECKING

from vecdial.indexer.disk.collection import Collection as CollectionDir
from vecdial.indexer.disk.layout import shard_name
from vecdial.indexer.disk.locks import FileLock, is_locked
from vecdial.indexer.errors import AlreadyExists
from vecdial.indexer.jobs.store import JobStatus, JobStore
from vecdial.indexer.scale.shards import ShardLayout
from vecdial.job import Job

if TYPE_CHECKING:
    from vecdial.sharded import ShardedCollection


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
        """Cancel every shard's job now, not at the next poll: a shard's build may be about to swap."""
        self._cancel.set()
        for job in self.jobs:
            job.cancel()

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
    layout = ShardLayout.load(collection.path)
    for shard in range(layout.shards):
        if is_locked(CollectionDir(collection.shards_dir, shard_name(shard)).layout.reindex_lock):
            raise AlreadyExists(f"a reindex of {collection.name!r} is running: cancel it (or wait) before dropping")
    shutil.rmtree(collection.path)
