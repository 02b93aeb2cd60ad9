"""A collection that takes writes: the serving version, its WAL segment and its deletions.

`LiveCollection` = the current immutable `Version` + the in-memory segment of
vectors upserted since it was built (replayed from the write-ahead log) + the
set of version rows deleted or overwritten since. Everything a search needs is
one immutable `LiveSnapshot`; writers build the next snapshot and swap one
reference, so a search keeps the version and segment it started with even if a
write, a reindex or a swap lands meanwhile.

Several processes (server workers, the CLI) may hold the same collection. They
stay in step through the disk alone: a write takes the collection's write lock,
catches up with the log and the CURRENT pointer, appends, fsyncs and only then
is acknowledged; a reader's `refresh()` stats CURRENT and the log and replays
what it has not seen. So a write acknowledged by any process is seen by the
next search in every process that refreshes before searching.

A damaged log (`frames.py`) is never cut or skipped silently: the collection serves
every valid record, those after the damage too (what `repair` keeps), reports it in
`damaged` and refuses writes and reindexes (DamagedLog) until `repair()`. Damage is
found where the log is read (open, catch-up, a full `repair(dry_run=True)` scan),
and confirmed under the write lock, so a write in progress never passes for it.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.disk.locks import FileLock, is_locked
from vecdial.indexer.disk.sweep_file import read_bins, read_sweep
from vecdial.indexer.disk.version import Version, open_version
from vecdial.indexer.errors import AlreadyExists, DamagedLog, NotFound
from vecdial.indexer.filters.table import check_payloads
from vecdial.indexer.io.checks import check_ids, check_page, check_texts, check_vectors
from vecdial.indexer.live.repair import RepairReport, damage_message, salvage_log
from vecdial.indexer.live.segment import Segment
from vecdial.indexer.live.snapshot import IdIndex, LiveSnapshot, page_ids
from vecdial.indexer.live.wal import GroupCommit, WalRecord, WalScan, WriteAheadLog, encode_record
from vecdial.indexer.plan.calibration import SweepPoint
from vecdial.indexer.plan.execute import Hits, View
from vecdial.indexer.plan.per_query import QueryBins
from vecdial.indexer.stores.alive import AliveRows
from vecdial.indexer.stores.blocks import BLOCKS_FILE

log = logging.getLogger("vecdial.live")


@dataclass(frozen=True)
class WriteResult:
    """upserted: vectors written; deleted: ids that existed and are gone; size: live vectors after."""

    upserted: int
    deleted: int
    size: int
    version: str


class LiveCollection:
    """A collection open for search and writes in this process; see the module docstring."""

    # Set by _install, _replay and _load_sweep (under self._lock) before the constructor returns.
    _stamp: tuple  # CURRENT's (inode, mtime, size) when last read
    _version: Version
    _version_name: str
    _version_dir: str
    _ids: IdIndex | None  # the serving version's id index, made on first use
    _wal: WriteAheadLog
    _wal_end: int  # offset past the last record applied
    _wal_seen: tuple[int, int]  # the log's (inode, size) when last read
    _segment: Segment
    _dead: np.ndarray  # (d,) int64 sorted version rows deleted or overwritten
    _alive: AliveRows | None  # _dead as a mask, remade by the next publish when None
    _sweep: tuple[tuple[SweepPoint, ...], str, QueryBins | None] | None
    _sweep_seen: int
    _snapshot: LiveSnapshot

    def __init__(self, collection: Collection, verify_checksums: bool = False):
        self.collection = collection
        self.verify_checksums = verify_checksums
        self._lock = threading.RLock()  # writer state: held to apply, append, reload
        self._opening = threading.Lock()  # one reader thread opens a swapped-in version at a time
        self._commit: GroupCommit[WalRecord, WriteResult] = GroupCommit(self._flush)
        self._key: tuple[str, int] | None = None
        self._damage: list[tuple[int, int]] = []  # byte ranges of the current log found damaged
        self._current_file = str(collection.layout.current)  # stat on every refresh
        self.reloads = 0
        stamp = self._current_stamp()
        key = self._current_key()
        with self._lock:
            self._install(key, self._open(key), stamp)

    @classmethod
    def open(cls, data_dir: Path, name: str, verify_checksums: bool = False) -> LiveCollection:
        return cls(Collection(data_dir, name), verify_checksums)

    @property
    def name(self) -> str:
        return self.collection.name

    def snapshot(self) -> LiveSnapshot:
        """The state searches use now; it never changes under the caller."""
        return self._snapshot

    def search(self, queries: np.ndarray, k: int = 10, budget: Any = "exact", **options: Any) -> Hits:
        """See `LiveSnapshot.search` for the options (SearchOptions' fields, plan/options.py)."""
        return self._snapshot.search(queries, k, budget, **options)

    def refresh(self) -> bool:
        """Catch up with writes and swaps made by other processes; two `stat`s when there are none.

        A newly swapped-in version is opened outside the writer lock, and while
        one thread opens it the others keep answering from the current snapshot
        rather than queue behind it. Raises NotFound if the collection was
        dropped. Returns True if the snapshot changed.
        """
        stamp = self._current_stamp()
        if stamp == self._stamp and self._wal.stamp() == self._wal_seen:
            if self._sweep_stamp() != self._sweep_seen:
                with self._lock:
                    self._load_sweep()
                    self._publish()
                return True
            return False
        before = self._snapshot
        if stamp != self._stamp:
            key = self._current_key()
            if key != self._key:
                if not self._opening.acquire(blocking=False):
                    return False
                try:
                    version = self._open(key)
                    with self._lock:
                        self._install(key, version, stamp)
                finally:
                    self._opening.release()
                return self._snapshot is not before
        with self._lock:
            self._sync()
        return self._snapshot is not before

    def sweep_changed(self) -> None:
        """Serve the sweep just written beside the version (other processes see it on refresh)."""
        with self._lock:
            self._load_sweep()
            self._publish()

    @property
    def damaged(self) -> str | None:
        """None, or what in the log is damaged and what to run (DamagedLog's message)."""
        damage = self._damage
        return damage_message(self.name, self._wal.path, damage, missing=not self._wal.path.exists()) if damage else None

    def check_writable(self) -> None:
        """DamagedLog if the log is damaged: appending after damage, or folding it, could lose what is left."""
        message = self.damaged
        if message is not None:
            raise DamagedLog(message)

    def upsert(self, ids: list, vectors: np.ndarray, texts: list[str | None] | None = None, payloads: list | None = None) -> WriteResult:
        """Add or replace items by id (payloads: one dict or None each); durable and searchable when this returns."""
        record = self._upsert_record(ids, vectors, texts, payloads)
        self.check_writable()
        return self._commit.submit(record)

    def delete(self, ids: list) -> WriteResult:
        """Remove vectors by id (ids that do not exist are ignored); durable when this returns."""
        record = WalRecord("delete", check_ids(ids, self._snapshot.version.manifest.id_kind))
        self.check_writable()
        return self._commit.submit(record)

    def ids(self, after: Any = None, limit: int = 1000) -> tuple[list, Any]:
        """(up to `limit` live ids in ascending order, all greater than `after`; the cursor for
        the next page, or None after the last). See `snapshot.page_ids`."""
        snapshot = self._snapshot
        after, limit = check_page(after, limit, snapshot.version.manifest.id_kind)
        return page_ids(self._id_index(snapshot.version), snapshot.dead_rows, snapshot.segment, after, limit)

    def repair(self, dry_run: bool = False) -> RepairReport:
        """Scan the whole log; unless dry_run, salvage its valid records into a new log (see repair.py)
        and serve them, writable again. Refused (AlreadyExists) while a reindex of the collection runs."""
        with self._lock, FileLock(self.collection.layout.write_lock):
            self._sync(locked=True)
            reindex = FileLock(self.collection.layout.reindex_lock)
            if not dry_run and not reindex.acquire(blocking=False):
                raise AlreadyExists(f"a reindex of {self.name!r} is running: wait for it to end (or cancel it), then repair")
            try:
                scan = self._wal.read(0)
                report = salvage_log(self.name, self._wal, scan, dry_run)
                if report.repaired:
                    self._replay(locked=True)
                else:
                    self._damage = list(scan.damage)  # a full scan may find damage in bytes read before it appeared
            finally:
                reindex.release()
        if report.damaged:
            log.error("%s", report.summary().replace("\n", "; "))
        return report

    # -- writer side: everything below runs under self._lock --------------------------------

    def _upsert_record(self, ids: list, vectors: np.ndarray, texts: list[str | None] | None, payloads: list | None) -> WalRecord:
        snapshot = self._snapshot
        ids = check_ids(ids, snapshot.version.manifest.id_kind)
        unit = check_vectors(vectors, len(ids), snapshot.version.manifest.dim)
        types, rows = check_payloads(payloads, len(ids), snapshot.segment.payload_types)
        return WalRecord("upsert", ids, unit, check_texts(texts, len(ids)), None if payloads is None else rows, types)

    def _flush(self, records: list[WalRecord]) -> list[WriteResult | Exception]:
        """One group commit: lock, catch up, append every record whose payload types fit, one fdatasync, apply, publish."""
        with self._lock, FileLock(self.collection.layout.write_lock):
            self._sync(locked=True)
            if self._damage:
                return [DamagedLog(self.damaged) for _ in records]
            refused = self._segment.refused([r.payload_types for r in records])
            records = [r for r, error in zip(records, refused) if error is None]
            if self._wal.size() > self._wal_end:
                dropped = self._wal.cut_torn_tail(self._wal_end)  # checks again: never cuts a valid frame or damage
                log.warning("%s: dropped a torn tail of %d bytes (a write never acknowledged) from %s", self.name, dropped, self._wal.path)
            end = self._wal.append([encode_record(r) for r in records]) if records else self._wal_end
            counts = iter([self._apply(r) for r in records])
            self._wal_end, self._wal_seen = end, self._wal.stamp()
            self._publish()
            size, version = self._snapshot.size, self._snapshot.version_name
            return [error or WriteResult(*next(counts), size, version) for error in refused]

    def _sync(self, locked: bool = False) -> None:
        """Reload if CURRENT names another version, then replay log records not seen yet.
        locked: the caller holds the collection's write lock."""
        stamp = self._current_stamp()
        if stamp != self._stamp:
            key = self._current_key()
            if key != self._key:
                self._install(key, self._open(key), stamp, locked)
                return
            self._stamp = stamp
        if self._wal.stamp() == self._wal_seen:
            return
        start = self._wal_end
        scan = self._scan(start, locked)
        if scan.stamp == (0, 0) and self._current_stamp() != stamp:
            return self._sync(locked)  # a swap moved on (and pruned this version's log) meanwhile
        if scan.stamp == (0, 0) and scan.damage:  # deleted under its witness: serve what was read, refuse writes
            self._wal_seen = scan.stamp
            return self._note_damage(0, scan)
        if scan.stamp[0] != self._wal_seen[0] and (self._wal_seen[0] or self._wal_end):
            self._replay(locked)  # the log was replaced (repaired elsewhere, or restored): offsets start over
            return
        for record in scan.records:
            self._apply(record)
        self._wal_end, self._wal_seen = scan.end, scan.stamp
        self._note_damage(start, scan)
        if scan.records:
            self._publish()

    def _scan(self, start: int, locked: bool) -> WalScan:
        """The log from `start`; damage seen without the write lock is confirmed under it."""
        scan = self._wal.read(start)
        if scan.damage and not locked:
            with FileLock(self.collection.layout.write_lock):
                scan = self._wal.read(start)
        return scan

    def _note_damage(self, start: int, scan: WalScan) -> None:
        """Damage found by a scan from `start` replaces what earlier scans said about those bytes."""
        damage = sorted(set([r for r in self._damage if r[0] < start] + scan.damage))
        if scan.damage:
            log.error("%s", damage_message(self.name, self._wal.path, damage, missing=scan.stamp == (0, 0)))
        self._damage = damage

    def _id_index(self, version: Version) -> IdIndex:
        if version is not self._version:  # a snapshot of a version swapped out since
            return IdIndex(version.ids)
        if self._ids is None:
            self._ids = IdIndex(version.ids)
        return self._ids

    def _open(self, key: tuple[str, int]) -> Version:
        return open_version(self.collection.versions_dir / key[0], self.verify_checksums)

    def _install(self, key: tuple[str, int], version: Version, stamp: tuple, locked: bool = False) -> None:
        """Serve `version` with a fresh segment replayed from its whole log (no-op if it already is)."""
        if key == self._key:
            return
        if self._key is not None:
            self.reloads += 1
        self._key, self._stamp = key, stamp
        self._version = version
        self._version_name = key[0]
        self._ids = None
        self._load_sweep()
        self._wal = WriteAheadLog(self.collection.layout.log(key[0]))
        self._replay(locked)

    def _replay(self, locked: bool) -> None:
        """A fresh segment and deletion set, replayed from the whole log of the serving version."""
        self._segment = Segment(self._version)
        self._dead = np.zeros(0, dtype=np.int64)
        self._alive = None
        scan = self._scan(0, locked)
        for record in scan.records:
            self._apply(record)
        self._wal_end, self._wal_seen = scan.end, scan.stamp
        self._note_damage(0, scan)  # from 0: replaces whatever was noted before
        if scan.trailing:
            log.warning("%s: %d bytes at the end of %s are not a whole record (ignored)", self.name, scan.trailing, self._wal.path)
        self._publish()

    def _apply(self, record: WalRecord) -> tuple[int, int]:
        """Fold one record into the writer state; return (upserted, deleted)."""
        rows = self._id_index(self._version).rows(record.ids)
        in_version = rows[rows >= 0]
        newly_dead = np.setdiff1d(in_version, self._dead, assume_unique=False)
        if len(newly_dead):
            self._dead = np.union1d(self._dead, newly_dead)
            self._alive = None  # remade by the next publish
        if record.op == "upsert":
            assert record.vectors is not None  # an upsert's record always carries its rows (frames.py)
            self._segment.add(record.ids, record.vectors, record.texts, record.payloads, record.payload_types)
            return len(record.ids), 0
        return 0, len(newly_dead) + self._segment.remove(record.ids)

    def _publish(self) -> None:
        if self._alive is None and len(self._dead):
            dead = np.zeros(self._version.size, dtype=bool)
            dead[self._dead] = True
            self._alive = AliveRows(dead)
        sweep, source, bins = self._sweep or (None, None, None)
        view = View(
            version=self._version,
            name=self._version_name,
            alive=self._alive,
            segment=self._segment.view(),
            sweep=sweep,
            sweep_source=source,
            sweep_bins=bins,
        )
        self._snapshot = LiveSnapshot(name=self.name, view=view, wal_end=self._wal_end, dead_rows=self._dead)

    def _sweep_stamp(self) -> int:
        """The version directory's mtime: a sweep lands there by rename, nothing else does once it is built."""
        return os.stat(self._version_dir).st_mtime_ns

    def _load_sweep(self) -> None:
        self._version_dir = str(self._version.path)
        self._sweep_seen = self._sweep_stamp()
        sweep = read_sweep(self._version.path)  # (points, source), then the bins of per-query auto
        self._sweep = (*sweep, read_bins(self._version.path)) if sweep else None

    def _current_stamp(self) -> tuple:
        """Changes whenever CURRENT is replaced (by rename: a new inode)."""
        try:
            st = os.stat(self._current_file)
        except FileNotFoundError:
            raise NotFound(f"collection {self.name!r} does not exist (dropped?)") from None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _current_key(self) -> tuple[str, int]:
        """The serving version's name and the inode of its memory-mapped dense store: a collection
        dropped and built again reuses names, not the inode of a file this process still maps."""
        name = self.collection.current_version_name()
        try:
            return name, os.stat(self.collection.layout.version(name) / BLOCKS_FILE).st_ino
        except FileNotFoundError:
            raise NotFound(f"collection {self.name!r} does not exist (dropped?)") from None


def drop_collection(collection: Collection) -> None:
    """Delete a collection and its log; refused while a reindex of it runs."""
    if not collection.exists():
        raise NotFound(f"collection {collection.name!r} does not exist")
    if is_locked(collection.layout.reindex_lock):
        raise AlreadyExists(f"a reindex of {collection.name!r} is running: cancel it (or wait) before dropping")
    with FileLock(collection.layout.write_lock):
        collection.drop()
