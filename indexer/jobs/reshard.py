"""Split a collection into shards by id hash, merge its shards back, or change their count.

Every acknowledged write is kept: the source's reindex locks (one per part: the collection,
or each shard) are taken first, so no reindex runs meanwhile, then its write locks, held to
the end, so no write is acknowledged that the copy would miss; its live rows (version and
log) are exported and built into the new layout under `<data_dir>/.reshard-<name>-<tok>/`,
which one `renameat2(RENAME_EXCHANGE)` swaps with `<data_dir>/<name>`. Killed before the
swap, the source serves unchanged and the staging directory is removed by the next reshard;
after it, the new layout serves. Processes holding the old layout open see it gone (NotFound)
and reopen: stop servers of the collection first, or restart them after.

Each shard is built with the source's settings; a sweep (for `auto` budgets) and the traffic
sample are not carried over: sweep the collection again after.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import uuid
from pathlib import Path

import numpy as np

from vecdial.indexer.disk.atomic import exchange, fsync_dir
from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.disk.layout import reshard_staging, reshard_stagings, shard_name
from vecdial.indexer.disk.locks import FileLock
from vecdial.indexer.errors import AlreadyExists, DamagedLog, InvalidInput, NotFound
from vecdial.indexer.io.readers import Dataset
from vecdial.indexer.jobs.create import create_collection
from vecdial.indexer.jobs.reindex import export_live
from vecdial.indexer.live.collection import LiveCollection
from vecdial.indexer.modes import build_settings_of
from vecdial.indexer.modes.settings import BuildSettings
from vecdial.indexer.scale.shards import ShardLayout, shard_of

log = logging.getLogger("vecdial.jobs")


def parts_of(collection: Collection) -> tuple[ShardLayout | None, list[Collection]]:
    """(its shard manifest or None, the ordinary collections holding its rows)."""
    if collection.sharded():
        layout = ShardLayout.load(collection.path)
        return layout, [Collection(collection.shards_dir, shard_name(i)) for i in range(layout.shards)]
    if not collection.exists():
        raise NotFound(f"collection {collection.name!r} does not exist in {collection.path.parent}")
    return None, [collection]


def reshard(data_dir: Path, name: str, shards: int, *, partial: bool | None = None, show_progress: bool = False) -> int:
    """Make collection `name` hold `shards` shards (1: an ordinary collection again), keeping
    every acknowledged write; returns the live vectors moved. partial: the new layout's rule
    for a search while a shard is down (None keeps the source's, default True). Refused
    (AlreadyExists) while a reindex or another reshard of it runs, (DamagedLog) while its
    log is damaged, (InvalidInput) if it already has that many shards."""
    if not isinstance(shards, int) or isinstance(shards, bool) or not 1 <= shards <= 256:
        raise InvalidInput(f"shards={shards!r}: give a whole number of shards from 1 to 256")
    data_dir = Path(data_dir)
    target = Collection(data_dir, name)
    layout, parts = parts_of(target)
    if shards == (layout.shards if layout else 1):
        raise InvalidInput(f"collection {name!r} has {shards} shard{'s' * (shards > 1)} already")
    with contextlib.ExitStack() as held:
        for part in parts:
            lock = FileLock(part.layout.reindex_lock)
            if not lock.acquire(blocking=False):
                raise AlreadyExists(f"a reindex or reshard of {name!r} is running: wait for it or cancel it, then shard again")
            held.callback(lock.release)
        lives = [LiveCollection(part, verify_checksums=True) for part in parts]
        for live in lives:
            if live.damaged:
                raise DamagedLog(f"{live.damaged}; then shard again")
        for part in parts:
            held.enter_context(FileLock(part.layout.write_lock))  # no write is acknowledged from here on
        for stale in data_dir.glob(reshard_stagings(name)):
            shutil.rmtree(stale, ignore_errors=True)  # a reshard killed before its swap
        staging = reshard_staging(data_dir, name, uuid.uuid4().hex[:12])
        staging.mkdir()
        try:
            for live in lives:
                live.refresh()  # every write acknowledged before the locks
            exported = [export_live(live.snapshot(), staging / f"part{i}.npy", name) for i, live in enumerate(lives)]
            dataset = _concat(exported, staging / "all.npy")
            settings = build_settings_of(lives[0].snapshot().version.manifest)
            staged = Collection(staging, name)
            if shards == 1:
                create_collection(staged, dataset, settings, show_progress=show_progress)
            else:
                _build_shards(staged, dataset, shards, settings, show_progress)
                ShardLayout(shards, partial=layout.partial if partial is None and layout else partial is not False).save(staged.path)
            for path in staging.glob("*.npy"):
                path.unlink()
            fsync_dir(staging)
            exchange(staged.path, target.path)
            log.info("collection %s now has %d shard(s): %d vectors", name, shards, len(dataset.ids))
            return len(dataset.ids)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # the source after a swap, the new build before one


def _build_shards(staged: Collection, dataset: Dataset, shards: int, settings: BuildSettings, show_progress: bool) -> None:
    staged.path.mkdir()
    owner = shard_of(dataset.ids, shards)
    for shard in range(shards):
        rows = np.flatnonzero(owner == shard)
        if len(rows) == 0:
            raise InvalidInput(f"{len(dataset.ids)} vectors leave shard {shard} of {shards} empty: use fewer shards")
        part = Dataset(
            dataset.ids[rows],
            np.asarray(dataset.vectors[rows]),
            None if dataset.texts is None else [dataset.texts[i] for i in rows.tolist()],
            dataset.source_model,
            None if dataset.payloads is None else dataset.payloads.take(rows),
        )
        create_collection(Collection(staged.shards_dir, shard_name(shard)), part, settings, show_progress=show_progress)


def _concat(parts: list[Dataset], path: Path) -> Dataset:
    """One dataset of every part's rows, in order (vectors memory-mapped at `path`)."""
    if len(parts) == 1:
        return parts[0]
    total, dim = sum(len(p.ids) for p in parts), parts[0].vectors.shape[1]
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(total, dim))
    start = 0
    for part in parts:
        out[start : start + len(part.ids)] = part.vectors
        start += len(part.ids)
    out.flush()
    texts = None
    if any(p.texts is not None for p in parts):
        texts = [text for p in parts for text in (p.texts if p.texts is not None else [None] * len(p.ids))]
    payloads = None
    if any(p.payloads is not None for p in parts):
        from vecdial.indexer.filters.table import PayloadTable

        tables = [p.payloads if p.payloads is not None else PayloadTable(len(p.ids)) for p in parts]
        payloads = tables[0]
        for table in tables[1:]:
            payloads = payloads.concat(table)
    return Dataset(np.concatenate([p.ids for p in parts]), np.load(path, mmap_mode="r"), texts, parts[0].source_model, payloads)
