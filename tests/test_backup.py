"""`backup`: a copy of a serving collection that opens whole, with every write acknowledged before it."""

import threading

import numpy as np
import pytest

import vecdial
from vecdial.service.cli import main


def test_a_backup_opens_clean_with_every_acknowledged_write(tiny_data_dir, tmp_path, demo_dataset):
    docs = vecdial.connect(tiny_data_dir).open("tiny")
    vectors = np.asarray(demo_dataset.vectors[1000:1010])
    docs.upsert([f"w{i}" for i in range(10)], vectors)
    docs.delete([str(demo_dataset.ids[0]), "w3"])
    path = docs.backup(tmp_path / "backup")
    copy = vecdial.connect(tmp_path / "backup").open("tiny")
    assert path == tmp_path / "backup" / "tiny" and copy.info().damaged is None
    assert copy.info().size == docs.info().size == 308
    assert copy.search(vectors[7], k=1).ids[0, 0] == "w7" and "w3" not in copy.search(vectors[3], k=5).id_lists()[0]
    copy.upsert(["on-the-copy"], demo_dataset.vectors[900:901])
    assert docs.info().size == 308  # the original is untouched


def test_a_backup_taken_while_writes_stream_holds_a_prefix_of_them_and_opens_clean(tiny_data_dir, tmp_path, demo_dataset):
    docs = vecdial.connect(tiny_data_dir).open("tiny")
    vectors = np.asarray(demo_dataset.vectors[1000:1400])
    acknowledged, stop = [], threading.Event()

    def write() -> None:
        for i in range(len(vectors)):
            if stop.is_set():
                return
            docs.upsert([f"w{i}"], vectors[i : i + 1])
            acknowledged.append(i)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for n in range(3):
            while len(acknowledged) < 20 * (n + 1) and writer.is_alive():
                threading.Event().wait(0.01)
            before = len(acknowledged)
            docs.backup(tmp_path / f"backup{n}")
            copy = vecdial.connect(tmp_path / f"backup{n}").open("tiny")
            held = {i for i in range(len(vectors)) if f"w{i}" in set(copy.ids(limit=10_000)[0])}
            assert copy.info().damaged is None
            assert held == set(range(len(held))) and len(held) >= before  # every write acknowledged before, in order
    finally:
        stop.set()
        writer.join()


def test_a_backup_never_overwrites(tiny_data_dir, tmp_path):
    docs = vecdial.connect(tiny_data_dir).open("tiny")
    docs.backup(tmp_path / "backup")
    with pytest.raises(vecdial.AlreadyExists, match="exists already"):
        docs.backup(tmp_path / "backup")
    with pytest.raises(vecdial.AlreadyExists):
        docs.backup(tiny_data_dir)  # its own data directory


def test_cli_backup_copies_every_collection_and_refuses_to_overwrite(tiny_data_dir, tmp_path, capsys):
    assert main(["--data-dir", str(tiny_data_dir), "backup", str(tmp_path / "backup")]) == 0
    assert str(tmp_path / "backup" / "tiny") in capsys.readouterr().out
    assert vecdial.connect(tmp_path / "backup").list() == ["tiny"]
    assert main(["--data-dir", str(tiny_data_dir), "backup", "-c", "tiny", str(tmp_path / "backup")]) == 2
    assert "exists already" in capsys.readouterr().err
