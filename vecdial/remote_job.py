"""A reindex running on a server, watched from the client: `RemoteCollection.reindex` returns one."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import quote

from vecdial.indexer.jobs.store import JobStatus
from vecdial.job import JobFailed
from vecdial.remote_shapes import status_of

if TYPE_CHECKING:
    from vecdial.remote import RemoteDatabase


class RemoteJob:
    """A reindex running on the server: its status is fetched on each look."""

    def __init__(self, db: RemoteDatabase, status: JobStatus):
        self._db = db
        self._status = status

    @property
    def id(self) -> str:
        return self._status.id

    @property
    def status(self) -> JobStatus:
        if not self._status.finished:
            self._status = self._db.job(self.id)
        return self._status

    def cancel(self) -> None:
        """Stop at the next batch; the serving version stays."""
        self._status = status_of(self._db.http.call("POST", f"/v1/jobs/{quote(self.id, safe='')}/cancel"))

    def wait(self, timeout: float | None = None, *, show_progress: bool = True) -> JobStatus:
        """Poll until the job ends (or `timeout` seconds pass), with a progress bar, and return its
        status; JobFailed (its `status` attached) if it failed, e.g. a recall gate it missed, with
        what was measured. Ctrl-C cancels the job, waits for it to clean up and returns its status."""
        from tqdm.auto import tqdm

        deadline = None if timeout is None else time.monotonic() + timeout
        with tqdm(total=100, desc=f"reindex {self._status.collection}", unit="%", disable=not show_progress) as bar:
            try:
                while not self.status.finished and (deadline is None or time.monotonic() < deadline):
                    bar.n = int(self._status.progress * 100)
                    bar.set_postfix_str(self._status.phase, refresh=True)
                    time.sleep(0.2)
            except KeyboardInterrupt:
                self.cancel()
                while not self.status.finished:
                    time.sleep(0.2)
        if self._status.state == "failed":
            raise JobFailed(self._status)
        return self._status
