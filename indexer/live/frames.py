"""WAL frames: the record codec, and the scan that tells a torn tail from damage.

One record is one frame (the format of every log vecdial has written, so old logs
read as they are; nothing is converted):

```
magic b"VDW1" | payload bytes (u32 LE) | crc32(payload) (u32 LE) | payload
payload = meta bytes (u32 LE) | meta JSON {"op", "ids", "texts", "shape"[, "payloads", "payload_types"]} | float32 LE vectors
```

An upsert with payloads adds "payloads" (one canonical dict or null per id, filters/values.py)
and "payload_types" (field -> type); records without them (every log written before
payloads existed) read as upserts without payloads.

CRC-32 catches every 1-bit (and every burst up to 32 bits) error in a payload, so
a frame that verifies is the frame that was written. What a scan does with bytes
at offset `o` that are not a whole valid frame:

- It **scans ahead** for the next `b"VDW1"` that starts a whole frame which
  verifies and decodes. Found at `p`: bytes `[o, p)` are **damage**. The frames
  after them were acknowledged, so whatever was in `[o, p)` was acknowledged too
  (a crash only ever tears the last write).
- None found: `[o, end of file)` is the tail. It is a **torn tail** (a write cut
  short by a crash, or one another process is making right now: never
  acknowledged) only if it is a proper prefix of a frame: shorter than a header
  and starting like the magic, or a header whose payload runs past the end of
  the file (and whose bytes present are not the whole payload, which would mean
  the length field itself was hit). Anything else (a whole-length frame failing
  its checksum, a wrong magic, garbage) is **damage**: a bit flip or a bad block
  on the last record must not pass for a crash and be cut away.

A torn tail is dropped quietly and cut by the next write. Damage is never cut:
the scan reports its byte ranges, and the collection refuses writes until
`vecdial repair` has salvaged every valid frame (see `repair.py`).

Not distinguishable from the log alone: a file cut at a frame boundary (it reads
as a shorter, whole log) or inside its last frame (a torn tail). A truncation
loses only the records past the cut; every whole record before it is served.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

MAGIC = b"VDW1"
FRAME = struct.Struct("<4sII")
META = struct.Struct("<I")
SCAN_CHUNK = 1 << 20  # bytes read at a time while scanning ahead for the next frame
_READ_MAX = 1 << 30  # one pread at most (Linux returns at most ~2 GiB per call)


@dataclass(frozen=True)
class WalRecord:
    """One acknowledged write. vectors: (len(ids), dim) float32 unit rows for upserts, None for deletes;
    payloads: one canonical dict (or None) per id, with payload_types: field -> type."""

    op: Literal["upsert", "delete"]
    ids: list
    vectors: np.ndarray | None = None
    texts: list[str | None] | None = None
    payloads: list[dict | None] | None = None
    payload_types: dict[str, str] | None = None


@dataclass(frozen=True)
class WalScan:
    """Every whole, valid record from `start` on, and what the other bytes are.

    end: the offset just past the last valid frame (`start` if none): where the
    next read begins. trailing: bytes of a torn tail after `end` (a frame another
    process is writing now, or a crash's leftover); 0 when the tail is damage.
    spans: [start, stop) of each record's frame, in order. damage: [start, stop)
    byte ranges that are neither whole frames nor a torn tail. stamp: the file's
    (inode, size) when it was read, (0, 0) if it does not exist.
    """

    records: list[WalRecord]
    end: int
    trailing: int = 0
    spans: list[tuple[int, int]] = field(default_factory=list)
    damage: list[tuple[int, int]] = field(default_factory=list)
    stamp: tuple[int, int] = (0, 0)

    @property
    def damaged_bytes(self) -> int:
        return sum(stop - start for start, stop in self.damage)


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """[start, stop) byte ranges sorted, with overlapping or touching ones joined."""
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def encode_record(record: WalRecord) -> bytes:
    """A record as one framed, checksummed byte string, ready to append."""
    shape = None if record.vectors is None else list(record.vectors.shape)
    fields: dict[str, object] = {"op": record.op, "ids": list(record.ids), "texts": record.texts, "shape": shape}
    if record.payloads is not None:
        fields.update(payloads=record.payloads, payload_types=record.payload_types or {})
    meta = json.dumps(fields, ensure_ascii=False)
    meta_bytes = meta.encode("utf-8")
    vectors = b"" if record.vectors is None else np.ascontiguousarray(record.vectors, dtype="<f4").tobytes()
    payload = META.pack(len(meta_bytes)) + meta_bytes + vectors
    return FRAME.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_record(payload: bytes) -> WalRecord:
    """The inverse of encode_record, given a payload whose checksum has been verified.

    ValueError if the payload is not a well-formed record (a scan ahead may land on
    bytes that merely look like a frame; they must not pass for a write).
    """
    try:
        (meta_len,) = META.unpack_from(payload)
        meta = json.loads(payload[META.size : META.size + meta_len].decode("utf-8"))
        op, ids, texts, shape = meta["op"], meta["ids"], meta["texts"], meta["shape"]
    except (struct.error, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a record: {exc}") from None
    if op not in ("upsert", "delete") or not isinstance(ids, list) or (texts is not None and not isinstance(texts, list)):
        raise ValueError("not a record: bad op, ids or texts")
    payloads, types = meta.get("payloads"), meta.get("payload_types")
    if payloads is not None and (
        not isinstance(payloads, list)
        or len(payloads) != len(ids)
        or not isinstance(types, dict)
        or not all(p is None or isinstance(p, dict) for p in payloads)
    ):
        raise ValueError("not a record: bad payloads")
    data = payload[META.size + meta_len :]
    vectors = None
    if op == "upsert":
        if (
            type(shape) is not list
            or len(shape) != 2
            or shape[0] != len(ids)
            or type(shape[1]) is not int
            or len(data) != 4 * len(ids) * shape[1]
        ):
            raise ValueError(f"not a record: {len(data)} vector bytes of shape {shape} for {len(ids)} ids")
        vectors = np.frombuffer(data, dtype="<f4").reshape(len(ids), shape[1]).astype(np.float32)
    elif shape is not None or data:
        raise ValueError("not a record: a delete with vectors")
    return WalRecord(op=op, ids=ids, vectors=vectors, texts=texts, payloads=payloads, payload_types=types)


class _Bytes:
    """Reads of one open file, bounded by the size it had when the scan began, through a
    window of SCAN_CHUNK bytes (a healthy log is read front to back in few system calls)."""

    def __init__(self, fd: int, size: int):
        self.fd, self.size = fd, size
        self._start, self._window = 0, b""

    def read(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))
        at = offset - self._start
        if 0 <= at and at + n <= len(self._window):
            return self._window[at : at + n]
        if n > SCAN_CHUNK:
            return self._pread(offset, n)
        self._start, self._window = offset, self._pread(offset, min(SCAN_CHUNK, self.size - offset))
        return self._window[:n]

    def _pread(self, offset: int, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            part = os.pread(self.fd, min(n - got, _READ_MAX), offset + got)
            if not part:  # the file shrank under us (a writer cut a torn tail): short read
                break
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def crc(self, start: int, stop: int) -> int:
        value = 0
        for offset in range(start, stop, SCAN_CHUNK):
            value = zlib.crc32(self.read(offset, min(SCAN_CHUNK, stop - offset)), value)
        return value


def _frame_at(data: _Bytes, offset: int) -> tuple[WalRecord, int] | None:
    """The record whose frame starts at offset and its end, or None if none is whole and valid there."""
    header = data.read(offset, FRAME.size)
    if len(header) < FRAME.size:
        return None
    magic, length, crc = FRAME.unpack(header)
    stop = offset + FRAME.size + length
    if magic != MAGIC or stop > data.size:
        return None
    payload = data.read(offset + FRAME.size, length)
    if len(payload) != length or zlib.crc32(payload) != crc:
        return None
    try:
        return decode_record(payload), stop
    except ValueError:
        return None


def _next_frame(data: _Bytes, offset: int) -> tuple[int, WalRecord, int] | None:
    """(start, record, stop) of the first whole valid frame starting at or after offset, or None."""
    for chunk_start in range(offset, data.size - FRAME.size + 1, SCAN_CHUNK):
        chunk = data.read(chunk_start, SCAN_CHUNK + len(MAGIC) - 1)
        found = chunk.find(MAGIC)
        while 0 <= found < SCAN_CHUNK:
            frame = _frame_at(data, chunk_start + found)
            if frame is not None:
                return chunk_start + found, *frame
            found = chunk.find(MAGIC, found + 1)
    return None


def _torn(data: _Bytes, offset: int) -> bool:
    """Whether the bytes from offset to the end (holding no valid frame) are a frame cut short."""
    header = data.read(offset, FRAME.size)
    if len(header) < FRAME.size:
        return MAGIC.startswith(header[: len(MAGIC)])
    magic, length, crc = FRAME.unpack(header)
    if magic != MAGIC or offset + FRAME.size + length <= data.size:
        return False  # a wrong magic, or a whole-length frame that fails: damage, not a short write
    return data.crc(offset + FRAME.size, data.size) != crc  # equal: the whole payload is there, its length field was hit


def scan_frames(fd: int, start: int, stamp: tuple[int, int]) -> WalScan:
    """Read every valid frame of an open log from `start` (a frame boundary) to stamp's size."""
    data = _Bytes(fd, stamp[1])
    records: list[WalRecord] = []
    spans: list[tuple[int, int]] = []
    damage: list[tuple[int, int]] = []
    offset = end = start
    trailing = 0
    while offset < data.size:
        frame = _frame_at(data, offset)
        if frame is not None:
            record, stop = frame
        else:
            ahead = _next_frame(data, offset + 1)
            if ahead is None:
                if _torn(data, offset):
                    trailing = data.size - offset
                else:
                    damage.append((offset, data.size))
                break
            damage.append((offset, ahead[0]))
            offset, record, stop = ahead
        records.append(record)
        spans.append((offset, stop))
        offset = end = stop
    return WalScan(records, end, trailing, spans, damage, stamp)


def frame_is_valid(frame: bytes) -> bool:
    """Whether bytes are exactly one whole frame whose payload verifies (a copy's last check)."""
    if len(frame) < FRAME.size:
        return False
    magic, length, crc = FRAME.unpack_from(frame)
    return magic == MAGIC and len(frame) == FRAME.size + length and zlib.crc32(frame[FRAME.size :]) == crc
