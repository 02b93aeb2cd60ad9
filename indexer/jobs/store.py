"""Job statuses on disk: one JSON file per job under `<data_dir>/.jobs/`, so every server
worker and the CLI see every job. A job holds `<id>.lock` while it runs, so a status left
"running" by a process that died is reported as failed; `<id>.cancel` asks it to stop."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vecdial.indexer.disk.atomic import write_text_atomic
from vecdial.indexer.disk.layout import JobsLayout
from vecdial.indexer.disk.locks import is_locked
from vecdial.indexer.errors import NotFound

KEEP_FINISHED_JOBS = 200
JOB_ID = re.compile(r"^[0-9a-f]{32}$")

JobStateName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED = ("succeeded", "failed", "cancelled")


@dataclass
class JobStatus:
    """What a job is doing, as every process sees it."""

    id: str
    collection: str
    settings: dict[str, Any]
    kind: str = "reindex"
    state: JobStateName = "queued"
    phase: str = "queued"
    progress: float = 0.0
    message: str = ""
    from_version: str | None = None
    to_version: str | None = None
    vectors: int | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class JobStore:
    """Job statuses on disk, one JSON file each, written atomically."""

    def __init__(self, data_dir: Path):
        self.layout = JobsLayout.of(data_dir)
        self.dir = self.layout.dir

    def lock_path(self, job_id: str) -> Path:
        return self.layout.lock(job_id)

    def save(self, status: JobStatus) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.layout.status(status.id), json.dumps(dataclasses.asdict(status)))

    def load(self, job_id: str) -> JobStatus:
        if not JOB_ID.fullmatch(job_id):
            raise NotFound(f"job {job_id!r} does not exist (job ids are 32 hex digits)")
        status = self._read(job_id)
        if not status.finished and not is_locked(self.lock_path(job_id)):
            # A job saves its last status before it lets go of its lock: it may have ended between
            # the read above and the lock check. Only a status still unfinished now is a dead job's.
            status = self._read(job_id)
            if not status.finished:
                status.state, status.message = "failed", "the process running this job exited before it finished"
                status.finished_at = status.finished_at or time.time()
        return status

    def _read(self, job_id: str) -> JobStatus:
        try:
            raw = json.loads(self.layout.status(job_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(f"job {job_id!r} does not exist") from None
        return JobStatus(**raw)

    def list(self, limit: int = 100) -> list[JobStatus]:
        """Newest first."""
        if not self.dir.is_dir():
            return []
        statuses = []
        for path in self.dir.glob(self.layout.statuses):
            try:
                statuses.append(self.load(path.stem))
            except (NotFound, ValueError, TypeError):
                continue
        return sorted(statuses, key=lambda s: s.created_at, reverse=True)[:limit]

    def request_cancel(self, job_id: str) -> JobStatus:
        status = self.load(job_id)
        if not status.finished:
            self.layout.cancel(job_id).touch()
        return status

    def cancel_requested(self, job_id: str) -> bool:
        return self.layout.cancel(job_id).exists()

    def prune(self, keep: int = KEEP_FINISHED_JOBS) -> None:
        """Forget the oldest finished jobs beyond `keep`."""
        finished = [s for s in self.list(limit=10**9) if s.finished]
        for status in finished[keep:]:
            for path in self.layout.files(status.id):
                path.unlink(missing_ok=True)
