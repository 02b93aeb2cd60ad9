"""Building over a live collection without silently losing a write.

Writes acknowledged since the serving version was built live only in its log
(`wal/<version>.log`); a new version built from other inputs would not hold them.
So `replace_build` counts the log's whole records under the write lock (the lock
every write takes) and refuses while there are any, unless the caller says to
discard them. It counts twice: before building (fail fast) and again right
before the swap, in the same critical section as the swap, so a write that lands
during the build is refused too, never dropped.
"""

from __future__ import annotations

import logging

from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.disk.locks import FileLock
from vecdial.indexer.disk.version import open_version
from vecdial.indexer.errors import AlreadyExists
from vecdial.indexer.io.readers import Dataset
from vecdial.indexer.jobs.build import build_version
from vecdial.indexer.jobs.swap import clean_leftovers, swap_in
from vecdial.indexer.live.wal import WriteAheadLog
from vecdial.indexer.modes.settings import BuildSettings

log = logging.getLogger("vecdial.jobs")


def writes_since_version(collection: Collection) -> tuple[str, int, int]:
    """(serving version, valid records in its log, damaged bytes in it).

    Damaged bytes may hide acknowledged records, so they count against a replacing build
    too; a torn tail does not (live/frames.py tells the two apart): it was never
    acknowledged. The caller holds the write lock, for an answer that holds until the swap.
    """
    version = collection.current_version_name()
    scan = WriteAheadLog(collection.layout.log(version)).read(0)
    return version, len(scan.records), scan.damaged_bytes


def replace_build(
    collection: Collection,
    dataset: Dataset,
    settings: BuildSettings = BuildSettings(),
    *,
    discard_writes: bool = False,
    show_progress: bool = True,
) -> str:
    """Build `dataset` as the new version of an existing collection; return its name.

    Raises AlreadyExists if writes were acknowledged since the serving version (unless
    `discard_writes`), or if a reindex or another build of the collection is running.
    Searches keep the old version until the swap; a failed or killed build changes nothing.
    """
    job_lock = FileLock(collection.layout.reindex_lock)
    if not job_lock.acquire(blocking=False):
        raise AlreadyExists(f"a reindex or build of {collection.name!r} is running: wait for it (or cancel it), then build again")
    try:
        clean_leftovers(collection, job_lock_held=True)
        with FileLock(collection.layout.write_lock):
            _refuse_to_drop_writes(collection, discard_writes, warn=False)
        with build_version(dataset, collection.versions_dir, settings, show_progress) as staged:
            open_version(staged.path, verify_checksums=True)  # validate before anyone can see it
            with FileLock(collection.layout.write_lock):
                _refuse_to_drop_writes(collection, discard_writes, warn=True)
                return swap_in(collection, staged)
    finally:
        job_lock.release()


def _refuse_to_drop_writes(collection: Collection, discard_writes: bool, warn: bool) -> None:
    version, writes, damaged = writes_since_version(collection)
    if (writes or damaged) and not discard_writes:
        more = f" (and {damaged} damaged bytes of its log that may hide more: `vecdial repair` salvages them)" if damaged else ""
        raise AlreadyExists(
            f"collection {collection.name!r} has {writes} writes since its version {version}{more}: reindex it to fold "
            "them in, or drop it first, or pass discard_writes=True (CLI: --discard-writes) to lose them"
        )
    if (writes or damaged) and warn:
        log.warning(
            "%s: discarding %d writes (and %d damaged bytes) logged since %s (discard_writes)", collection.name, writes, damaged, version
        )
