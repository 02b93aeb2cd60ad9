"""Damage inside a log is told apart from a torn tail: reported with its byte range, never cut."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecdial.indexer.errors import DamagedLog
from vecdial.indexer.live.frames import FRAME, MAGIC
from vecdial.indexer.live.wal import WalRecord, WriteAheadLog, encode_record


def upsert(ids, dim=4, seed=0, texts=None) -> WalRecord:
    vectors = np.random.default_rng(seed).standard_normal((len(ids), dim)).astype(np.float32)
    return WalRecord("upsert", list(ids), vectors, texts)


def written(tmp_path, count=5) -> tuple[WriteAheadLog, list[tuple[int, int]]]:
    """A log of `count` records and the [start, stop) span of each frame."""
    log = WriteAheadLog(tmp_path / "v1.log")
    spans, start = [], 0
    for i in range(count):
        stop = log.append([encode_record(upsert([i], seed=i, texts=[f"text {i}"]))])
        spans.append((start, stop))
        start = stop
    return log, spans


def flip(path, offset: int, bit: int = 0) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ (1 << bit)]))


def test_a_flipped_bit_in_a_middle_record_is_damage_and_the_records_after_it_are_read(tmp_path):
    log, spans = written(tmp_path)
    flip(log.path, spans[2][0] + FRAME.size + 20)
    scan = log.read()
    assert [r.ids for r in scan.records] == [[0], [1], [3], [4]]
    assert scan.damage == [spans[2]] and scan.trailing == 0 and scan.end == spans[4][1]


@pytest.mark.parametrize("field_offset", [0, 4, 8], ids=["magic", "length", "crc"])
def test_a_damaged_header_of_the_last_record_is_damage_not_a_torn_tail(tmp_path, field_offset):
    log, spans = written(tmp_path)
    flip(log.path, spans[4][0] + field_offset + 3, bit=6)  # the length's high byte: it now runs past the end
    scan = log.read()
    assert [r.ids for r in scan.records] == [[0], [1], [2], [3]]
    assert scan.damage == [spans[4]] and scan.trailing == 0


def test_a_partial_last_record_is_a_torn_tail(tmp_path):
    """A crash during an append leaves part of a frame that was never acknowledged."""
    log, spans = written(tmp_path)
    data = log.path.read_bytes()
    for keep in (1, len(MAGIC), FRAME.size - 1, FRAME.size, FRAME.size + 7, spans[4][1] - spans[4][0] - 1):
        log.path.write_bytes(data[: spans[4][0]])
        log.rewitness()  # four records acknowledged
        log.path.write_bytes(data[: spans[4][0] + keep])  # the fifth torn mid-append
        scan = log.read()
        assert len(scan.records) == 4 and scan.damage == [] and scan.trailing == keep


def test_an_acknowledged_last_record_cut_short_is_damage(tmp_path):
    log, spans = written(tmp_path)
    data = log.path.read_bytes()
    for cut in (spans[4][0], spans[4][0] + FRAME.size, spans[4][1] - 1):  # at the boundary, inside the frame
        log.path.write_bytes(data[:cut])
        scan = log.read()
        assert len(scan.records) == 4 and scan.damage == [(cut, len(data))]


def test_a_zeroed_block_across_records_loses_only_the_records_it_touches(tmp_path):
    log, spans = written(tmp_path, count=8)
    start, stop = spans[2][1] - 10, spans[4][0] + 10  # the end of record 2 to the start of record 4
    with open(log.path, "r+b") as handle:
        handle.seek(start)
        handle.write(bytes(stop - start))
    scan = log.read()
    assert [r.ids[0] for r in scan.records] == [0, 1, 5, 6, 7]
    assert scan.damage == [(spans[2][0], spans[5][0])]


def test_cutting_a_torn_tail_is_refused_when_the_bytes_are_damage(tmp_path):
    log, spans = written(tmp_path)
    flip(log.path, spans[3][0] + FRAME.size + 1)
    size = log.size()
    with pytest.raises(DamagedLog, match="refusing to cut"):
        log.cut_torn_tail(spans[3][0])
    assert log.size() == size


def test_cutting_a_torn_tail_cuts_exactly_the_tail(tmp_path):
    log, spans = written(tmp_path)
    with open(log.path, "ab") as handle:
        handle.write(encode_record(upsert([9]))[:-3])
    assert log.cut_torn_tail(spans[4][1]) > 0 and log.size() == spans[4][1]
    assert log.cut_torn_tail(spans[4][1]) == 0


def test_copying_a_damaged_tail_into_a_new_log_is_refused(tmp_path):
    log, spans = written(tmp_path)
    flip(log.path, spans[3][0] + FRAME.size + 1)
    with pytest.raises(DamagedLog, match="repair"):
        log.copy_tail(spans[1][1], spans[4][1], tmp_path / "v2.log")
    assert not (tmp_path / "v2.log").exists()


def test_a_frame_hidden_in_a_text_is_not_mistaken_for_a_record(tmp_path):
    """Bytes that merely start with the magic inside a damaged record do not make a record."""
    log = WriteAheadLog(tmp_path / "v1.log")
    first = log.append([encode_record(upsert([1], texts=["VDW1VDW1 " * 50]))])
    log.append([encode_record(upsert([2], seed=1))])
    flip(log.path, 14)
    scan = log.read()
    assert [r.ids for r in scan.records] == [[2]] and scan.damage == [(0, first)]


@settings(max_examples=150, deadline=None)
@given(counts=st.lists(st.integers(1, 4), min_size=1, max_size=6), where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_is_reported_as_damage_and_costs_only_its_own_record(tmp_path_factory, counts, where, bit):
    path = tmp_path_factory.mktemp("wal") / "v1.log"
    frames = [encode_record(upsert(list(range(c)), seed=i, texts=[f"t{i}"] * c)) for i, c in enumerate(counts)]
    data = bytearray(b"".join(frames))
    offset = int(len(data) * where)
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))
    ends = np.cumsum([len(f) for f in frames])
    hit = int(np.searchsorted(ends, offset, side="right"))
    scan = WriteAheadLog(path).read()
    assert len(scan.records) == len(frames) - 1 and scan.trailing == 0
    assert [r.ids for r in scan.records] == [list(range(c)) for i, c in enumerate(counts) if i != hit]
    assert any(a <= offset < b for a, b in scan.damage)


def test_records_larger_than_the_read_window_and_straddling_it_read_back(tmp_path):
    log = WriteAheadLog(tmp_path / "v1.log")
    records = [upsert(list(range(700)), dim=384, seed=1), upsert([1]), upsert(list(range(300)), dim=384, seed=2), upsert([2])]
    log.append([encode_record(r) for r in records])  # 1.08 MB, then a frame across the 1 MiB window
    flip(log.path, log.size() - 5)
    scan = log.read()
    assert [len(r.ids) for r in scan.records] == [700, 1, 300] and len(scan.damage) == 1
    assert np.array_equal(scan.records[2].vectors, records[2].vectors)


def test_a_missing_log_whose_witness_vouches_for_records_is_damage(tmp_path):
    log, spans = written(tmp_path)
    log.path.unlink()
    scan = log.read()
    assert scan.records == [] and scan.damage == [(0, spans[4][1])]


def test_a_missing_log_whose_witness_vouches_for_nothing_is_empty(tmp_path):
    log = WriteAheadLog(tmp_path / "v1.log")
    log.path.write_bytes(b"")
    log.rewitness()
    log.path.unlink()
    assert log.read().damage == []


def moved(log: WriteAheadLog, data: bytes) -> None:
    """Replace the log by a new file (a new inode, as a copy or a restore gives it) holding `data`."""
    other = log.path.with_name("copy.tmp")
    other.write_bytes(data)
    other.replace(log.path)


@pytest.mark.parametrize("boundary", [0, 1, 2, 3, 4])
def test_a_copied_log_cut_at_a_record_boundary_is_damage(tmp_path, boundary):
    log, spans = written(tmp_path)
    data = log.path.read_bytes()
    moved(log, data[: spans[boundary][0]])
    assert log.read().damage == [(spans[boundary][0], spans[4][1])]


def test_a_copied_log_that_is_whole_is_not_damage(tmp_path):
    log, spans = written(tmp_path)
    moved(log, log.path.read_bytes())
    scan = log.read()
    assert scan.damage == [] and len(scan.records) == 5


def test_a_log_cut_and_written_on_past_its_witnessed_end_is_damage(tmp_path):
    """Other records where the acknowledged last one was: as long as the witness says, yet not the log it vouched for."""
    log, spans = written(tmp_path)
    data = log.path.read_bytes()[: spans[2][1]]
    others = [encode_record(upsert([100 + i], seed=50 + i)) for i in range(4)]
    moved(log, data + b"".join(others))
    assert len(log.path.read_bytes()) >= spans[4][1]
    assert log.read().damage != []


def test_a_witness_in_the_old_inode_and_end_format_still_catches_a_cut(tmp_path):
    import os
    import struct

    log, spans = written(tmp_path)
    log.witness_path.write_bytes(struct.pack("<QQ", os.stat(log.path).st_ino, spans[4][1]))
    assert log.read().damage == []
    moved(log, log.path.read_bytes()[: spans[3][0]])
    assert log.read().damage == [(spans[3][0], spans[4][1])]
