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
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vecdial.indexer.plan.budget import MAX_RESCORE, Budget, parse_budget
from vecdial.indexer.jobs.build import BuildSettings
from vecdial.indexer.disk.collection import CURRENT_FILE, Collection
from vecdial.indexer.errors import AlreadyExists, InvalidInput, NotFound
from vecdial.indexer.disk.locks import FileLock, is_locked
from vecdial.indexer.io.readers import Dataset
from vecdial.indexer.plan.execute import MAX_K, Explain, Searcher, StageReport, compile_plan
from vecdial.indexer.live.segment import Segment, SegmentView, search_segment
from vecdial.indexer.stores.blocks import BLOCKS_FILE
from vecdial.indexer.eval.sweep import resolve_budget
from vecdial.indexer.stores.topk import topk
from vecdial.indexer.vectors import as_query_matrix, check_finite, normalize_rows
from vecdial.indexer.disk.version import Version, open_version
from vecdial.indexer.live.wal import GroupCommit, WalRecord, WriteAheadLog, encode_record, wal_path

log = logging.getLogger("vecdial.live")

WAL_DIR = "wal"
WRITE_LOCK_FILE = "WRITE.lock"
REINDEX_LOCK_FILE = "REINDEX.lock"


def write_lock_path(collection: Collection) -> Path:
    """Held while appending to the log or swapping versions."""
    return collection.path / WRITE_LOCK_FILE


def reindex_lock_path(collection: Collection) -> Path:
    """Held for the whole of a reindex job: one at a time per collection."""
    return collection.path / REINDEX_LOCK_FILE


def wal_dir(collection: Collection) -> Path:
    return collection.path / WAL_DIR


@dataclass(frozen=True)
class WriteResult:
    """upserted: vectors written; deleted: ids that existed and are gone; size: live vectors after."""

    upserted: int
    deleted: int
    size: int
    version: str


@dataclass
class LiveResult:
    """Per query, best first: ids, scores (float) and, if asked, stored texts."""

    ids: list[list]
    scores: list[list[float]]
    texts: list[list[str | None]] | None
    explain: Explain
    version: str


