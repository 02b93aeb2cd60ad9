"""A damaged write-ahead log through the front door (embedded and through a server: `connect` in
tests/conftest.py) and the command line: loud, searchable, repairable."""

import json
from pathlib import Path

import numpy as np
import pytest

import vecdial
from vecdial.indexer.disk.layout import DAMAGED_INFIX
from vecdial.indexer.live.wal import WriteAheadLog
from vecdial.service.cli import main


@pytest.fixture
def damaged(tiny_data_dir, demo_dataset):
    """The tiny collection after 30 acknowledged writes, with one bit flipped inside write 10."""
    docs = vecdial.connect(tiny_data_dir).open("tiny")
    log = WriteAheadLog(docs._live.collection.layout.log("v000001"))
    vectors = np.asarray(demo_dataset.vectors[1000:1030])
    spans = []
    for i in range(30):
        start = log.size()
        docs.upsert([f"w{i}"], vectors[i : i + 1])
        spans.append((start, log.size()))
    with open(log.path, "r+b") as handle:
        handle.seek(spans[10][0] + 40)
        byte = handle.read(1)
        handle.seek(spans[10][0] + 40)
        handle.write(bytes([byte[0] ^ 0x10]))
    return tiny_data_dir, vectors, spans, log


def test_a_damaged_log_is_reported_by_info_and_searches_go_on(connect, damaged):
    data_dir, vectors, spans, _ = damaged
    docs = connect(data_dir).open("tiny")
    info = docs.info()
    assert "damaged at bytes" in info.damaged and "vecdial repair -c tiny" in info.damaged
    assert info.to_dict()["damaged"] == info.damaged and info.size == 329  # 300 + 30 writes - the damaged one
    assert docs.search(vectors[20], k=1).ids[0, 0] == "w20"  # a write after the damage is served
    assert "w10" not in docs.search(vectors[10], k=5).id_lists()[0]


def test_writes_and_reindexes_are_refused_and_leave_the_log_as_it_is(connect, damaged, demo_dataset):
    data_dir, _, _, log = damaged
    docs = connect(data_dir).open("tiny")
    before = log.path.read_bytes()
    with pytest.raises(vecdial.DamagedLog, match="vecdial repair -c tiny"):
        docs.upsert(["new"], demo_dataset.vectors[900:901])
    with pytest.raises(vecdial.DamagedLog):
        docs.delete(["w3"])
    with pytest.raises(vecdial.DamagedLog):
        docs.reindex({"dtype": "float16"}, show_progress=False)
    assert log.path.read_bytes() == before
    assert docs.info().size == 329  # nothing written, nothing folded away


def test_repair_keeps_the_damaged_file_and_takes_writes_again(damaged, demo_dataset):
    data_dir, vectors, spans, log = damaged
    before = log.path.read_bytes()
    docs = vecdial.connect(data_dir).open("tiny")
    report = docs.repair()
    assert report.repaired and report.records == 29 and report.damaged == [spans[10]]
    assert open(report.backup, "rb").read() == before and DAMAGED_INFIX in report.backup
    assert docs.info().damaged is None and docs.info().to_dict()["damaged"] is None
    docs.upsert(["new"], demo_dataset.vectors[900:901])
    assert docs.search(demo_dataset.vectors[900], k=1).ids[0, 0] == "new"
    other = vecdial.connect(data_dir).open("tiny")  # another process: sees the repaired log and the write
    assert other.info().size == 330 and other.search(vectors[29], k=1).ids[0, 0] == "w29"


def test_a_healthy_log_needs_no_repair(connect, tiny_data_dir, outside_vectors):
    docs = connect(tiny_data_dir).open("tiny")
    docs.upsert(["a"], outside_vectors[:1])
    report = docs.repair()
    assert (report.records, report.damaged, report.torn_tail, report.repaired) == (1, [], 0, False)


