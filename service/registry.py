"""What one server process holds: a `vecdial.Database`, the handles it serves, the jobs it runs.

Handles are `vecdial.Collection`s from `db.open(name)`, opened once per process.
A handle catches up with its collection's log and CURRENT pointer before every
search and write (a few `stat` calls, ~4 us, when nothing changed), so every
worker serves every acknowledged write and every swap, whichever process made it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import vecdial
from vecdial import CorruptIndex, JobStatus, VecdialError
from vecdial._internal import JobStore, cached
from vecdial.service import metrics

log = logging.getLogger("vecdial.registry")


def warm_up(handle: vecdial.Collection) -> None:
    """Load every kernel the collection's modes run, and the encoder where it takes text queries,
    before /readyz says ready, not during a request (`Collection.warm_up`)."""
    budgets = handle.warm_up()
    log.debug("warmed up %s: %s", handle.name, ", ".join(budgets))


# One-vector searches measured faster than this run on the event loop (see `Collections.quick`).
INLINE_MS = 2.0


class Collections:
    """The collections of one data directory, as this process serves them."""

    def __init__(self, db: vecdial.Database):
        self.db = db
        self._dims: dict[str, int] = {}
        self._versions: dict[str, str] = {}
        self._search_ms: dict[tuple[str, str], float] = {}
        self.broken: dict[str, str] = {}  # name -> why it cannot be opened (a damaged file, named)

    def names(self) -> list[str]:
        return self.db.list()

    def loaded(self) -> list[vecdial.Collection]:
        return self.db.opened()

    def cached(self, name: str) -> vecdial.Collection | None:
        """The handle if this process has opened `name` already: a dict lookup, never I/O."""
        return cached(self.db, name)

    def open(self, name: str) -> vecdial.Collection:
        """Open (or return) the handle; blocking I/O the first time. NotFound if there is none."""
        handle = cached(self.db, name)
        if handle is None:
            try:
                handle = self.db.open(name)
            except CorruptIndex as exc:
                self.broken[name] = self._relative(str(exc))
                raise
            self._remember(handle)
        return handle

    def dim(self, handle: vecdial.Collection) -> int:
        """The collection's dim (fixed across its versions), remembered when it was opened."""
        dim = self._dims.get(handle.name)
        return dim if dim is not None else handle.info().dim  # forgotten meanwhile: ask (NotFound if dropped)

    def preload(self) -> None:
        """Open every collection now, so first queries do not pay for it. One that cannot be
        opened (a bad checksum, a truncated file, anything else) is logged and kept in `broken`
        for /readyz and /metrics, and the others serve: one damaged collection never keeps the
        server from starting. A later request to it tries again (it may have been rebuilt)."""
        for name in self.names():
            try:
                warm_up(self.open(name))
            except Exception as exc:  # noqa: BLE001 - isolation is the point: whatever it is, it is this collection's
                if not isinstance(exc, VecdialError):
                    self.broken[name] = self._relative(f"{type(exc).__name__}: {exc}")
                log.error("cannot open collection at startup: %s", self.broken.get(name, exc), extra={"collection": name})

    def unservable(self) -> dict[str, str]:
        """Collections that exist but could not be opened, with why (not those dropped since)."""
        if not self.broken:
            return {}
        present = set(self.names())
        return {name: error for name, error in self.broken.items() if name in present}

    def _relative(self, message: str) -> str:
        """Errors name files inside the data dir relative to it, not by the server's absolute path."""
        return message.replace(str(self.db.data_dir) + "/", "")

    def create(self, name: str, **kwargs: Any) -> vecdial.Collection:
        """`Database.create(name, **kwargs)`, without progress bars; the new handle is served at once."""
        handle = self.db.create(name, show_progress=False, **kwargs)
        self._remember(handle)
        return handle

    def drop(self, name: str) -> None:
        self.db.drop(name)
        self.forget(name)

    def forget(self, name: str) -> None:
        """Drop this process's handle (the collection is gone, or was dropped elsewhere)."""
        self.broken.pop(name, None)
        self._dims.pop(name, None)
        self._versions.pop(name, None)
        self._search_ms = {key: ms for key, ms in self._search_ms.items() if key[0] != name}
        self.db.forget(name)

    def served(self, name: str, version: str) -> None:
        """Note the version that just answered: a change means a swap reached this worker."""
        before = self._versions.get(name)
        if before != version:
            self._versions[name] = version
            if before is not None:
                metrics.SWAPS.labels(name).inc()
                log.info("collection moved to a new version", extra={"collection": name, "version": version})

    def quick(self, name: str, budget: str | dict) -> bool:
        """Whether the last one-vector search of `name` in this budget's mode took under INLINE_MS.

        Such searches run on the event loop: a hop to the thread pool and back costs
        0.1-0.2 ms on a busy 2-core VM (measured), a fifth to a third of a 0.5-1 ms
        search, while FastAPI's own per-request work holds the loop ~0.3 ms anyway.
        Anything slower, not yet measured, a text query or a batch goes to the thread
        pool, so a long scan never stalls the other requests of this worker.
        """
        mode = budget.split(":", 1)[0] if isinstance(budget, str) else str(budget.get("mode"))
        return self._search_ms.get((name, mode), INLINE_MS) < INLINE_MS

    def timed(self, name: str, explain: vecdial.Explain) -> None:
        """Note how long a one-vector search took, by the mode it was asked in."""
        self._search_ms[(name, explain.budget.split(":", 1)[0])] = explain.total_ms

    def _remember(self, handle: vecdial.Collection) -> None:
        info = handle.info()
        self.broken.pop(handle.name, None)
        self._dims[handle.name] = info.dim
        self._versions[handle.name] = info.version


class JobBoard:
    """Reindex jobs: started here through `Collection.reindex`, reported for every process
    through `Database.job(s)`. Keeps this process's running jobs to cancel them."""

    def __init__(self, db: vecdial.Database):
        self.db = db
        self._running: dict[str, vecdial.Job] = {}
        self._lock = threading.Lock()

    def start_reindex(
        self, collection: vecdial.Collection, changes: dict[str, Any], min_recall: float | None = None, budget: str | None = None
    ) -> JobStatus:
        job = collection.reindex(changes, min_recall=min_recall, budget=budget, show_progress=False)
        with self._lock:
            self._running[job.id] = job
        return job.status

    def get(self, job_id: str) -> JobStatus:
        self.settle()
        return self.db.job(job_id)

    def list(self, limit: int = 100) -> list[JobStatus]:
        self.settle()
        return self.db.jobs(limit)

    def cancel(self, job_id: str) -> JobStatus:
        """Ask a job to stop at its next batch; works for jobs of other workers too."""
        job = self._running.get(job_id)
        if job is not None:
            job.cancel()
        # The front door cancels only jobs of this process (`Job.cancel`); a job of another
        # worker is asked through its cancel marker, which it polls between batches.
        return JobStore(self.db.data_dir).request_cancel(job_id)

    def settle(self) -> None:
        """Count this process's finished jobs (by kind and final state) and let them go."""
        with self._lock:
            finished = [job for job in self._running.values() if job.status.finished]
            for job in finished:
                del self._running[job.id]
        for job in finished:
            metrics.JOBS.labels(job.status.kind, job.status.state).inc()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel this process's running jobs and wait for them to clean up."""
        running = list(self._running.values())
        for job in running:
            job.cancel()
        for job in running:
            with contextlib.suppress(vecdial.JobFailed):  # its status says so; shutting down goes on
                job.wait(timeout, show_progress=False)
        self.settle()
