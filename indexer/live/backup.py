"""Backing up a collection while it serves: a copy that opens whole, with writes paused only briefly.

A plain `cp -r` of a serving data directory can catch a collection mid-change: the
witness copied after writes that landed once the log was copied (the copy then
reports acknowledged bytes as missing: damage), or CURRENT naming a version a
reindex swapped in after the versions were copied. `backup_collection` copies in
an order that cannot:

1. the serving version's directory, without any lock (a published version never
   changes, bar a sweep landing in it), the log up to its witnessed end (bytes
   there are never cut or changed) and the traffic sample;
2. under the collection's write lock (writes and swaps wait; searches go on): if
   CURRENT still names that version and the log is the same file, the log bytes
   appended since, its witness, the version's sweep and CURRENT; else start over;
3. every copied file fsynced, then the staging directory renamed to `dest/<name>`.

`dest` is then a data directory holding the collection as it was when the lock was
held: every write acknowledged before, none after. Restoring is putting `dest/<name>`
into a data directory where no collection of that name is served.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vecdial.indexer.disk.atomic import fsync_dir, fsync_tree
from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.disk.layout import CollectionLayout, backup_staging, sweep_file, witness_of
from vecdial.indexer.disk.locks import FileLock
from vecdial.indexer.errors import AlreadyExists, VecdialError
from vecdial.indexer.live.wal import WriteAheadLog

ATTEMPTS = 5  # reindexes swapping in meanwhile make a copy start over; this many tries at most


def backup_collection(collection: Collection, dest: Path) -> Path:
    """Copy `collection` into `dest/<name>` consistently while it may serve; return that path.

    AlreadyExists if `dest/<name>` exists (never overwritten). Writes to the collection
    wait only while the log's newest bytes and a few small files are copied.
    """
    target = Path(dest) / collection.name
    if target.exists():
        raise AlreadyExists(f"{target} exists already: back up into another directory, or remove it first")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = backup_staging(target.parent, collection.name, os.getpid())
    try:
        for _ in range(ATTEMPTS):
            shutil.rmtree(staging, ignore_errors=True)
            if _copy(collection, staging):
                break
        else:
            raise VecdialError(f"collection {collection.name!r} swapped versions {ATTEMPTS} times during the backup: run it again")
        fsync_tree(staging)
        if target.exists():
            raise AlreadyExists(f"{target} appeared during the backup: back up into another directory")
        staging.rename(target)
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _copy(collection: Collection, staging: Path) -> bool:
    """One attempt; False if a swap or a log replacement (repair) made it stale."""
    version = collection.current_version_name()
    source, copy = collection.layout, CollectionLayout(staging)
    log = WriteAheadLog(source.log(version))
    log_copy = copy.log(version)
    try:
        shutil.copytree(source.version(version), copy.version(version))
    except (FileNotFoundError, shutil.Error):  # pruned by swaps meanwhile
        return False
    log_copy.parent.mkdir(parents=True)
    witness = log.witnessed()  # bytes below its end are never cut or changed in this file
    inode, copied = _copy_log(log.path, log_copy, 0, witness.end if witness is not None else 0)
    if source.query_sample.exists():  # whole float32 rows appended by any process; a torn last row is dropped on reading
        shutil.copy2(source.query_sample, copy.query_sample)
    with FileLock(source.write_lock):
        if collection.current_version_name() != version:
            return False
        if log.stamp()[0] != inode:  # replaced by a repair (or created) meanwhile: copy it whole, under the lock
            log_copy.unlink(missing_ok=True)
            copied = 0
        _copy_log(log.path, log_copy, copied, None)
        if log.witness_path.exists():
            shutil.copy2(log.witness_path, witness_of(log_copy))
        if sweep_file(source.version(version)).exists():
            shutil.copy2(sweep_file(source.version(version)), sweep_file(copy.version(version)))
        shutil.copy2(source.current, copy.current)
    return True


def _copy_log(source: Path, target: Path, start: int, stop: int | None) -> tuple[int, int]:
    """Append `source`'s bytes [start, stop) (stop None: to its end) to `target`; return
    (source's inode, bytes now in target). A log that does not exist copies as nothing."""
    try:
        handle = open(source, "rb")
    except FileNotFoundError:
        return 0, 0
    with handle, open(target, "ab") as out:
        handle.seek(start)
        left = None if stop is None else max(stop - start, 0)
        while left is None or left > 0:
            chunk = handle.read(1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            out.write(chunk)
            left = None if left is None else left - len(chunk)
        return os.fstat(handle.fileno()).st_ino, out.tell()
