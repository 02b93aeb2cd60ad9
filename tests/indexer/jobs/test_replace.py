"""A build over a live collection never drops a write it acknowledged, unless told to."""

import logging

import numpy as np
import pytest

from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.errors import AlreadyExists
from vecdial.indexer.io.readers import Dataset
from vecdial.indexer.jobs.reindex import start_reindex
from vecdial.indexer.jobs.replace import replace_build, writes_since_version
from vecdial.indexer.live.collection import LiveCollection


@pytest.fixture
def rebuild(tiny_dataset) -> Dataset:
    """Other inputs for the same collection: the first 200 vectors under new ids."""
    return Dataset(np.asarray([f"r{i}" for i in range(200)]), np.asarray(tiny_dataset.vectors[:200]))


def entries(collection: Collection) -> list[str]:
    return sorted(p.name for p in collection.versions_dir.iterdir())


def test_writes_since_the_version_are_counted_from_its_log(live, tiny_dataset, outside_vectors):
    assert writes_since_version(live.collection) == ("v000001", 0, 0)
    live.upsert(["a", "b"], outside_vectors[:2])
    live.delete([tiny_dataset.ids[3]])
    assert writes_since_version(live.collection) == ("v000001", 2, 0)


def test_a_replacing_build_over_acknowledged_writes_is_refused_and_changes_nothing(live, rebuild, outside_vectors):
    live.upsert(["kept"], outside_vectors[:1])
    with pytest.raises(AlreadyExists, match="'tiny' has 1 writes since its version v000001: reindex it .* --discard-writes"):
        replace_build(live.collection, rebuild, show_progress=False)
    assert entries(live.collection) == ["v000001"]
    reopened = LiveCollection(live.collection)
    assert reopened.search(outside_vectors[0], k=1).ids == [["kept"]] and reopened.snapshot().size == 301


def test_discard_writes_replaces_and_says_what_it_lost(live, rebuild, outside_vectors, caplog):
    live.upsert(["lost"], outside_vectors[:1])
    with caplog.at_level(logging.WARNING, logger="vecdial.jobs"):
        assert replace_build(live.collection, rebuild, discard_writes=True, show_progress=False) == "v000002"
    assert "discarding 1 writes" in caplog.text
    fresh = LiveCollection(live.collection)
    assert fresh.snapshot().size == 200 and fresh.search(outside_vectors[0], k=1).ids[0][0] != "lost"
    assert live.collection.layout.log("v000001").exists(), "the old version keeps its log while it is kept"


def test_a_write_that_lands_during_the_build_is_refused_at_the_swap(live, rebuild, outside_vectors, monkeypatch):
    from vecdial.indexer.jobs import replace

    real_open = replace.open_version

    def write_then_validate(path, verify_checksums=True):
        LiveCollection(live.collection).upsert(["late"], outside_vectors[:1])  # another writer, mid-build
        return real_open(path, verify_checksums)

    monkeypatch.setattr(replace, "open_version", write_then_validate)
    with pytest.raises(AlreadyExists, match="has 1 writes since"):
        replace_build(live.collection, rebuild, show_progress=False)
    assert entries(live.collection) == ["v000001"], "the staged build is removed, its lock too"
    live.refresh()
    assert live.search(outside_vectors[0], k=1).ids == [["late"]]


def test_damaged_log_bytes_that_may_hide_writes_also_refuse(live, rebuild, outside_vectors):
    live.upsert(["first"], outside_vectors[:1])
    live.upsert(["second"], outside_vectors[1:2])
    path = live.collection.layout.log("v000001")
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF  # inside the first record: damage, followed by a valid record
    path.write_bytes(bytes(data))
    with pytest.raises(AlreadyExists, match=r"has 1 writes since its version v000001 \(and \d+ damaged bytes"):
        replace_build(live.collection, rebuild, show_progress=False)


def test_a_torn_tail_is_no_write(live, rebuild):
    """A crash mid-append leaves a frame cut short: it was never acknowledged."""
    path = live.collection.layout.log("v000001")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"VDW1")
    assert writes_since_version(live.collection) == ("v000001", 0, 0)
    assert replace_build(live.collection, rebuild, show_progress=False) == "v000002"


def test_without_writes_a_replacing_build_swaps_and_keeps_the_previous_version(live, rebuild, outside_vectors):
    assert replace_build(live.collection, rebuild, show_progress=False) == "v000002"
    live.refresh()
    assert live.snapshot().version_name == "v000002" and live.snapshot().size == 200
    live.upsert(["after"], outside_vectors[:1])  # writes go to the new version's (fresh) log
    assert writes_since_version(live.collection) == ("v000002", 1, 0)
    assert entries(live.collection) == ["v000001", "v000002"]


def test_a_replacing_build_is_refused_while_a_reindex_of_the_collection_runs(tiny_data_dir, rebuild):
    job = start_reindex(tiny_data_dir, "tiny", {})
    try:
        with pytest.raises(AlreadyExists, match="a reindex or build of 'tiny' is running"):
            replace_build(Collection(tiny_data_dir, "tiny"), rebuild, show_progress=False)
    finally:
        job.run()
    assert job.status.state == "succeeded"


def test_a_reindex_is_refused_while_a_replacing_build_runs(tiny_data_dir, rebuild, monkeypatch):
    from vecdial.indexer.jobs import replace

    refused = []

    def try_a_reindex(*args, **kwargs):
        with pytest.raises(AlreadyExists, match="a reindex or build of 'tiny' is running"):
            start_reindex(tiny_data_dir, "tiny", {})
        refused.append(True)

    monkeypatch.setattr(replace, "clean_leftovers", try_a_reindex)
    replace_build(Collection(tiny_data_dir, "tiny"), rebuild, show_progress=False)
    assert refused == [True]
