"""A log of acknowledged writes, damaged at hundreds of places: nothing acknowledged is lost quietly.

The tiny collection takes N real writes (MiniLM vectors: new ids, overwrites of
version and segment ids, deletes, texts). Then, one case at a time, the log gets
a flipped bit, a zeroed block or a cut, and the collection is opened again:

- a flip or zeroed block must be reported (DamagedLog on writes, `damaged` set),
  the collection must serve every write whose frame the damage did not touch, the
  log must be left byte for byte as it was, and `repair` must keep the damaged
  file and salvage exactly those writes into a log that takes writes again;
- a cut must serve every write whose frame ends before it, report no damage,
  and the next write must cut the partial frame (a torn tail) and nothing more.

Each expected state is replayed from the writes made, not from the log.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from vecdial.indexer.disk.layout import DAMAGED_INFIX
from vecdial.indexer.errors import DamagedLog
from vecdial.indexer.live.collection import LiveCollection
from vecdial.indexer.live.wal import WriteAheadLog
from vecdial.indexer.vectors import normalize_rows

WRITES = 60
OUTSIDE = None  # a real vector not in the collection, set by the fixture


@dataclass
class Write:
    op: str
    ids: list
    unit: np.ndarray | None  # (len(ids), dim) as the collection stores them
    span: tuple[int, int] = (0, 0)  # the frame's bytes in the log


@dataclass
class Written:
    dir: object
    log: WriteAheadLog
    pristine: bytes
    writes: list[Write]
    version_ids: set


@pytest.fixture
def written(tiny_data_dir, tiny_dataset, demo_dataset) -> Written:
    """The tiny collection after WRITES acknowledged writes, each one frame of its log."""
    global OUTSIDE
    rng = np.random.default_rng(7)
    OUTSIDE = np.asarray(demo_dataset.vectors[900])
    live = LiveCollection.open(tiny_data_dir, "tiny")
    log = WriteAheadLog(live.collection.layout.log(live.snapshot().version_name))
    pool = np.asarray(demo_dataset.vectors[1000:2000])
    writes, made, start = [], [], 0
    for i in range(WRITES):
        kind = rng.choice(["new", "new", "new", "overwrite", "version", "delete", "delete-version"])
        if kind == "delete" and made:
            write = Write("delete", [made[int(rng.integers(len(made)))]], None)
            live.delete(write.ids)
        elif kind == "delete-version":
            write = Write("delete", [str(tiny_dataset.ids[int(rng.integers(300))])], None)
            live.delete(write.ids)
        else:
            if kind == "overwrite" and made:
                ids = [made[int(rng.integers(len(made)))]]
            elif kind == "version":
                ids = [str(tiny_dataset.ids[int(rng.integers(300))])]
            else:
                ids = [f"w{i}-{j}" for j in range(int(rng.integers(1, 4)))]
                made += ids
            vectors = pool[rng.integers(len(pool), size=len(ids))]
            write = Write("upsert", ids, normalize_rows(vectors))
            live.upsert(ids, vectors, texts=[f"text of {x}" for x in ids] if i % 2 else None)
        write.span = (start, log.size())
        start = write.span[1]
        writes.append(write)
    return Written(tiny_data_dir, log, log.path.read_bytes(), writes, {str(x) for x in tiny_dataset.ids})


def expected_state(w: Written, lost: set[int]) -> tuple[dict, set]:
    """(segment id -> unit vector, deleted version ids) after every write but the lost ones."""
    segment, dead = {}, set()
    for i, write in enumerate(w.writes):
        if i in lost:
            continue
        for j, key in enumerate(write.ids):
            if key in w.version_ids:
                dead.add(key)
            if write.op == "upsert":
                segment[key] = write.unit[j]
            else:
                segment.pop(key, None)
    return segment, dead


def served_state(live: LiveCollection) -> tuple[dict, set]:
    snapshot = live.snapshot()
    segment = snapshot.segment
    rows = {segment.ids[r]: segment.unit[r] for r in segment.alive_rows()}
    return rows, {str(x) for x in snapshot.version.ids[snapshot.dead_rows]}


def assert_serves(live: LiveCollection, w: Written, lost: set[int]) -> None:
    got, got_dead = served_state(live)
    want, want_dead = expected_state(w, lost)
    assert got.keys() == want.keys() and got_dead == want_dead
    assert all(np.array_equal(got[k], want[k]) for k in want)


def overlapping(w: Written, start: int, stop: int) -> set[int]:
    return {i for i, write in enumerate(w.writes) if write.span[0] < stop and start < write.span[1]}


def reset(w: Written, data: bytes) -> None:
    """The pristine log acknowledged (its witness says so), then damaged into `data`."""
    w.log.path.write_bytes(w.pristine)
    w.log.rewitness()
    w.log.path.write_bytes(data)
    for backup in w.log.path.parent.glob(f"*{DAMAGED_INFIX}*"):
        backup.unlink()


def check_damage(w: Written, data: bytes, start: int, stop: int, outside_vector: np.ndarray, repair: bool = True) -> int:
    """Bytes [start, stop) of `data` differ from the pristine log; returns the writes lost."""
    reset(w, data)
    lost = overlapping(w, start, stop)
    live = LiveCollection.open(w.dir, "tiny")
    assert live.damaged is not None and "vecdial repair -c tiny" in live.damaged
    assert_serves(live, w, lost)  # every write the damage did not touch, before any repair
    with pytest.raises(DamagedLog):
        live.upsert(["refused"], outside_vector)
    assert w.log.path.read_bytes() == data  # nothing cut, nothing appended
    if not repair:
        return len(lost)
    report = live.repair()
    assert report.repaired and report.records == len(w.writes) - len(lost)
    assert all(any(a <= o < b for a, b in report.damaged) for o in (start, stop - 1))
    assert open(report.backup, "rb").read() == data
    assert live.damaged is None
    assert_serves(live, w, lost)  # replayed from the new log
    return len(lost)


def test_the_fixture_log_holds_every_write_as_one_frame(written):
    scan = written.log.read()
    assert len(scan.records) == WRITES and scan.spans == [x.span for x in written.writes]
    assert_serves(LiveCollection.open(written.dir, "tiny"), written, set())


def flip_cases(written: Written, offsets: list[int], seed: int, repair_every: int) -> int:
    rng = np.random.default_rng(seed)
    began, lost = time.perf_counter(), 0
    for case, offset in enumerate(offsets):
        data = bytearray(written.pristine)
        data[offset] ^= 1 << int(rng.integers(8))
        lost += check_damage(written, bytes(data), offset, offset + 1, OUTSIDE, repair=case % repair_every == 0)
    print(
        f"\nbit flips: {len(offsets)} cases, {len(offsets)} detected; {len(offsets) * WRITES} acknowledged writes checked, "
        f"{lost} lost, each the one holding its flipped bit ({time.perf_counter() - began:.1f} s)"
    )
    return lost


def test_a_flipped_bit_at_every_record_boundary_is_reported_and_repaired(written):
    offsets = [x.span[0] for x in written.writes] + [x.span[1] - 1 for x in written.writes]  # first and last byte
    assert flip_cases(written, offsets, seed=11, repair_every=1) == len(offsets)


def test_a_flipped_bit_at_random_offsets_is_reported(written):
    offsets = [int(o) for o in np.random.default_rng(10).integers(len(written.pristine), size=200)]
    assert flip_cases(written, offsets, seed=12, repair_every=5) == len(offsets)


def test_zeroed_blocks_lose_only_the_writes_they_cover(written, demo_dataset):
    rng = np.random.default_rng(12)
    size, lost = len(written.pristine), 0
    for _ in range(20):
        start = int(rng.integers(size - 64))
        stop = min(size, start + int(rng.integers(16, 4096)))
        data = bytearray(written.pristine)
        data[start:stop] = bytes(stop - start)
        if bytes(data) == written.pristine:
            continue
        lost += check_damage(written, bytes(data), start, stop, OUTSIDE)
    print(f"\nzeroed blocks: 20 cases, all detected; {lost} writes lost, all inside the zeroed bytes")


def test_a_log_cut_short_is_damage_even_at_a_record_boundary(written, demo_dataset):
    """Acknowledged records past a cut are gone: the witness of the acknowledged end says so,
    loudly, wherever the cut falls; repair keeps every record before it and takes writes again."""
    rng = np.random.default_rng(13)
    size = len(written.pristine)
    cuts = [x.span[0] for x in written.writes] + [int(c) for c in rng.integers(size, size=60)]
    for case, cut in enumerate(cuts):
        reset(written, written.pristine[:cut])
        whole = [i for i, x in enumerate(written.writes) if x.span[1] <= cut]
        lost = set(range(len(written.writes))) - set(whole)
        live = LiveCollection.open(written.dir, "tiny")
        assert live.damaged is not None and "vecdial repair -c tiny" in live.damaged
        assert_serves(live, written, lost)  # every write before the cut
        with pytest.raises(DamagedLog):
            live.upsert(["refused"], demo_dataset.vectors[901:902])
        if case % 10:
            continue
        report = live.repair()
        assert report.repaired and report.records == len(whole)
        assert live.damaged is None
        live.upsert(["after-repair"], demo_dataset.vectors[901:902])
        assert written.log.read().damage == []
    print(f"\ncuts: {len(cuts)} cases, every one reported as damage; every write before each cut served")


def test_a_reader_open_before_the_repair_follows_the_new_log(written, demo_dataset):
    offset = written.writes[40].span[0] + 30
    data = bytearray(written.pristine)
    data[offset] ^= 4
    reset(written, bytes(data))
    reader = LiveCollection.open(written.dir, "tiny")
    repairer = LiveCollection.open(written.dir, "tiny")
    assert reader.damaged and repairer.repair().repaired
    assert reader.refresh()
    assert reader.damaged is None
    assert_serves(reader, written, {40})
    reader.upsert(["after-repair"], demo_dataset.vectors[902:903])
    assert "after-repair" in served_state(repairer if repairer.refresh() else repairer)[0]


def test_a_dry_run_reports_and_changes_nothing(written):
    data = bytearray(written.pristine)
    data[written.writes[7].span[0] + 40] ^= 1
    reset(written, bytes(data))
    live = LiveCollection.open(written.dir, "tiny")
    report = live.repair(dry_run=True)
    assert report.needed and not report.repaired and report.backup is None
    assert report.records == WRITES - 1 and report.damaged == [written.writes[7].span]
    assert written.log.path.read_bytes() == bytes(data) and live.damaged is not None


def copy_cut_at(w: Written, target: Path, cut: int | None) -> Path:
    """A `shutil.copytree` copy of the data directory (new inodes), its log then cut at `cut` (None: whole)."""
    copy = Path(shutil.copytree(w.dir, target))
    log = copy / w.log.path.relative_to(w.dir)
    if cut is not None:
        with open(log, "r+b") as handle:
            handle.truncate(cut)
    return copy


def test_a_copy_of_the_data_directory_cut_short_is_damage_wherever_the_cut_falls(written, tmp_path, demo_dataset):
    """A copy (cp -r, rsync, a restore) gives the log a new inode; its witness still vouches for
    the acknowledged end, so a cut copy is loud at record boundaries too, never a shorter log."""
    size = len(written.pristine)
    boundaries = [0] + [x.span[0] for x in written.writes[1::7]] + [written.writes[-1].span[0]]
    inside = [x.span[0] + 5 for x in written.writes[3::11]] + [size - 1]
    for n, cut in enumerate(boundaries + inside):
        copy = copy_cut_at(written, tmp_path / f"copy{n}", cut)
        live = LiveCollection.open(copy, "tiny")
        whole = {i for i, x in enumerate(written.writes) if x.span[1] <= cut}
        assert live.damaged is not None and "vecdial repair -c tiny" in live.damaged, f"cut at {cut} of {size} was silent"
        assert_serves(live, written, set(range(len(written.writes))) - whole)  # every write before the cut
        with pytest.raises(DamagedLog):
            live.upsert(["refused"], demo_dataset.vectors[901:902])


def test_a_whole_copy_of_the_data_directory_opens_clean_and_takes_writes(written, tmp_path, demo_dataset):
    copy = copy_cut_at(written, tmp_path / "copy", None)
    live = LiveCollection.open(copy, "tiny")
    assert live.damaged is None
    assert_serves(live, written, set())
    live.upsert(["after-copy"], demo_dataset.vectors[901:902])
    again = LiveCollection.open(copy, "tiny")
    assert again.damaged is None and "after-copy" in served_state(again)[0]
    assert LiveCollection.open(written.dir, "tiny").damaged is None  # the original is untouched
