"""Advisory file locks shared by threads and processes (POSIX `flock`).

Several server workers and the `vecdial` CLI may write to one collection at
once; the write-ahead log and version swaps stay consistent only if they take
turns. `flock` locks belong to an open file description, so two handles in one
process exclude each other too, and the kernel drops a lock when its holder
dies: a crashed writer can never leave a collection locked.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from vecdial.indexer.errors import NotFound


class FileLock:
    """An exclusive lock on `path` (created if missing), held while in a `with` block."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; with blocking=False return False at once if another holder has it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            raise NotFound(f"{self.path.parent} does not exist (was the collection dropped?)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def on_current_file(self) -> bool:
        """True if the held lock is on the file at `path` now, not on one that someone
        unlinked (and maybe made again) between our open and our flock."""
        if self._fd is None:
            return False
        try:
            held, now = os.fstat(self._fd), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def is_locked(path: Path) -> bool:
    """True if some holder (this process included) has the lock on `path` right now."""
    if not Path(path).exists():
        return False
    probe = FileLock(path)
    try:
        if probe.acquire(blocking=False):
            probe.release()
            return False
    except NotFound:
        return False
    return True
