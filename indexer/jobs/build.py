"""Build job: inputs -> fit codecs on a sample -> encode batches -> a staged version.

Everything is written into a hidden staging directory beside the versions
(`versions/.tmp-<token>`), fsynced, and handed back as a `StagedVersion`. It is
not a version until the caller publishes it: under the collection's write lock
it is renamed to the next free name right before CURRENT is pointed at it (see
disk/collection.py). A build killed at any point leaves the previous version
serving and at most a staging directory whose lock nobody holds, which the next
build (or the next open, see jobs/swap.py) removes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
from tqdm.auto import tqdm

from vecdial.indexer.codecs.partition import Partitions, auto_count, centroid_index, fit_centroids
from vecdial.indexer.disk.atomic import fsync_tree
from vecdial.indexer.disk.integrity import remember_verified
from vecdial.indexer.disk.layout import LOCK_SUFFIX, STAGING_PREFIX, staging_lock
from vecdial.indexer.disk.locks import FileLock
from vecdial.indexer.disk.manifest import Manifest, file_entry, write_manifest
from vecdial.indexer.disk.version import CODEC_FILE, IDS_FILE, TEXT_OFFSETS_FILE, TEXTS_FILE
from vecdial.indexer.errors import InvalidInput, NotFound
from vecdial.indexer.features.serve import write_features
from vecdial.indexer.filters.table import write_payloads
from vecdial.indexer.io.readers import Dataset, check_dataset
from vecdial.indexer.modes import MODES
from vecdial.indexer.modes.settings import BuildSettings
from vecdial.indexer.scale.engines import Engine, current_engine
from vecdial.indexer.vectors import Rows, check_finite, normalize_rows, unit_sample

log = logging.getLogger("vecdial.jobs")


class StagedVersion:
    """A whole version under a temporary name, held by the process that built it.

    The builder holds `.tmp-<token>.lock` from before the directory exists until it is
    published (renamed away) or discarded, so a cleaner removes only what builders that
    died left: it removes a staging directory or a lone lock only while holding that lock
    itself. Use as a context manager: leaving it discards whatever was not published.
    """

    def __init__(self, versions_dir: Path):
        while True:
            token = uuid.uuid4().hex[:16]
            self.path = Path(versions_dir) / f"{STAGING_PREFIX}{token}"
            self._lock = FileLock(staging_lock(self.path))
            self._lock.acquire()
            if self._lock.on_current_file():  # else a cleaner removed it between our open and flock
                break
            self._lock.release()
        try:
            self.path.mkdir()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Remove the staging directory if it is still here, then let go of its lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.path.unlink(missing_ok=True)
        self._lock.release()

    def __enter__(self) -> StagedVersion:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def build_version(
    dataset: Dataset,
    versions_dir: Path,
    settings: BuildSettings = BuildSettings(),
    show_progress: bool = True,
    engine: Engine | None = None,
) -> StagedVersion:
    """Write dataset as a staged version in versions_dir: complete, fsynced, checksummed.

    engine: who runs the per-row passes (indexer/scale: Ray tasks); None: the one
    `scale.running_on` set for this thread, if any, else the loops here. Either way the fit,
    the order and the commit happen here, and the files are the same."""
    engine = engine if engine is not None else current_engine()
    check_dataset(dataset)
    versions_dir.mkdir(parents=True, exist_ok=True)
    removed = remove_stale_builds(versions_dir)
    if removed:
        log.warning("%s: removed staging directories of builds that died: %s", versions_dir.parent.name, ", ".join(removed))
    staged = StagedVersion(versions_dir)
    try:
        manifest = _write_files(dataset, staged.path, settings, show_progress, engine)
        manifest.files = {p.relative_to(staged.path).as_posix(): file_entry(p) for p in sorted(staged.path.rglob("*")) if p.is_file()}
        write_manifest(staged.path, manifest)
        fsync_tree(staged.path)
        remember_verified(staged.path, manifest)  # the hashes were just computed from these files
        return staged
    except BaseException:
        staged.close()
        raise


def remove_stale_builds(versions_dir: Path) -> list[str]:
    """Delete staging directories and lone staging locks whose builder is gone; return their names.

    Safe while other builds run: a live builder holds its lock, and each removal happens
    while holding that lock (a builder that loses the race to a lone lock's removal sees
    its lock file gone and takes another name).
    """
    removed: list[str] = []
    if not versions_dir.is_dir():
        return removed
    for entry in sorted(versions_dir.glob(f"{STAGING_PREFIX}*")):
        lock_path = entry if entry.name.endswith(LOCK_SUFFIX) else staging_lock(entry)
        staging = lock_path.with_name(lock_path.name[: -len(LOCK_SUFFIX)])
        if not entry.exists() or (entry == lock_path and staging.exists()):
            continue  # gone already, or handled with its directory
        lock = FileLock(lock_path)
        try:
            if not lock.acquire(blocking=False):
                continue
        except NotFound:  # versions_dir itself went away (the collection was dropped)
            return removed
        try:
            if staging.is_dir():
                shutil.rmtree(staging, ignore_errors=True)
            else:
                staging.unlink(missing_ok=True)
            lock_path.unlink(missing_ok=True)
        finally:
            lock.release()
        removed.append(entry.name)
    return removed


def _write_files(dataset: Dataset, out: Path, settings: BuildSettings, show_progress: bool, engine: Engine | None = None) -> Manifest:
    """Fit every registered mode on one sample, feed each the input once, batch by batch, in the
    order of the partitions' cells (see codecs/partition.py) when the version has them."""
    n, dim = dataset.vectors.shape
    sample = unit_sample(dataset.vectors, settings.sample_size, settings.seed)
    partitions, order = _partition(dataset.vectors, sample, settings, show_progress, engine)
    vectors = dataset.vectors if order is None else Reordered(dataset.vectors, order)
    builders = {name: b for name, mode in MODES.items() if (b := mode.builder(sample, n, out, settings, cells=partitions)) is not None}
    np.save(out / IDS_FILE, dataset.ids if order is None else dataset.ids[order])
    if engine is not None:
        engine.encode(dataset.vectors, order, builders, settings.batch_size, show_progress)
    else:
        with tqdm(total=n, desc="encoding", unit="vec", disable=not show_progress) as progress:
            for start in range(0, n, settings.batch_size):
                stop = min(start + settings.batch_size, n)
                unit = _unit_batch(vectors[start:stop], start)
                for builder in builders.values():
                    builder.add(start, unit)
                progress.update(stop - start)
    codecs = {name: builder.finish(vectors, show_progress) for name, builder in builders.items()}
    arrays = {key: array for builder in builders.values() for key, array in builder.codec_arrays().items()}
    if partitions is not None:
        arrays.update(partitions.to_arrays())
    np.savez(out / CODEC_FILE, allow_pickle=False, **arrays)  # read back with allow_pickle=False too
    lexical = None
    if dataset.texts is not None:
        texts = dataset.texts if order is None else [dataset.texts[i] for i in order.tolist()]
        _write_texts(out, texts)
        lexical = _write_lexical(out, texts, settings, show_progress)
        if "sparse" in codecs and write_features(out, texts, n):  # labelled from the texts, beside the postings
            codecs["sparse"]["features"] = True
    write_payloads(out, dataset.payloads, order)
    return Manifest(
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        source_model=dataset.source_model,
        dim=dim,
        count=n,
        id_kind="int" if dataset.ids.dtype.kind in "iu" else "str",
        codecs=codecs,
        partitions=partitions.count if partitions is not None else 0,
        has_texts=dataset.texts is not None,
        lexical=lexical,
    )


