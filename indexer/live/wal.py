"""Write-ahead log: every acknowledged write is on disk before it is acknowledged.

Versions are immutable, so writes made since the serving version was built live
in one append-only file per version, `<collection>/wal/<version>.log`. Opening
the collection replays it; the next reindex folds it into a new version and
starts that version's log with only the records written after its snapshot.

A record is one checksummed frame (`frames.py`, which also says how a scan tells
a torn tail from damage). A frame is written whole and fdatasync'ed before the
write is acknowledged, so the only thing a crash leaves is a torn last frame: it
was never acknowledged, readers skip it, and writers (who hold the collection's
write lock) cut it off before appending, after checking again that it is torn
and nothing else. Damaged bytes are never cut: see `repair.py`.

A log cut short exactly at a frame boundary would look like a shorter, healthy
log. So after each durable append a witness is written beside it
(`<version>.end`): the acknowledged end, where the last acknowledged frame starts
and the CRC its header carries (`Witness`). It names no inode, so it holds on a
copy of the data directory (cp -r, rsync, a restore) as on the original. The
witness needs no fsync: it is written only after the bytes it vouches for are
durable, so it is never ahead of them, and a stale one (a crash before it was
written) is merely behind, vouching for an earlier frame that is still there. A
log shorter than its witness, one that does not hold the witnessed frame where it
ended, and a missing log whose witness vouches for bytes have lost acknowledged
records: that is damage, reported as such. A witness of the older (inode, end)
form is still read, for its end.

Concurrent writers share fsyncs through `GroupCommit`: while one batch is being
flushed, later writes queue up and go to disk together in the next flush.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Generic, TypeVar

from vecdial.indexer.disk.atomic import fsync_dir, write_atomic
from vecdial.indexer.disk.layout import witness_of
from vecdial.indexer.errors import DamagedLog
from vecdial.indexer.live.frames import (
    FRAME,
    MAGIC,
    META,
    WalRecord,
    WalScan,
    decode_record,
    encode_record,
    merge_ranges,
    scan_frames,
)

__all__ = [
    "FRAME",
    "MAGIC",
    "META",
    "GroupCommit",
    "WalRecord",
    "WalScan",
    "Witness",
    "WriteAheadLog",
    "decode_record",
    "encode_record",
]

_WITNESS = struct.Struct("<4sQQI")  # magic, acknowledged end, start of the last frame, its header's CRC; then crc32 of these
_WITNESS_MAGIC = b"VDE2"
_OLD_WITNESS = struct.Struct("<QQ")  # (inode, acknowledged end): what earlier versions wrote


@dataclass(frozen=True)
class Witness:
    """What a log held at its last acknowledged append: `end`, and its last frame's start
    (`last == end`: no frame) and header CRC (`last is None`: an old witness, the end alone)."""

    end: int
    last: int | None = None
    crc: int = 0

    @classmethod
    def of(cls, spans: Sequence[tuple[int, int]], last_frame: bytes) -> Witness:
        """The witness of a log whose frames span `spans`, the last of which is `last_frame`."""
        if not spans:
            return cls(0, 0)
        return cls(spans[-1][1], spans[-1][0], FRAME.unpack_from(last_frame)[2])

    def encode(self) -> bytes:
        body = _WITNESS.pack(_WITNESS_MAGIC, self.end, self.end if self.last is None else self.last, self.crc)
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def decode(cls, data: bytes) -> Witness | None:
        """None for anything but a whole witness of either form (a missing or torn one vouches for nothing)."""
        if len(data) == _OLD_WITNESS.size:
            return cls(_OLD_WITNESS.unpack(data)[1])
        body = data[: _WITNESS.size]
        if len(data) != _WITNESS.size + 4 or struct.unpack_from("<I", data, _WITNESS.size)[0] != zlib.crc32(body):
            return None
        magic, end, last, crc = _WITNESS.unpack(body)
        return cls(end, last, crc) if magic == _WITNESS_MAGIC else None

    def lost(self, fd: int, size: int) -> tuple[int, int] | None:
        """The acknowledged bytes an open log of `size` bytes does not hold as vouched for, or None."""
        if self.end > size:
            return (size, self.end)  # cut short (also at a frame boundary)
        if self.last is None or self.last == self.end:
            return None
        header = os.pread(fd, FRAME.size, self.last)
        if len(header) == FRAME.size:
            magic, length, crc = FRAME.unpack(header)
            if magic == MAGIC and self.last + FRAME.size + length == self.end and crc == self.crc:
                return None
        return (self.last, self.end)  # not the frame that was acknowledged last: another log, or one cut and written on


class WriteAheadLog:
    """The append-only log of one version. Appending needs the collection's write lock;
    reading does not (a reader sees a prefix of whole records)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._path = str(self.path)  # os.stat on a str: every search's refresh asks for the size
        self.witness_path = witness_of(self.path)

    def size(self) -> int:
        """Bytes on disk now (0 when nothing was ever written)."""
        return self.stamp()[1]

    def stamp(self) -> tuple[int, int]:
        """(inode, size) now, (0, 0) if there is no log: a new inode means the log was replaced (repaired)."""
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return (0, 0)
        return (st.st_ino, st.st_size)

    def read(self, start: int = 0) -> WalScan:
        """Every whole, valid record from byte `start` (a frame boundary) on, with damage and torn tail told apart."""
        witness = self.witnessed()  # before the log's size: a healthy log is never shorter
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:  # never written, or deleted: the witness tells which
            vouched = witness.end if witness is not None else 0
            return WalScan([], start, damage=[(0, vouched)] if vouched else [])
        with handle:
            st = os.fstat(handle.fileno())
            scan = scan_frames(handle.fileno(), start, (st.st_ino, st.st_size))
            lost = witness.lost(handle.fileno(), st.st_size) if witness is not None else None
        if lost is not None:
            scan.damage[:] = merge_ranges([*scan.damage, lost])  # acknowledged bytes that are gone
        return scan

    def witnessed(self) -> Witness | None:
        """What the log held at its last acknowledged append, if recorded."""
        try:
            with open(self.witness_path, "rb") as handle:
                data = handle.read(_WITNESS.size + 8)
        except FileNotFoundError:
            return None
        return Witness.decode(data)

    def rewitness(self, witness: Witness | None = None, durable: bool = False) -> None:
        """Vouch for the log as `witness` says (None: as it is now, found by reading it whole).
        durable: fsync the witness (a repair writes it before the rename that makes it true)."""
        if witness is None:
            with open(self.path, "rb") as handle:
                spans = scan_frames(handle.fileno(), 0, (0, os.fstat(handle.fileno()).st_size)).spans
                witness = Witness.of(spans, os.pread(handle.fileno(), FRAME.size, spans[-1][0]) if spans else b"")
        self._witness(witness, durable)

    def _witness(self, witness: Witness, durable: bool = False) -> None:
        data = witness.encode()
        fd = os.open(self.witness_path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, frames: Sequence[bytes]) -> int:
        """Append encoded records and make them durable with one fdatasync; return the new end.

        On any I/O error the file is cut back to where it was, so a failed write
        leaves no partial frame for the next writer to stumble on.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            st = os.fstat(fd)
            before = st.st_size
            try:
                data = b"".join(frames)
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fdatasync(fd)
            except BaseException:
                os.ftruncate(fd, before)
                raise
            end = before + len(data)
            if frames:
                self._witness(Witness(end, end - len(frames[-1]), FRAME.unpack_from(frames[-1])[2]))
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path.parent)
        return before + len(data)

    def truncate(self, offset: int) -> None:
        """Cut the file at `offset`, unchecked: writers use `cut_torn_tail`."""
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, offset)
            os.fsync(fd)
        finally:
            os.close(fd)

    def cut_torn_tail(self, end: int) -> int:
        """Cut what follows `end` (the end of the last valid frame) if, and only if, it is a torn tail.

        Returns the bytes cut. Raises DamagedLog, cutting nothing, if those bytes hold
        a valid frame or damage. The caller holds the collection's write lock, so no
        write is in progress and the bytes are what a crash left.
        """
        scan = self.read(end)
        if scan.records or scan.damage:
            raise DamagedLog(
                f"{self.path}: refusing to cut bytes {end}-{scan.stamp[1]}: they hold "
                f"{len(scan.records)} valid records and {scan.damaged_bytes} damaged bytes, not a torn write"
            )
        if scan.trailing:
            self.truncate(end)
        return scan.trailing

    def copy_tail(self, start: int, end: int, target: Path) -> None:
        """Write bytes [start, end) of this log as the whole of `target`, atomically.

        Used at a version swap: the new version's log starts with exactly the
        records written after the reindex snapshot. The file is complete and
        fsynced before it gets its name, so a crash leaves either no new log or
        a whole one. Raises DamagedLog if the log holds damaged bytes after
        `start`: a swap must not fold a damaged log away (repair it first).
        """
        data, witness = b"", Witness(0, 0)
        if end > start:
            scan = self.read(start)
            if scan.damage:
                first = scan.damage[0]
                raise DamagedLog(f"{self.path} is damaged at bytes {first[0]}-{first[1]}: repair it before reindexing")
            with open(self.path, "rb") as handle:
                handle.seek(start)
                data = handle.read(end - start)
            spans = [(a - start, b - start) for a, b in scan.spans if b <= end]
            witness = Witness.of(spans, data[spans[-1][0] :])

        def copy(out: IO[bytes]) -> None:
            out.write(data)

        write_atomic(Path(target), copy)
        WriteAheadLog(Path(target)).rewitness(witness)  # the copied records are acknowledged writes too


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
