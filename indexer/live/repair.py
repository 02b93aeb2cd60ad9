"""Repairing a damaged write-ahead log: salvage every valid record, keep the damaged file.

A log with damage (bytes between or after valid frames that are neither frames
nor a torn tail, see `frames.py`) puts its collection in a state that serves
every valid record but refuses writes. `salvage_log` ends that state:

1. the damaged file is kept beside the log as `<version>.log.damaged-<UTC time>`
   (a hard link to the same bytes, made durable before anything else changes;
   the suffix keeps it out of the `*.log` pruning at reindex);
2. the witness (`wal.py`) is made to vouch for the new log, durably;
3. every valid frame, copied byte for byte in log order and checked again, goes
   into a new file that replaces the log in one atomic rename.

A crash before step 3's rename leaves the damaged log in place, still reported
as damaged (run repair again); after it, the new log. Records inside the damaged bytes are lost, and the report
says where they were. A log with only a torn tail is cut, as the next write would.
A log that is missing while its witness vouches for bytes (deleted) has nothing to
keep: the report names the lost range and an empty log takes writes again.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from vecdial.indexer.disk.atomic import fsync_dir, write_atomic
from vecdial.indexer.disk.layout import damaged_copy
from vecdial.indexer.errors import CorruptIndex
from vecdial.indexer.live.frames import FRAME, WalScan, frame_is_valid
from vecdial.indexer.live.wal import Witness, WriteAheadLog


@dataclass(frozen=True)
class RepairReport:
    """What `repair` found in a collection's log and did about it.

    records: valid records in the log (all kept); damaged: [start, stop) byte ranges
    that were neither records nor a torn tail; torn_tail: bytes of an unacknowledged
    last write; backup: where the damaged original was kept; repaired: whether the
    log was changed (False for a dry run, or a log that needed nothing).
    """

    collection: str
    log: str
    log_bytes: int
    records: int
    damaged: list[tuple[int, int]]
    torn_tail: int
    backup: str | None
    repaired: bool
    dry_run: bool

    @property
    def damaged_bytes(self) -> int:
        return sum(stop - start for start, stop in self.damaged)

    @property
    def needed(self) -> bool:
        return bool(self.damaged or self.torn_tail)

    def to_dict(self) -> dict:
        return {**asdict(self), "damaged": [list(r) for r in self.damaged], "damaged_bytes": self.damaged_bytes}

    def summary(self) -> str:
        """A few lines for the command line."""
        ranges = ", ".join(f"{a}-{b}" for a, b in self.damaged[:5]) + (
            f" and {len(self.damaged) - 5} more" if len(self.damaged) > 5 else ""
        )
        lines = [f"{self.collection}: {self.log} ({self.log_bytes} bytes): {self.records} valid records"]
        if self.damaged and not self.log_bytes:
            lines.append(f"the log is missing or empty: its witness vouched for bytes {ranges} (the records in them are lost)")
        elif self.damaged:
            lines.append(f"damaged: {self.damaged_bytes} bytes in {len(self.damaged)} range(s): {ranges} (records inside them are lost)")
        if self.torn_tail:
            lines.append(f"torn tail: {self.torn_tail} bytes of a write that was never acknowledged")
        if not self.needed:
            lines.append("nothing to repair")
        elif self.dry_run:
            lines.append(f"dry run: nothing changed; `vecdial repair -c {self.collection}` would keep the {self.records} valid records")
        elif self.repaired and self.backup:
            lines.append(f"repaired: the log now holds the {self.records} valid records; the damaged original is kept as {self.backup}")
        elif self.repaired and self.damaged:
            lines.append("repaired: a new, empty log takes writes again")
        elif self.repaired:
            lines.append("repaired: the torn tail was cut")
        return "\n".join(lines)


def damage_message(name: str, path: Path, damage: list[tuple[int, int]], missing: bool = False) -> str:
    """What DamagedLog says: what is damaged (missing: the whole log is gone), what still works, what to run."""
    first = damage[0]
    more = f" (and {len(damage) - 1} more range(s))" if len(damage) > 1 else ""
    what = (
        f"is missing, though its witness vouches for {damage[-1][1]} bytes of acknowledged writes"
        if missing
        else f"is damaged at bytes {first[0]}-{first[1]}{more}"
    )
    return (
        f"collection {name!r}: its write-ahead log {path} {what}. "
        f"Searches serve every valid record; writes and reindexes are refused so nothing more is lost. "
        f"Run `vecdial repair -c {name}` (or Collection.repair()) to salvage the valid records into a new log; "
        f"the damaged file is kept beside it"
    )


def salvage_log(name: str, log: WriteAheadLog, scan: WalScan, dry_run: bool) -> RepairReport:
    """Repair `log` given a whole-log scan (from 0, taken under the collection's write lock)."""
    found = RepairReport(
        collection=name,
        log=str(log.path),
        log_bytes=scan.stamp[1],
        records=len(scan.records),
        damaged=list(scan.damage),
        torn_tail=scan.trailing,
        backup=None,
        repaired=False,
        dry_run=dry_run,
    )
    if dry_run or not (scan.damage or scan.trailing):
        return found
    if not scan.damage:
        log.cut_torn_tail(scan.end)
        return replace(found, repaired=True)
    if not log.path.exists():  # deleted: nothing to keep or salvage; an empty log, vouched for, takes writes again
        write_atomic(log.path, lambda out: None)
        log.rewitness()
        return replace(found, repaired=True)
    backup = _keep(log.path)
    log.rewitness(_witness_of_salvaged(log.path, scan.spans), durable=True)  # before the rename that makes it true
    _rewrite(log.path, scan.spans)
    return replace(found, backup=str(backup), repaired=True)


def _witness_of_salvaged(path: Path, spans: list[tuple[int, int]]) -> Witness:
    """The witness of the log `_rewrite` makes: the valid frames back to back.

    Written (durably) before that log replaces the damaged one: a crash between the two
    leaves the damaged log under a witness it does not match, damage still, so the state
    before the rename reads as damaged and after it as whole; never a healthy log reported
    short of a stale witness."""
    if not spans:
        return Witness(0, 0)
    with open(path, "rb") as source:
        header = os.pread(source.fileno(), FRAME.size, spans[-1][0])
    end = sum(stop - start for start, stop in spans)
    return Witness.of([(end - (spans[-1][1] - spans[-1][0]), end)], header)


def _keep(path: Path) -> Path:
    """A durable second name for the damaged file's bytes."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    backup, n = damaged_copy(path, stamp), 1
    while backup.exists():
        n += 1
        backup = damaged_copy(path, f"{stamp}-{n}")
    try:
        os.link(path, backup)
    except OSError:  # a file system without hard links: a copy, synced
        shutil.copyfile(path, backup)
        with open(backup, "rb+") as handle:
            os.fsync(handle.fileno())
    fsync_dir(path.parent)
    return backup


def _rewrite(path: Path, spans: list[tuple[int, int]]) -> None:
    """Replace the log with exactly its valid frames, each checked again as it is copied."""

    def copy(out) -> None:
        with open(path, "rb") as source:
            for start, stop in spans:
                source.seek(start)
                frame = source.read(stop - start)
                if not frame_is_valid(frame):
                    raise CorruptIndex(f"{path}: the frame at byte {start} changed while it was being salvaged; run repair again")
                out.write(frame)

    write_atomic(path, copy)
