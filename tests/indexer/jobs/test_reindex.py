"""Reindex jobs: fold the log into a new version, swap atomically, leave the old one on failure."""

import dataclasses
import json
import threading

import numpy as np
import pytest

from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.disk.version import full_vectors
from vecdial.indexer.errors import AlreadyExists, InvalidInput, NotFound
from vecdial.indexer.jobs.reindex import start_reindex
from vecdial.indexer.jobs.store import JobStatus, JobStore
from vecdial.indexer.live.collection import LiveCollection
from vecdial.indexer.live.wal import WriteAheadLog


def versions(data_dir) -> list[str]:
    return sorted(p.name for p in Collection(data_dir, "tiny").versions_dir.iterdir())


def test_reindex_folds_writes_into_a_new_version(tiny_data_dir, live, tiny_dataset, outside_vectors):
    live.upsert(["new"], outside_vectors[:1], texts=["new text"])
    live.delete([tiny_dataset.ids[0]])
    status = start_reindex(tiny_data_dir, "tiny", {"dtype": "float16"}).run()
    assert status.state == "succeeded" and status.progress == 1.0
    assert (status.from_version, status.to_version, status.vectors) == ("v000001", "v000002", 300)
    fresh = LiveCollection.open(tiny_data_dir, "tiny").snapshot()
    assert fresh.version.manifest.codecs["dense"]["dtype"] == "float16"
    assert fresh.segment.size == 0 and len(fresh.dead_rows) == 0 and fresh.version.size == 300
    result = fresh.search(outside_vectors[0], k=1, with_text=True)
    assert result.ids == [["new"]] and result.texts == [["new text"]]
    assert tiny_dataset.ids[0] not in fresh.search(tiny_dataset.vectors[0], k=5).ids[0]


def test_unchanged_settings_are_kept(tiny_data_dir):
    start_reindex(tiny_data_dir, "tiny", {"rotation": "identity"}).run()
    status = start_reindex(tiny_data_dir, "tiny", {"block": 64}).run()
    manifest = LiveCollection.open(tiny_data_dir, "tiny").snapshot().version.manifest
    assert (manifest.codecs["dense"]["rotation"], manifest.codecs["dense"]["block"]) == ("identity", 64)
    assert status.settings["rotation"] == "identity"


def test_writes_made_during_a_reindex_survive_the_swap(tiny_data_dir, live, outside_vectors):
    def write_while_building(status: JobStatus) -> None:
        if status.phase == "build" and live.snapshot().segment.size == 0:
            live.upsert(["during"], outside_vectors[:1])

    status = start_reindex(tiny_data_dir, "tiny", {}, on_update=write_while_building).run()
    assert status.state == "succeeded"
    new_log = WriteAheadLog(live.collection.layout.log("v000002"))
    assert [r.ids for r in new_log.read().records] == [["during"]]
    live.refresh()
    assert live.snapshot().version_name == "v000002"
    assert live.search(outside_vectors[0], k=1).ids == [["during"]]


def test_searches_keep_working_across_the_swap(tiny_data_dir, live, tiny_dataset):
    errors, answers, done = [], [], threading.Event()

    def search_forever():
        while not done.is_set():
            try:
                live.refresh()
                answers.append(live.search(tiny_dataset.vectors[5], k=1, budget="binary:rescore=5").ids[0][0])
            except Exception as exc:  # the assertion below reports it
                errors.append(exc)

    searcher = threading.Thread(target=search_forever)
    searcher.start()
    try:
        status = start_reindex(tiny_data_dir, "tiny", {"rotation": "identity"}).run()
    finally:
        done.set()
        searcher.join()
    assert status.state == "succeeded" and errors == [] and set(answers) == {tiny_dataset.ids[5]}
    live.refresh()
    assert live.snapshot().version_name == "v000002"


def test_a_cancelled_job_leaves_the_old_version_serving(tiny_data_dir):
    jobs = []

    def cancel_in_build(status: JobStatus) -> None:
        if status.phase == "build":
            jobs[0].cancel()

    job = start_reindex(tiny_data_dir, "tiny", {"dtype": "float16"}, on_update=cancel_in_build)
    jobs.append(job)
    status = job.run()
    assert status.state == "cancelled"
    assert Collection(tiny_data_dir, "tiny").current_version_name() == "v000001"
    assert versions(tiny_data_dir) == ["v000001"]
    assert not list((tiny_data_dir / "tiny").glob(".reindex-*"))