@dataclass(frozen=True)
class LiveSnapshot:
    """Everything one search needs, never modified: share it freely between threads.

    dead_rows: sorted int64 version rows that are deleted or overwritten;
    wal_end: bytes of the version's log replayed into this snapshot.
    """

    name: str
    version: Version
    version_name: str
    wal_end: int
    dead_rows: np.ndarray
    segment: SegmentView

    @property
    def size(self) -> int:
        return self.version.size - len(self.dead_rows) + self.segment.alive_count

    def alive_version_rows(self) -> np.ndarray:
        """Version rows still served, ascending."""
        return np.setdiff1d(np.arange(self.version.size), self.dead_rows, assume_unique=True)

    def search(self, queries: np.ndarray, k: int = 10, budget: Budget | str | dict = "exact", with_text: bool = False) -> LiveResult:
        """queries: (dim,) or (nq, dim) float; the best k live vectors per query under the budget."""
        if not 0 < k <= MAX_K:
            raise InvalidInput(f"k={k} is out of range: use 1..{MAX_K}")
        requested = parse_budget(budget)
        version = self.version
        q = normalize_rows(as_query_matrix(queries, version.dim), "query")
        budget = resolve_budget(requested, version)  # `auto` -> the budget the sweep chose
        # Validates the budget before any work. The segment is not bounded by the
        # version's size, so its stages keep their unclamped candidate counts.
        segment_plan = compile_plan(budget, version, k, limit=k * MAX_RESCORE)
        started = time.perf_counter()
        # Ask the version for enough extra candidates that deleted rows cannot crowd out live ones.
        k_version = min(k + len(self.dead_rows), MAX_K)
        base = Searcher(version).search(q, k_version, requested)
        if len(self.dead_rows) == 0 and self.segment.alive_count == 0:
            return self._result(base.rows, base.scores, None, None, base.explain, with_text, k)
        t0 = time.perf_counter()
        q_rotated = version.rotation.apply(q)
        seg_rows, seg_scores, seg_bytes = search_segment(self.segment, segment_plan, q, q_rotated)
        stages = list(base.explain.stages)
        stages.append(StageReport("segment", int(seg_rows.shape[1]), seg_bytes, _ms(t0)))
        explain = Explain(budget=base.explain.budget, stages=stages)
        result = self._result(base.rows, base.scores, seg_rows, seg_scores, explain, with_text, k)
        explain.total_ms = _ms(started)
        return result

    def _result(
        self,
        rows: np.ndarray,
        scores: np.ndarray,
        seg_rows: np.ndarray | None,
        seg_scores: np.ndarray | None,
        explain: Explain,
        with_text: bool,
        k: int,
    ) -> LiveResult:
        """Drop dead version rows, merge with segment hits, keep the best k, map rows to ids."""
        t0 = time.perf_counter()
        live = rows >= 0
        if len(self.dead_rows):
            live &= ~_member(rows, self.dead_rows)
        merged = np.where(live, scores, -np.inf).astype(np.float32)
        if seg_rows is not None:
            merged = np.hstack([merged, seg_scores])
        positions, best = topk(merged, k)
        width = rows.shape[1]
        ids: list[list] = []
        out_scores: list[list[float]] = []
        texts: list[list[str | None]] | None = [] if with_text else None
        for qi, (q_pos, q_scores) in enumerate(zip(positions, best)):
            found = np.isfinite(q_scores)
            q_pos, q_scores = q_pos[found], q_scores[found]
            q_ids: list = [None] * len(q_pos)
            q_texts: list[str | None] = [None] * len(q_pos)
            v_slots = np.flatnonzero(q_pos < width)
            v_rows = rows[qi, q_pos[v_slots]]
            for slot, value in zip(v_slots, self.version.id_list(v_rows)):
                q_ids[slot] = value
            if with_text:
                for slot, text in zip(v_slots, self.version.texts(v_rows)):
                    q_texts[slot] = text
            for slot in np.flatnonzero(q_pos >= width):
                seg_row = int(seg_rows[qi, q_pos[slot] - width])
                q_ids[slot] = self.segment.ids[seg_row]
                q_texts[slot] = self.segment.texts[seg_row]
            ids.append(q_ids)
            out_scores.append([float(s) for s in q_scores])
            if texts is not None:
                texts.append(q_texts)
        if seg_rows is not None or len(self.dead_rows):
            explain.stages.append(StageReport("merge", max((len(i) for i in ids), default=0), 0, _ms(t0)))
        return LiveResult(ids, out_scores, texts, explain, self.version_name)