def run(capsys, data_dir, *args) -> tuple[int, str, str]:
    code = main(["--data-dir", str(data_dir), *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_repair_dry_run_reports_then_repair_salvages(capsys, damaged):
    data_dir, _, spans, log = damaged
    before = log.path.read_bytes()
    code, out, _ = run(capsys, data_dir, "repair", "-c", "tiny", "--dry-run")
    assert code == 1 and f"{spans[10][0]}-{spans[10][1]}" in out and "29 valid records" in out
    assert log.path.read_bytes() == before
    code, out, err = run(capsys, data_dir, "search", "-c", "tiny", "--text", "a query", "--json")
    assert code == 0
    code, out, _ = run(capsys, data_dir, "repair", "-c", "tiny", "--json")
    report = json.loads(out)
    assert code == 0 and report["repaired"] and report["records"] == 29 and report["damaged"] == [list(spans[10])]
    code, out, _ = run(capsys, data_dir, "repair", "-c", "tiny", "--dry-run")
    assert code == 0 and "nothing to repair" in out


def test_cli_writes_on_a_damaged_log_fail_with_one_line_naming_the_repair(capsys, damaged, tmp_path):
    data_dir, vectors, _, _ = damaged
    code, _, err = run(capsys, data_dir, "reindex", "-c", "tiny", "--quiet")
    assert code == 2 and "vecdial repair -c tiny" in err and len(err.strip().splitlines()) == 1


def test_a_server_repairs_and_reports_its_files_relative_to_its_data_dir(connect, damaged, demo_dataset):
    data_dir, vectors, spans, _ = damaged
    docs = connect(data_dir).open("tiny")
    assert docs.repair(dry_run=True).repaired is False and docs.info().damaged  # a dry run changes nothing
    report = docs.repair()
    assert report.repaired and report.records == 29 and report.damaged == [spans[10]] and DAMAGED_INFIX in report.backup
    for where in map(Path, (report.log, report.backup)):  # embedded: in data_dir; remote: relative to the server's, never its own path
        assert where.is_relative_to(data_dir) if where.is_absolute() else where.parts[0] == "tiny"
    docs.upsert(["new"], demo_dataset.vectors[900:901])
    assert docs.search(demo_dataset.vectors[900], k=1).ids[0, 0] == "new" and docs.info().size == 330


@pytest.fixture
def deleted(tiny_data_dir, demo_dataset):
    """The tiny collection after 20 acknowledged writes, then its log file deleted (its witness stays)."""
    docs = vecdial.connect(tiny_data_dir).open("tiny")
    vectors = np.asarray(demo_dataset.vectors[1000:1020])
    for i in range(20):
        docs.upsert([f"w{i}"], vectors[i : i + 1])
    log = WriteAheadLog(docs._live.collection.layout.log("v000001"))
    acknowledged = log.size()
    log.path.unlink()
    return tiny_data_dir, vectors, acknowledged, log


def test_a_deleted_log_is_damage_reported_by_info(deleted):
    data_dir, _, acknowledged, _ = deleted
    info = vecdial.connect(data_dir).open("tiny").info()
    assert info.damaged is not None and "missing" in info.damaged and f"{acknowledged} bytes" in info.damaged
    assert "vecdial repair -c tiny" in info.damaged and info.size == 300  # what is there still serves


def test_writes_over_a_deleted_log_are_refused_and_write_nothing(deleted, demo_dataset):
    data_dir, _, _, log = deleted
    docs = vecdial.connect(data_dir).open("tiny")
    witness = log.witness_path.read_bytes()
    with pytest.raises(vecdial.DamagedLog, match="vecdial repair -c tiny"):
        docs.upsert(["new"], demo_dataset.vectors[900:901])
    with pytest.raises(vecdial.DamagedLog):
        docs.delete(["w3"])
    assert not log.path.exists() and log.witness_path.read_bytes() == witness


def test_a_log_deleted_under_an_open_handle_is_damage_there_too(tiny_data_dir, demo_dataset):
    docs = vecdial.connect(tiny_data_dir).open("tiny")
    docs.upsert(["kept"], demo_dataset.vectors[900:901])
    WriteAheadLog(docs._live.collection.layout.log("v000001")).path.unlink()
    with pytest.raises(vecdial.DamagedLog):
        docs.upsert(["lost"], demo_dataset.vectors[901:902])
    assert docs.info().damaged is not None
    assert docs.search(demo_dataset.vectors[900], k=1).ids[0, 0] == "kept"  # served from memory until a repair


def test_repair_of_a_deleted_log_names_the_lost_bytes_and_takes_writes_again(deleted, demo_dataset):
    data_dir, vectors, acknowledged, log = deleted
    docs = vecdial.connect(data_dir).open("tiny")
    report = docs.repair()
    assert report.repaired and report.records == 0 and report.damaged == [(0, acknowledged)] and report.backup is None
    assert f"0-{acknowledged}" in report.summary() and "missing" in report.summary()
    assert docs.info().damaged is None
    docs.upsert(["new"], demo_dataset.vectors[900:901])
    other = vecdial.connect(data_dir).open("tiny")
    assert other.info().damaged is None and other.info().size == 301
    assert other.search(demo_dataset.vectors[900], k=1).ids[0, 0] == "new"


def test_readiness_and_metrics_report_a_deleted_log(deleted):
    from fastapi.testclient import TestClient

    from vecdial.service.app import create_app
    from vecdial.service.settings import Settings

    data_dir = deleted[0]
    with TestClient(create_app(Settings(data_dir=data_dir, log_level="warning"))) as client:
        assert "vecdial repair -c tiny" in client.get("/readyz").json()["damaged"]["tiny"]
        assert 'vecdial_collection_damaged{collection="tiny"} 1.0' in client.get("/metrics").text
        assert client.post("/v1/collections/tiny/vectors/delete", json={"ids": ["w1"]}).json()["error"] == "damaged_log"
