"""Crash-safe file operations: nothing is visible until it is whole and on disk."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory below root (files first)."""
    for directory, _, files in os.walk(root):
        for name in files:
            with open(Path(directory) / name, "rb+") as handle:
                os.fsync(handle.fileno())
        fsync_dir(Path(directory))


def _umask() -> int:
    """The process umask, read without changing it (os.umask would, for a moment, in every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:  # pragma: no cover - not Linux
        pass
    return 0o022


def write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Replace path's content in one step: write a temp file in the same dir, fsync, rename.

    A process killed at any point leaves either the old file or the new one,
    never a truncated one (at most a stray hidden temp file). What `write` returns is ignored.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; honour the umask like open() would
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda handle: handle.write(data))


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    write_atomic(path, lambda handle: np.save(handle, array))


RENAME_EXCHANGE = 2  # linux/fs.h
AT_FDCWD = -100


def exchange(a: Path, b: Path) -> None:
    """Swap two directory entries in one step (Linux `renameat2(RENAME_EXCHANGE)`): whoever looks
    sees the old entry or the new one, never neither, even if the process is killed."""
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:  # pragma: no cover - glibc < 2.28: two renames (a kill between leaves `a` under b's name)
        aside = b.with_name(b.name + ".old")
        os.rename(a, aside)
        os.rename(b, a)
        os.rename(aside, b)
    elif renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"cannot exchange {a} and {b}: {os.strerror(errno)}")
    fsync_dir(a.parent)
    if b.parent != a.parent:
        fsync_dir(b.parent)
