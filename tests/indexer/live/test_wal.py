"""The write-ahead log: framed records, torn tails dropped (never fatal), damage told apart, group commit."""

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecdial.indexer.live.wal import FRAME, GroupCommit, WalRecord, WriteAheadLog, encode_record


def upsert(ids, dim=4, seed=0, texts=None) -> WalRecord:
    vectors = np.random.default_rng(seed).standard_normal((len(ids), dim)).astype(np.float32)
    return WalRecord("upsert", list(ids), vectors, texts)


def same(a: WalRecord, b: WalRecord) -> bool:
    vectors_equal = (a.vectors is None and b.vectors is None) or np.array_equal(a.vectors, b.vectors)
    return a.op == b.op and a.ids == b.ids and a.texts == b.texts and vectors_equal


def test_records_read_back_as_written(tmp_path):
    log = WriteAheadLog(tmp_path / "v1.log")
    records = [upsert([1, 2], texts=["a", None]), WalRecord("delete", ["x", "y"]), upsert(["é"], seed=1)]
    end = log.append([encode_record(r) for r in records])
    scan = log.read()
    assert end == log.size() and scan.end == end and scan.trailing == 0
    assert all(same(a, b) for a, b in zip(scan.records, records)) and len(scan.records) == 3


def test_a_missing_log_reads_as_empty(tmp_path):
    scan = WriteAheadLog(tmp_path / "none.log").read()
    assert scan.records == [] and scan.end == 0


def test_reading_from_an_offset_returns_only_later_records(tmp_path):
    log = WriteAheadLog(tmp_path / "v1.log")
    first = log.append([encode_record(upsert([1]))])
    log.append([encode_record(upsert([2]))])
    assert [r.ids for r in log.read(first).records] == [[2]]


def test_a_torn_last_record_is_dropped_not_fatal(tmp_path):
    log = WriteAheadLog(tmp_path / "v1.log")
    whole = log.append([encode_record(upsert([1]))])
    log.append([encode_record(upsert([2]))])
    with open(log.path, "r+b") as handle:
        handle.truncate(log.size() - 5)
    scan = log.read()
    assert [r.ids for r in scan.records] == [[1]]
    assert scan.end == whole and scan.trailing > 0


def test_a_last_record_failing_its_checksum_is_damage_not_a_torn_tail(tmp_path):
    log = WriteAheadLog(tmp_path / "v1.log")
    whole = log.append([encode_record(upsert([1]))])
    log.append([encode_record(upsert([2]))])
    with open(log.path, "r+b") as handle:
        handle.seek(whole + FRAME.size + 3)
        handle.write(b"\xff")
    scan = log.read()
    assert [r.ids for r in scan.records] == [[1]]
    assert scan.damage == [(whole, log.size())] and scan.trailing == 0


def test_garbage_after_the_last_record_is_damage_not_a_torn_tail(tmp_path):
    log = WriteAheadLog(tmp_path / "v1.log")
    whole = log.append([encode_record(upsert([1]))])
    with open(log.path, "ab") as handle:
        handle.write(b"\x00garbage" * 10)
    scan = log.read()
    assert [r.ids for r in scan.records] == [[1]] and scan.damage == [(whole, log.size())]


def test_truncate_cuts_a_torn_tail_so_appends_follow_whole_records(tmp_path):
    log = WriteAheadLog(tmp_path / "v1.log")
    whole = log.append([encode_record(upsert([1]))])
    with open(log.path, "ab") as handle:
        handle.write(encode_record(upsert([2]))[:-3])
    log.truncate(log.read().end)
    log.append([encode_record(upsert([3]))])
    assert whole < log.size() and [r.ids for r in log.read().records] == [[1], [3]]


