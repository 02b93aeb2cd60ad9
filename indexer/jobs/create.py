"""A collection's first version, and the unlocked build-and-publish beneath every build.

A build writes a staged version (`build.py`), opens it to validate it, and only then
publishes it (`disk/collection.py`: named and made current in one critical section),
so the version serving before keeps serving until the swap and a failed build changes
nothing. Over a live collection use `replace.py`, which refuses to drop acknowledged
writes; a reindex (`reindex.py`) folds them in.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.disk.locks import FileLock
from vecdial.indexer.disk.version import open_version
from vecdial.indexer.errors import AlreadyExists
from vecdial.indexer.io.readers import Dataset
from vecdial.indexer.jobs.build import build_version
from vecdial.indexer.modes.settings import BuildSettings


def build_collection(
    collection: Collection,
    dataset: Dataset,
    settings: BuildSettings = BuildSettings(),
    show_progress: bool = True,
    replace: bool = True,
) -> Path:
    """Build a new version of `collection` and make it current; return its directory.

    The unlocked primitive: the caller holds the collection's write lock, or nobody else
    uses the collection (a new one, a test). replace=False refuses (AlreadyExists) if the
    collection has a version already.
    """
    if collection.exists() and not replace:
        raise AlreadyExists(f"collection {collection.name!r} exists already; drop it or reindex it")
    with build_version(dataset, collection.versions_dir, settings, show_progress) as staged:
        open_version(staged.path, verify_checksums=True)  # validate before anyone can see it
        return collection.versions_dir / collection.publish(staged.path)


def create_collection(
    collection: Collection, dataset: Dataset, settings: BuildSettings = BuildSettings(), show_progress: bool = False
) -> Path:
    """Build a new collection; AlreadyExists if one of that name is there (checked under the write lock)."""
    created_dir = not collection.path.exists()
    collection.path.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(collection.layout.write_lock):
            if collection.exists():
                raise AlreadyExists(f"collection {collection.name!r} exists already: drop it first, or reindex it")
            return build_collection(collection, dataset, settings, show_progress=show_progress, replace=False)
    except BaseException:
        if created_dir and not collection.exists():
            shutil.rmtree(collection.path, ignore_errors=True)
        raise
