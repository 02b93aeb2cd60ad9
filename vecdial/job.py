"""A reindex started from the front door: watch it, wait for it with a progress bar, cancel it."""

from __future__ import annotations

import time

from vecdial.indexer.errors import VecdialError
from vecdial.indexer.jobs.reindex import ReindexJob
from vecdial.indexer.jobs.store import JobStatus


class JobFailed(VecdialError):
    """A job ended `failed`; the message says why (for a recall gate, what it measured) and
    `status` is the job's whole JobStatus. The serving version is the one before the job."""

    def __init__(self, status: JobStatus):
        super().__init__(f"{status.kind} of {status.collection!r} failed: {status.message}")
        self.status = status


class Job:
    """A reindex running in a background thread of this process."""

    def __init__(self, job: ReindexJob):
        self._job = job

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def status(self) -> JobStatus:
        return self._job.status

    def start(self) -> None:
        self._job.start()

    def cancel(self) -> None:
        """Stop at the next batch; the serving version stays."""
        self._job.cancel()

    def wait(self, timeout: float | None = None, *, show_progress: bool = True) -> JobStatus:
        """Block until the job ends (or `timeout` seconds pass) and return its status.

        Raises JobFailed when the job failed (e.g. a recall gate it missed: the message says
        what was measured). Ctrl-C cancels the job, waits for it to clean up and returns its
        status (`cancelled`, the old version serving)."""
        from tqdm.auto import tqdm

        thread = self._job.thread
        deadline = None if timeout is None else time.monotonic() + timeout
        with tqdm(total=100, desc=f"reindex {self._job.collection.name}", unit="%", disable=not show_progress) as bar:
            try:
                while thread is not None and thread.is_alive():
                    thread.join(0.2)
                    bar.n = int(self.status.progress * 100)
                    bar.set_postfix_str(self.status.phase, refresh=True)
                    if deadline is not None and time.monotonic() > deadline:
                        break
            except KeyboardInterrupt:
                self.cancel()
                if thread is not None:
                    thread.join()
        status = self.status
        if status.state == "failed":
            raise JobFailed(status)
        return status