def test_a_failed_append_leaves_no_partial_frame(tmp_path, monkeypatch):
    log = WriteAheadLog(tmp_path / "v1.log")
    log.append([encode_record(upsert([1]))])
    size = log.size()

    def disk_error(fd):
        raise OSError("disk full")

    monkeypatch.setattr("vecdial.indexer.live.wal.os.fdatasync", disk_error)
    with pytest.raises(OSError):
        log.append([encode_record(upsert([2]))])
    assert log.size() == size


def test_copy_tail_starts_a_new_log_with_exactly_the_later_records(tmp_path):
    log = WriteAheadLog(tmp_path / "v1.log")
    cut = log.append([encode_record(upsert([1]))])
    end = log.append([encode_record(WalRecord("delete", [5])), encode_record(upsert([2]))])
    log.copy_tail(cut, end, tmp_path / "v2.log")
    assert [(r.op, r.ids) for r in WriteAheadLog(tmp_path / "v2.log").read().records] == [("delete", [5]), ("upsert", [2])]
    log.copy_tail(end, end, tmp_path / "v3.log")
    assert (tmp_path / "v3.log").stat().st_size == 0


def test_copy_tail_vouches_for_the_records_it_copied(tmp_path):
    log = WriteAheadLog(tmp_path / "v1.log")
    start = log.append([encode_record(upsert([1]))])
    middle = log.append([encode_record(upsert([2]))])
    end = log.append([encode_record(upsert([3]))])
    copy = WriteAheadLog(tmp_path / "v2.log")
    log.copy_tail(start, end, copy.path)
    assert copy.read().damage == []
    copy.truncate(middle - start)  # the last copied record lost, at a frame boundary
    assert copy.read().damage == [(middle - start, end - start)]


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(1, 5), min_size=1, max_size=6), cut=st.floats(0, 1))
def test_any_truncation_replays_a_prefix_of_whole_records(tmp_path_factory, counts, cut):
    path = tmp_path_factory.mktemp("wal") / "v1.log"
    records = [upsert(list(range(c)), seed=i) for i, c in enumerate(counts)]
    frames = [encode_record(r) for r in records]
    data = b"".join(frames)
    keep = int(len(data) * cut)
    path.write_bytes(data[:keep])
    scan = WriteAheadLog(path).read()
    ends = np.cumsum([len(f) for f in frames])
    assert len(scan.records) == int((ends <= keep).sum())
    assert all(same(a, b) for a, b in zip(scan.records, records))
    assert scan.damage == [] and scan.end + scan.trailing == keep  # a cut is a torn tail, never damage


def test_group_commit_gives_every_writer_its_own_result():
    commit = GroupCommit(lambda items: [item * 2 for item in items])
    assert [commit.submit(i) for i in range(3)] == [0, 2, 4]


def test_concurrent_writers_share_flushes():
    flushing = threading.Event()

    def held_flush(items):
        if commit.flushes == 0:  # an fsync that lasts until the 15 other writers queue behind it
            flushing.set()
            deadline = time.monotonic() + 60
            while len(commit._queue) < 15:
                assert time.monotonic() < deadline, "the other writers never queued"
                time.sleep(0.001)
        return items

    commit = GroupCommit(held_flush)
    results = []
    first = threading.Thread(target=lambda: results.append(commit.submit(0)))
    first.start()
    assert flushing.wait(60)
    threads = [threading.Thread(target=lambda i=i: results.append(commit.submit(i))) for i in range(1, 16)]
    for thread in threads:
        thread.start()
    for thread in [first, *threads]:
        thread.join()
    assert sorted(results) == list(range(16))
    assert (commit.items, commit.flushes) == (16, 2)  # the first write alone, then the 15 queued meanwhile in one flush


def test_an_exception_result_fails_only_its_own_writer():
    commit = GroupCommit(lambda items: [ValueError("bad") if item < 0 else item for item in items])
    with pytest.raises(ValueError):
        commit.submit(-1)
    assert commit.submit(1) == 1


def test_a_failed_flush_fails_every_writer_in_it():
    def broken(items):
        raise OSError("disk gone")

    with pytest.raises(OSError):
        GroupCommit(broken).submit(1)