def _write_lexical(out: Path, texts: Sequence[str | None], settings: BuildSettings, show_progress: bool) -> dict | None:
    """The BM25 index over the texts (for hybrid queries) and what the manifest records of it;
    None when the settings leave it out or the `lexical` extra is not installed."""
    if not settings.lexical:
        return None
    try:
        from vecdial.indexer.lexical import write_lexical

        record = write_lexical(out, texts, show_progress=show_progress)
    except InvalidInput as exc:  # bm25s missing, or no text to index: the version serves everything but hybrid
        log.warning("no lexical index for hybrid queries: %s", exc)
        return None
    return {key: value for key, value in record.items() if key not in ("files", "bytes")}


def _unit_batch(batch: np.ndarray, start: int) -> np.ndarray:
    batch = np.asarray(batch, dtype=np.float32)
    check_finite(batch, f"input vector (batch at {start})")
    return normalize_rows(batch, f"input vector (batch at {start})")


def _partition(
    vectors: Rows, sample: np.ndarray, settings: BuildSettings, show_progress: bool, engine: Engine | None = None
) -> tuple[Partitions | None, np.ndarray | None]:
    """Learn the cells and assign every row: (partitions, the input row stored at each position),
    or (None, None) for a version without partitions."""
    n = len(vectors)
    count = auto_count(n) if settings.partitions is None else settings.partitions
    if count <= 1:
        return None, None
    centroids = fit_centroids(sample, count, settings.seed)
    if engine is not None:
        cells = engine.cells(vectors, centroids, settings.batch_size, show_progress)
    else:
        nearest = centroid_index(centroids)
        cells = np.empty(n, dtype=np.int64)
        with tqdm(total=n, desc="partitioning", unit="vec", disable=not show_progress) as progress:
            for start in range(0, n, settings.batch_size):
                stop = min(start + settings.batch_size, n)
                cells[start:stop] = nearest.search(_unit_batch(vectors[start:stop], start), 1)[1][:, 0]
                progress.update(stop - start)
    offsets = np.zeros(len(centroids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(cells, minlength=len(centroids)), out=offsets[1:])
    order = np.argsort(cells, kind="stable")
    return Partitions(centroids, offsets), order


class Reordered:
    """Rows of `vectors` (N, dim) in the order `order` (N,): what every builder reads, so each
    store holds its rows cell after cell. Reads each batch's rows in ascending order (a memory
    map is read forward), then puts them in place."""

    def __init__(self, vectors: Rows, order: np.ndarray):
        self.vectors, self.order = vectors, order
        self.shape, self.dtype, self.ndim = vectors.shape, vectors.dtype, 2

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        wanted = self.order[key]
        ascending = np.argsort(wanted, kind="stable")
        out = np.empty((len(wanted), self.shape[1]), dtype=self.dtype)
        out[ascending] = self.vectors[wanted[ascending]]
        return out


def _write_texts(out: Path, texts: Sequence[str | None]) -> None:
    """Texts as JSON lines plus byte offsets, so a hit's text is one seek away."""
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    with open(out / TEXTS_FILE, "wb") as handle:
        for i, text in enumerate(texts):
            line = (json.dumps(text, ensure_ascii=False) + "\n").encode("utf-8")
            handle.write(line)
            offsets[i + 1] = offsets[i] + len(line)
    np.save(out / TEXT_OFFSETS_FILE, offsets)
