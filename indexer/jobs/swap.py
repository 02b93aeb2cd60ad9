"""Swapping a staged version in, and clearing what killed jobs leave behind.

A build or reindex killed at any point (SIGKILL: no `finally` runs) can leave:
staging directories (`versions/.tmp-*`, with their `.lock`), an exported
`.reindex-<job>.npy`, a version renamed to its final name but never made current
(above CURRENT), the log copied for it (`wal/<that version>.log`), and temp files
of atomic writes (`.CURRENT.*.tmp`, `wal/.*.tmp`). None of them can be mistaken
for a version: names above CURRENT are orphans by construction (see
disk/collection.py), and `clean_leftovers` removes all of it, each kind under the
lock that proves nobody alive is still using it.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from vecdial.indexer.disk.collection import CURRENT_FILE, Collection, version_number
from vecdial.indexer.disk.locks import FileLock
from vecdial.indexer.errors import NotFound, VecdialError
from vecdial.indexer.jobs.build import StagedVersion, remove_stale_builds
from vecdial.indexer.live.collection import reindex_lock_path, wal_dir, write_lock_path
from vecdial.indexer.live.wal import WAL_SUFFIX, WITNESS_SUFFIX, wal_path

log = logging.getLogger("vecdial.jobs")

EXPORT_PREFIX = ".reindex-"


def swap_in(collection: Collection, staged: StagedVersion, log_tail: Callable[[Path], None] | None = None) -> str:
    """Make a staged, validated version the serving one; return the name it got.

    The caller holds the collection's write lock. The new version's log is written by
    `log_tail(path)` (a reindex: the records written since its snapshot) or starts
    empty, before CURRENT names the version, so no reader sees it without its log.
    """

    def start_log(name: str) -> None:
        target = wal_path(wal_dir(collection), name)
        if log_tail is None:
            target.unlink(missing_ok=True)
        else:
            log_tail(target)

    remove_orphan_logs(collection)
    name = collection.publish(staged.path, before_current=start_log)
    remove_orphan_logs(collection)  # and the logs of versions just pruned
    return name


def remove_orphan_logs(collection: Collection) -> list[str]:
    """Remove logs whose version is gone (pruned) or was never current (above CURRENT).
    The caller holds the write lock."""
    directory = wal_dir(collection)
    if not directory.is_dir():
        return []
    current = version_number(collection.current_version_name()) if collection.exists() else 0
    removed = []
    for path in [*directory.glob(f"*{WAL_SUFFIX}"), *directory.glob(f"*{WITNESS_SUFFIX}")]:  # logs and their witnesses
        if version_number(path.stem) > current or not (collection.versions_dir / path.stem).is_dir():
            path.unlink(missing_ok=True)
            removed.append(f"wal/{path.name}")
    return removed


def clean_leftovers(collection: Collection, job_lock_held: bool = False) -> list[str]:
    """Remove what killed builds and reindexes left in the collection; log and return it.

    Staging directories go when their builder's lock is free; exports when no job of
    the collection runs (`job_lock_held`: the caller is that job); orphan versions,
    orphan logs and temp files under the write lock. Without CURRENT (a create that
    never finished, a drop that was cut short) no version ever served, so every version
    directory and log is an orphan. Never touches CURRENT or the versions at or below it.
    """
    if not collection.path.is_dir():
        return []
    removed = [f"versions/{name}" for name in remove_stale_builds(collection.versions_dir)]
    job_lock = None if job_lock_held else FileLock(reindex_lock_path(collection))
    try:
        if job_lock is None or job_lock.acquire(blocking=False):
            for export in collection.path.glob(f"{EXPORT_PREFIX}*.npy"):
                export.unlink(missing_ok=True)
                removed.append(export.name)
        with FileLock(write_lock_path(collection)):
            removed += [f"versions/{name}" for name in collection.remove_orphans()]
            if collection.exists():
                removed += remove_orphan_logs(collection)
            elif wal_dir(collection).is_dir():
                removed += [f"wal/{p.name}" for p in wal_dir(collection).iterdir()]
                shutil.rmtree(wal_dir(collection), ignore_errors=True)
            temps = [*collection.path.glob(f".{CURRENT_FILE}.*.tmp"), *wal_dir(collection).glob(".*.tmp")]
            for temp in temps:
                temp.unlink(missing_ok=True)
                removed.append(str(temp.relative_to(collection.path)))
    except NotFound:  # dropped meanwhile
        return removed
    except VecdialError as exc:  # a broken CURRENT: leave everything for the user to look at
        log.warning("%s: leftovers not cleaned: %s", collection.name, exc)
    finally:
        if job_lock is not None:
            job_lock.release()
    if removed:
        log.warning("%s: removed what interrupted jobs left behind: %s", collection.name, ", ".join(sorted(removed)))
    return removed
