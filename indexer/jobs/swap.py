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

from vecdial.indexer.disk.collection import Collection, version_number
from vecdial.indexer.disk.layout import LOG_SUFFIX, WITNESS_SUFFIX
from vecdial.indexer.disk.locks import FileLock
from vecdial.indexer.errors import NotFound, VecdialError
from vecdial.indexer.jobs.build import StagedVersion, remove_stale_builds

log = logging.getLogger("vecdial.jobs")


def swap_in(collection: Collection, staged: StagedVersion, log_tail: Callable[[Path], None] | None = None) -> str:
    """Make a staged, validated version the serving one; return the name it got.

    The caller holds the collection's write lock. The new version's log is written by
    `log_tail(path)` (a reindex: the records written since its snapshot) or starts
    empty, before CURRENT names the version, so no reader sees it without its log.
    """

    def start_log(name: str) -> None:
        target = collection.layout.log(name)
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
    directory = collection.layout.wal
    if not directory.is_dir():
        return []
    current = version_number(collection.current_version_name()) if collection.exists() else 0
    removed = []
    for path in [*directory.glob(f"*{LOG_SUFFIX}"), *directory.glob(f"*{WITNESS_SUFFIX}")]:  # logs and their witnesses
        if version_number(path.stem) > current or not collection.layout.version(path.stem).is_dir():
            path.unlink(missing_ok=True)
            removed.append(str(path.relative_to(collection.path)))
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
    versions = collection.layout.versions.relative_to(collection.path)
    removed = [str(versions / name) for name in remove_stale_builds(collection.layout.versions)]
    job_lock = None if job_lock_held else FileLock(collection.layout.reindex_lock)
    try:
        if job_lock is None or job_lock.acquire(blocking=False):
            for export in collection.path.glob(collection.layout.exports):
                export.unlink(missing_ok=True)
                removed.append(export.name)
        with FileLock(collection.layout.write_lock):
            removed += [str(versions / name) for name in collection.remove_orphans()]
            if collection.exists():
                removed += remove_orphan_logs(collection)
            elif collection.layout.wal.is_dir():
                removed += [str(p.relative_to(collection.path)) for p in collection.layout.wal.iterdir()]
                shutil.rmtree(collection.layout.wal, ignore_errors=True)
            temps = [*collection.path.glob(collection.layout.current_temps), *collection.layout.wal.glob(collection.layout.wal_temps)]
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
