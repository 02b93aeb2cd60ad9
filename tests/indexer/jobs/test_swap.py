"""What killed jobs leave is cleared, each kind only when nobody alive uses it, and logged."""

import logging
import shutil

import numpy as np

import vecdial
from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.disk.locks import FileLock
from vecdial.indexer.jobs.build import build_version
from vecdial.indexer.jobs.swap import clean_leftovers
from vecdial.indexer.live.collection import LiveCollection


def plant_leftovers(collection: Collection) -> None:
    """One of each thing a SIGKILL can leave, beside v000001 (serving) and its log."""
    versions = collection.versions_dir
    (versions / ".tmp-0123456789abcdef").mkdir()
    (versions / ".tmp-0123456789abcdef.lock").touch()
    shutil.copytree(versions / "v000001", versions / "v000002")  # renamed, CURRENT never swapped
    collection.layout.log("v000002").write_bytes(b"")
    collection.layout.log("v000000").write_bytes(b"")  # the log of a version pruned long ago
    (collection.layout.wal / ".v000002.log.abc.tmp").write_bytes(b"half a copy")
    (collection.path / ".CURRENT.xyz.tmp").write_text("v000002\n")
    np.save(collection.path / ".reindex-0f0f.npy", np.zeros((2, 2), np.float32))


def test_every_kind_of_leftover_is_removed_and_logged(live, outside_vectors, caplog):
    live.upsert(["kept"], outside_vectors[:1])
    collection = live.collection
    plant_leftovers(collection)
    with caplog.at_level(logging.WARNING, logger="vecdial.jobs"):
        removed = clean_leftovers(collection)
    assert sorted(removed) == sorted(
        [
            "versions/.tmp-0123456789abcdef",
            "versions/v000002",
            "wal/v000002.log",
            "wal/v000000.log",
            "wal/.v000002.log.abc.tmp",
            ".CURRENT.xyz.tmp",
            ".reindex-0f0f.npy",
        ]
    )
    assert "removed what interrupted jobs left behind" in caplog.text and "versions/v000002" in caplog.text
    assert sorted(p.name for p in collection.versions_dir.iterdir()) == ["v000001"]
    assert sorted(p.name for p in collection.layout.wal.iterdir()) == ["v000001.end", "v000001.log"]  # the log and its witness
    assert LiveCollection(collection).search(outside_vectors[0], k=1).ids == [["kept"]]
    assert clean_leftovers(collection) == []


def test_what_live_jobs_are_using_is_left_alone(live, tiny_dataset):
    collection = live.collection
    np.save(collection.path / ".reindex-running.npy", np.zeros((2, 2), np.float32))
    with FileLock(collection.layout.reindex_lock), build_version(tiny_dataset, collection.versions_dir, show_progress=False) as staged:
        assert clean_leftovers(collection) == []
        assert staged.path.is_dir() and (collection.path / ".reindex-running.npy").exists()
    assert clean_leftovers(collection) == [".reindex-running.npy"]


def test_a_new_collection_never_replays_the_log_of_one_dropped_half_way(tiny_data_dir, tiny_dataset, outside_vectors):
    live = LiveCollection.open(tiny_data_dir, "tiny")
    live.upsert(["ghost"], outside_vectors[:1])
    collection = live.collection
    (collection.path / "CURRENT").unlink()  # a drop killed after removing CURRENT
    shutil.rmtree(collection.versions_dir)
    docs = vecdial.connect(tiny_data_dir).create("tiny", np.asarray(tiny_dataset.vectors[:20]), show_progress=False)
    assert docs.info().size == 20 and docs.info().segment_size == 0
    assert docs.search(outside_vectors[0], k=1).ids[0, 0] != "ghost"