def test_a_cancel_asked_through_the_store_stops_the_job(tiny_data_dir):
    store = JobStore(tiny_data_dir)

    def cancel_from_elsewhere(status: JobStatus) -> None:
        if status.phase == "export":
            store.request_cancel(status.id)

    status = start_reindex(tiny_data_dir, "tiny", {}, store=store, on_update=cancel_from_elsewhere).run()
    assert status.state == "cancelled" and store.load(status.id).state == "cancelled"


def test_a_failed_build_leaves_the_old_version_serving(tiny_data_dir, monkeypatch):
    def broken_build(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("vecdial.indexer.jobs.reindex.build_version", broken_build)
    status = start_reindex(tiny_data_dir, "tiny", {}).run()
    assert status.state == "failed" and "disk on fire" in status.message
    assert versions(tiny_data_dir) == ["v000001"]


def test_a_swap_after_the_collection_moved_on_is_refused(tiny_data_dir):
    def swap_elsewhere(status: JobStatus) -> None:
        if status.phase == "validate":
            other = Collection(tiny_data_dir, "tiny")
            (other.versions_dir / "v000001").rename(other.versions_dir / "v000003")
            other.swap_to("v000003")

    status = start_reindex(tiny_data_dir, "tiny", {}, on_update=swap_elsewhere).run()
    assert status.state == "failed" and "run the reindex again" in status.message
    assert Collection(tiny_data_dir, "tiny").current_version_name() == "v000003"


def test_only_one_reindex_per_collection_at_a_time(tiny_data_dir):
    first = start_reindex(tiny_data_dir, "tiny", {})
    with pytest.raises(AlreadyExists, match=first.id):
        start_reindex(tiny_data_dir, "tiny", {})
    first.run()
    assert start_reindex(tiny_data_dir, "tiny", {}).run().state == "succeeded"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"colour": "red"}, "unknown setting colour"),
        ({"dtype": "int4"}, "dtype='int4'"),
        ({"block": 0}, "block=0"),
        ({"sparse": {"q": 1}}, "unknown sparse"),
    ],
)
def test_bad_settings_are_refused_before_anything_starts(tiny_data_dir, changes, message):
    with pytest.raises(InvalidInput, match=message):
        start_reindex(tiny_data_dir, "tiny", changes)
    assert not JobStore(tiny_data_dir).list()


def test_reindexing_a_missing_collection_is_not_found(tiny_data_dir):
    with pytest.raises(NotFound):
        start_reindex(tiny_data_dir, "nope", {})


def test_a_job_whose_process_died_is_reported_failed(tiny_data_dir):
    store = JobStore(tiny_data_dir)
    store.dir.mkdir(parents=True)
    orphan = JobStatus(id="0" * 32, collection="tiny", settings={}, state="running")
    (store.dir / f"{orphan.id}.json").write_text(json.dumps(vars(orphan)))
    status = store.load(orphan.id)
    assert status.state == "failed" and "exited" in status.message


def test_a_job_that_ends_while_its_status_is_read_is_reported_as_it_ended(tiny_data_dir, monkeypatch):
    """A job saves its last status, then lets go of its lock. A reader that saw 'running' just
    before and finds the lock free just after must not call the job dead (a remote client's
    reindex once failed that way on a loaded machine)."""
    import vecdial.indexer.jobs.store as job_store

    store = JobStore(tiny_data_dir)
    store.dir.mkdir(parents=True)
    job = JobStatus(id="1" * 32, collection="tiny", settings={}, state="running")
    store.save(job)

    def the_job_ends_meanwhile(path):
        store.save(dataclasses.replace(job, state="succeeded", message="v000001 -> v000002"))
        return False  # its lock is free now

    monkeypatch.setattr(job_store, "is_locked", the_job_ends_meanwhile)
    status = store.load(job.id)
    assert (status.state, status.message) == ("succeeded", "v000001 -> v000002")


def test_unknown_or_malformed_job_ids_are_not_found(tiny_data_dir):
    with pytest.raises(NotFound):
        JobStore(tiny_data_dir).load("f" * 32)
    with pytest.raises(NotFound):
        JobStore(tiny_data_dir).load("../../etc/passwd")


def test_full_vectors_undo_the_rotation(live, tiny_dataset):
    version = live.snapshot().version
    rows = np.asarray([0, 1, 2, 150, 299])
    expected = tiny_dataset.vectors[rows] / np.linalg.norm(tiny_dataset.vectors[rows], axis=1, keepdims=True)
    np.testing.assert_allclose(full_vectors(version, rows), expected, atol=1e-5)
    np.testing.assert_allclose(full_vectors(version, np.arange(3)), expected[:3], atol=1e-5)