def _member(rows: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Elementwise `rows in sorted_values`, vectorised."""
    pos = np.searchsorted(sorted_values, rows)
    return sorted_values[np.minimum(pos, len(sorted_values) - 1)] == rows


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)


class _IdIndex:
    """User id -> version row, by binary search over the sorted ids (no per-id Python objects)."""

    def __init__(self, ids: np.ndarray):
        ids = np.asarray(ids)
        self.order = np.argsort(ids, kind="stable")
        self.sorted = ids[self.order]

    def rows(self, keys: list) -> np.ndarray:
        """Version rows of keys, -1 where a key is not in the version."""
        if len(self.sorted) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        wanted = np.asarray(keys)
        pos = np.minimum(np.searchsorted(self.sorted, wanted), len(self.sorted) - 1)
        found = self.sorted[pos] == wanted
        return np.where(found, self.order[pos], -1).astype(np.int64)


class LiveCollection:
    """A collection open for search and writes in this process; see the module docstring."""

    def __init__(self, collection: Collection, verify_checksums: bool = False):
        self.collection = collection
        self.verify_checksums = verify_checksums
        self._lock = threading.RLock()  # writer state: held to apply, append, reload
        self._opening = threading.Lock()  # one reader thread opens a swapped-in version at a time
        self._commit: GroupCommit[WalRecord, WriteResult] = GroupCommit(self._flush)
        self._key: tuple[str, int] | None = None
        self.reloads = 0
        stamp = self._current_stamp()
        key = self._current_key()
        with self._lock:
            self._install(key, self._open(key), stamp)

    @classmethod
    def open(cls, data_dir: Path, name: str, verify_checksums: bool = False) -> "LiveCollection":
        return cls(Collection(data_dir, name), verify_checksums)

    @property
    def name(self) -> str:
        return self.collection.name

    def snapshot(self) -> LiveSnapshot:
        """The state searches use now; it never changes under the caller."""
        return self._snapshot

    @property
    def group_commit_stats(self) -> tuple[int, int]:
        """(flushes, writes) so far: writes / flushes is the mean group-commit batch."""
        return self._commit.flushes, self._commit.items

    def search(self, queries: np.ndarray, k: int = 10, budget: Budget | str | dict = "exact", with_text: bool = False) -> LiveResult:
        return self._snapshot.search(queries, k, budget, with_text)

    def refresh(self) -> bool:
        """Catch up with writes and swaps made by other processes; two `stat`s when there are none.

        A newly swapped-in version is opened outside the writer lock, and while
        one thread opens it the others keep answering from the current snapshot
        rather than queue behind it. Raises NotFound if the collection was
        dropped. Returns True if the snapshot changed.
        """
        stamp = self._current_stamp()
        if stamp == self._stamp and self._wal.size() == self._wal_seen:
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

    def upsert(self, ids: list, vectors: np.ndarray, texts: list[str | None] | None = None) -> WriteResult:
        """Add or replace vectors by id; durable and searchable when this returns."""
        return self._commit.submit(self._upsert_record(ids, vectors, texts))

    def delete(self, ids: list) -> WriteResult:
        """Remove vectors by id (ids that do not exist are ignored); durable when this returns."""
        return self._commit.submit(WalRecord("delete", check_ids(ids, self._snapshot.version.manifest.id_kind)))

    # -- writer side: everything below runs under self._lock --------------------------------

    def _upsert_record(self, ids: list, vectors: np.ndarray, texts: list[str | None] | None) -> WalRecord:
        manifest = self._snapshot.version.manifest
        ids = check_ids(ids, manifest.id_kind)
        unit = check_vectors(vectors, len(ids), manifest.dim)
        if texts is not None:
            if len(texts) != len(ids):
                raise InvalidInput(f"got {len(texts)} texts for {len(ids)} ids: send one text (or null) per id")
            if any(t is not None and not isinstance(t, str) for t in texts):
                raise InvalidInput("texts must be strings or null")
        return WalRecord("upsert", ids, unit, list(texts) if texts is not None else None)

    def _flush(self, records: list[WalRecord]) -> list[WriteResult | Exception]:
        """One group commit: lock, catch up, append every record, one fdatasync, apply, publish."""
        with self._lock, FileLock(write_lock_path(self.collection)):
            self._sync()
            if self._wal.size() > self._wal_end:
                dropped = self._wal.size() - self._wal_end
                log.warning("%s: dropping a torn tail of %d bytes from %s", self.name, dropped, self._wal.path)
                self._wal.truncate(self._wal_end)
            end = self._wal.append([encode_record(r) for r in records])
            counts = [self._apply(r) for r in records]
            self._wal_end = self._wal_seen = end
            self._publish()
            size, version = self._snapshot.size, self._snapshot.version_name
            return [WriteResult(up, gone, size, version) for up, gone in counts]

    def _sync(self) -> None:
        """Reload if CURRENT names another version, then replay log records not seen yet."""
        stamp = self._current_stamp()
        if stamp != self._stamp:
            key = self._current_key()
            if key != self._key:
                self._install(key, self._open(key), stamp)
                return
            self._stamp = stamp
        size = self._wal.size()
        if size != self._wal_seen:
            scan = self._wal.read(self._wal_end)
            for record in scan.records:
                self._apply(record)
            self._wal_end, self._wal_seen = scan.end, size
            if scan.records:
                self._publish()

    def _open(self, key: tuple[str, int]) -> Version:
        return open_version(self.collection.versions_dir / key[0], self.verify_checksums)

    def _install(self, key: tuple[str, int], version: Version, stamp: tuple) -> None:
        """Serve `version` with a fresh segment replayed from its whole log (no-op if it already is)."""
        if key == self._key:
            return
        if self._key is not None:
            self.reloads += 1
        self._key, self._stamp = key, stamp
        self._version = version
        self._version_name = key[0]
        self._segment = Segment(version)
        self._dead = np.zeros(0, dtype=np.int64)
        self._ids: _IdIndex | None = None
        self._wal = WriteAheadLog(wal_path(wal_dir(self.collection), key[0]))
        self._wal_seen = self._wal.size()
        scan = self._wal.read(0)
        for record in scan.records:
            self._apply(record)
        self._wal_end = scan.end
        if scan.trailing:
            log.warning("%s: %d bytes at the end of %s are not a whole record (ignored)", self.name, scan.trailing, self._wal.path)
        self._publish()

    def _apply(self, record: WalRecord) -> tuple[int, int]:
        """Fold one record into the writer state; return (upserted, deleted)."""
        if self._ids is None:
            self._ids = _IdIndex(self._version.ids)
        rows = self._ids.rows(record.ids)
        in_version = rows[rows >= 0]
        newly_dead = np.setdiff1d(in_version, self._dead, assume_unique=False)
        if len(newly_dead):
            self._dead = np.union1d(self._dead, newly_dead)
        if record.op == "upsert":
            self._segment.add(record.ids, record.vectors, record.texts)
            return len(record.ids), 0
        return 0, len(newly_dead) + self._segment.remove(record.ids)

    def _publish(self) -> None:
        self._snapshot = LiveSnapshot(
            name=self.name,
            version=self._version,
            version_name=self._version_name,
            wal_end=self._wal_end,
            dead_rows=self._dead,
            segment=self._segment.view(),
        )

    def _current_stamp(self) -> tuple:
        """Changes whenever CURRENT is replaced (by rename: a new inode)."""
        try:
            st = os.stat(self.collection.path / CURRENT_FILE)
        except FileNotFoundError:
            raise NotFound(f"collection {self.name!r} does not exist (dropped?)") from None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _current_key(self) -> tuple[str, int]:
        """The serving version's name and the inode of its memory-mapped dense store.

        A collection dropped and built again reuses version names, but not the
        inode of a file this process still maps, so the key tells the two apart.
        """
        name = self.collection.current_version_name()
        try:
            return name, os.stat(self.collection.versions_dir / name / BLOCKS_FILE).st_ino
        except FileNotFoundError:
            raise NotFound(f"collection {self.name!r} does not exist (dropped?)") from None


def check_ids(ids: list, id_kind: str) -> list:
    """Ids as plain Python values of the collection's kind, each once, or InvalidInput."""
    if len(ids) == 0:
        raise InvalidInput("no ids given")
    out: list = []
    for i, value in enumerate(ids):
        if id_kind == "int":
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise InvalidInput(f"ids[{i}] is {value!r}: this collection has integer ids")
            out.append(int(value))
        else:
            if not isinstance(value, str) or not value:
                raise InvalidInput(f"ids[{i}] is {value!r}: this collection has non-empty string ids")
            out.append(value)
    if len(set(out)) != len(out):
        raise InvalidInput("an id appears twice in one request: send each id once")
    return out


def check_vectors(vectors: np.ndarray, count: int, dim: int) -> np.ndarray:
    """(count, dim) finite, non-zero vectors -> float32 unit rows, or InvalidInput saying which row."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim == 1 and count == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] != count:
        raise InvalidInput(f"got {x.shape[0] if x.ndim else 0} vectors for {count} ids: send one vector per id")
    if x.shape[1] != dim:
        raise InvalidInput(f"vectors have {x.shape[1]} dimensions, the collection has {dim}")
    check_finite(x, "vector")
    return normalize_rows(x, "vector")


def create_collection(collection: Collection, dataset: Dataset, settings: BuildSettings = BuildSettings()) -> Path:
    """Build a new collection; AlreadyExists if one of that name is there (checked under the write lock)."""
    created_dir = not collection.path.exists()
    collection.path.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(write_lock_path(collection)):
            if collection.exists():
                raise AlreadyExists(f"collection {collection.name!r} exists already: drop it first, or reindex it")
            return collection.build(dataset, settings, show_progress=False, replace=False)
    except BaseException:
        if created_dir and not collection.exists():
            shutil.rmtree(collection.path, ignore_errors=True)
        raise


def drop_collection(collection: Collection) -> None:
    """Delete a collection and its log; refused while a reindex of it runs."""
    if not collection.exists():
        raise NotFound(f"collection {collection.name!r} does not exist")
    if is_locked(reindex_lock_path(collection)):
        raise AlreadyExists(f"a reindex of {collection.name!r} is running: cancel it (or wait) before dropping")
    with FileLock(write_lock_path(collection)):
        collection.drop()
