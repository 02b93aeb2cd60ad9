"""Write-ahead log: every acknowledged write is on disk before it is acknowledged.

Versions are immutable, so writes made since the serving version was built live
in one append-only file per version, `<collection>/wal/<version>.log`. Opening
the collection replays it; the next reindex folds it into a new version and
starts that version's log with only the records written after its snapshot.

A record is one frame:

```
magic b"VDW1" | payload bytes (u32 LE) | crc32(payload) (u32 LE) | payload
payload = meta bytes (u32 LE) | meta JSON {"op", "ids", "texts", "shape"} | float32 LE vectors
```

A frame is written whole and fdatasync'ed before the write is acknowledged, so
the only damage a crash can leave is a torn last frame (short, or failing its
checksum). Readers stop at the first frame that is not whole and valid, and
never crash on it: a torn frame was never acknowledged. Writers, who hold the
collection's write lock, cut such a tail off before appending after it.

Concurrent writers share fsyncs through `GroupCommit`: while one batch is being
flushed, later writes queue up and go to disk together in the next flush.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Literal, TypeVar

import numpy as np

from vecdial.indexer.disk.atomic import fsync_dir, write_atomic

MAGIC = b"VDW1"
FRAME = struct.Struct("<4sII")
META = struct.Struct("<I")
WAL_SUFFIX = ".log"


@dataclass(frozen=True)
class WalRecord:
    """One acknowledged write. vectors: (len(ids), dim) float32 unit rows for upserts, None for deletes."""

    op: Literal["upsert", "delete"]
    ids: list
    vectors: np.ndarray | None = None
    texts: list[str | None] | None = None


@dataclass(frozen=True)
class WalScan:
    """Whole records read from `start`; `end` is the offset just past the last of them.

    trailing: bytes after `end` that do not (yet) form a whole valid frame: a
    frame another process is writing right now, or the torn tail of a crash.
    """

    records: list[WalRecord]
    end: int
    trailing: int


def encode_record(record: WalRecord) -> bytes:
    """A record as one framed, checksummed byte string, ready to append."""
    shape = None if record.vectors is None else list(record.vectors.shape)
    meta = json.dumps({"op": record.op, "ids": list(record.ids), "texts": record.texts, "shape": shape}, ensure_ascii=False)
    meta_bytes = meta.encode("utf-8")
    vectors = b"" if record.vectors is None else np.ascontiguousarray(record.vectors, dtype="<f4").tobytes()
    payload = META.pack(len(meta_bytes)) + meta_bytes + vectors
    return FRAME.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_record(payload: bytes) -> WalRecord:
    """The inverse of encode_record, given a payload whose checksum has been verified."""
    (meta_len,) = META.unpack_from(payload)
    meta = json.loads(payload[META.size : META.size + meta_len].decode("utf-8"))
    vectors = None
    if meta["shape"] is not None:
        data = payload[META.size + meta_len :]
        vectors = np.frombuffer(data, dtype="<f4").reshape(meta["shape"]).astype(np.float32)
    return WalRecord(op=meta["op"], ids=meta["ids"], vectors=vectors, texts=meta["texts"])


def wal_path(wal_dir: Path, version_name: str) -> Path:
    """The log holding the writes made on top of one version."""
    return Path(wal_dir) / f"{version_name}{WAL_SUFFIX}"


class WriteAheadLog:
    """The append-only log of one version. Appending needs the collection's write lock;
    reading does not (a reader sees a prefix of whole records)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._path = str(self.path)  # os.stat on a str: every search's refresh asks for the size

    def size(self) -> int:
        """Bytes on disk now (0 when nothing was ever written)."""
        try:
            return os.stat(self._path).st_size
        except FileNotFoundError:
            return 0

    def read(self, start: int = 0) -> WalScan:
        """Every whole, valid record from byte `start` on; stops at the first that is not."""
        records: list[WalRecord] = []
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return WalScan(records, start, 0)
        with handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(start)
            offset = start
            while offset + FRAME.size <= size:
                magic, length, crc = FRAME.unpack(handle.read(FRAME.size))
                if magic != MAGIC or offset + FRAME.size + length > size:
                    break
                payload = handle.read(length)
                if len(payload) != length or zlib.crc32(payload) != crc:
                    break
                try:
                    records.append(decode_record(payload))
                except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                    break
                offset += FRAME.size + length
        return WalScan(records, offset, size - offset)

    def append(self, frames: Sequence[bytes]) -> int:
        """Append encoded records and make them durable with one fdatasync; return the new end.

        On any I/O error the file is cut back to where it was, so a failed write
        leaves no partial frame for the next writer to stumble on.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            before = os.fstat(fd).st_size
            try:
                data = b"".join(frames)
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fdatasync(fd)
            except BaseException:
                os.ftruncate(fd, before)
                raise
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path.parent)
        return before + len(data)

    def truncate(self, offset: int) -> None:
        """Cut the file at `offset`: drops a torn tail left by a writer that crashed."""
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, offset)
            os.fsync(fd)
        finally:
            os.close(fd)

    def copy_tail(self, start: int, end: int, target: Path) -> None:
        """Write bytes [start, end) of this log as the whole of `target`, atomically.

        Used at a version swap: the new version's log starts with exactly the
        records written after the reindex snapshot. The file is complete and
        fsynced before it gets its name, so a crash leaves either no new log or
        a whole one.
        """
        data = b""
        if end > start:
            with open(self.path, "rb") as handle:
                handle.seek(start)
                data = handle.read(end - start)
        write_atomic(Path(target), lambda out: out.write(data))


T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Ticket(Generic[T, R]):
    item: T
    done: bool = False
    result: R | None = None
    error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Lets concurrent threads share one flush: one fsync for every write that queued meanwhile.

    `flush(items)` runs in whichever waiting thread becomes leader and returns one
    result per item (an Exception instance as a result fails only that item).
    Everyone whose item went into a flush returns after that flush; nobody waits
    for more than the flush in progress plus their own.
    """

    def __init__(self, flush: Callable[[list[T]], list[R | Exception]], max_batch: int = 1024):
        self._flush = flush
        self._max_batch = max_batch
        self._queue: list[_Ticket[T, R]] = []
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()
        self.flushes = 0
        self.items = 0

    def submit(self, item: T) -> R:
        ticket: _Ticket[T, R] = _Ticket(item)
        with self._queue_lock:
            self._queue.append(ticket)
        while not ticket.done:
            with self._leader:
                if ticket.done:
                    break
                with self._queue_lock:
                    batch = self._queue[: self._max_batch]
                    del self._queue[: self._max_batch]
                self._run(batch)
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]

    def _run(self, batch: list[_Ticket[T, R]]) -> None:
        try:
            results = self._flush([t.item for t in batch])
        except BaseException as exc:  # every writer in the batch learns its write failed
            for ticket in batch:
                ticket.error, ticket.done = exc, True
            return
        self.flushes += 1
        self.items += len(batch)
        for ticket, result in zip(batch, results):
            if isinstance(result, Exception):
                ticket.error = result
            else:
                ticket.result = result
            ticket.done = True

