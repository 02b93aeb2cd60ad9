"""The front door: `vecdial.connect(dir)` -> Database -> live Collection handles; every test runs
embedded and through a server (`connect`: tests/conftest.py)."""

import json
import time

import numpy as np
import pytest

import vecdial
from vecdial.indexer.jobs.settings import BuildSettings


@pytest.fixture
def db(connect, tmp_path) -> vecdial.Database:
    return connect(tmp_path / "data")


def test_create_from_vectors_then_search_returns_arrays_and_an_explain(db, tiny_dataset):
    docs = db.create("docs", np.asarray(tiny_dataset.vectors), ids=tiny_dataset.ids, texts=tiny_dataset.texts, show_progress=False)
    hits = docs.search(tiny_dataset.vectors[:3], k=4, budget="dense:dim=64", with_text=True)
    assert hits.ids.shape == hits.scores.shape == (3, 4) and hits.scores.dtype == np.float32
    assert hits.ids[:, 0].tolist() == list(tiny_dataset.ids[:3])
    assert hits[0][0] == {"id": tiny_dataset.ids[0], "score": pytest.approx(1.0, abs=1e-5), "text": tiny_dataset.texts[0]}
    assert hits.explain.budget == "dense:dim=64" and hits.explain.stages[0].stage == "dense:dim=64"
    assert db.list() == ["docs"] and db.open("docs") is docs


def test_integer_ids_come_back_as_an_int64_array(db, tiny_dataset):
    docs = db.create("docs", np.asarray(tiny_dataset.vectors), show_progress=False)
    hits = docs.search(tiny_dataset.vectors[17], k=2, budget="binary:rescore=10")
    assert hits.ids.dtype == np.int64 and hits.ids[0, 0] == 17


def test_a_second_process_handle_sees_writes_made_through_the_first(db, connect, tmp_path, tiny_dataset, outside_vectors):
    docs = db.create("docs", np.asarray(tiny_dataset.vectors), ids=tiny_dataset.ids, show_progress=False)
    other = connect(tmp_path / "data").open("docs")  # another Database: shares only the disk
    docs.upsert(["new"], outside_vectors[:1])
    docs.delete([tiny_dataset.ids[5]])
    assert other.search(outside_vectors[0], k=1).ids[0, 0] == "new"
    assert tiny_dataset.ids[5] not in other.search(tiny_dataset.vectors[5], k=5).id_lists()[0]
    assert other.info().size == 300


def test_reindex_with_new_settings_swaps_and_keeps_every_write(db, tiny_dataset, outside_vectors):
    docs = db.create("docs", np.asarray(tiny_dataset.vectors), ids=tiny_dataset.ids, show_progress=False)
    docs.upsert(["new"], outside_vectors[:1])
    status = docs.reindex(BuildSettings(dtype="float16"), wait=True, show_progress=False).status
    assert status.state == "succeeded", status.message
    info = docs.info()
    assert info.settings["dtype"] == "float16" and info.version == "v000002"
    assert (info.size, info.version_size, info.segment_size) == (301, 301, 0)
    assert docs.reindex({"rotation": "identity"}, wait=True, show_progress=False).status.state == "succeeded"
    assert docs.info().settings["rotation"] == "identity"


def test_a_collection_can_be_dropped_as_soon_as_its_reindex_is_reported_finished(db, tiny_dataset):
    docs = db.create("docs", np.asarray(tiny_dataset.vectors), show_progress=False)
    job = docs.reindex({"dtype": "float16"}, min_recall=0.999, budget="binary:rescore=0", show_progress=False)
    while not db.job(job.id).finished:  # as another process sees it: no thread to join
        time.sleep(0.01)
    db.drop("docs")
    assert db.list() == []


def test_info_describes_modes_and_costs_in_one_shape(db, tiny_dataset):
    info = db.create("docs", np.asarray(tiny_dataset.vectors), show_progress=False).info().to_dict()
    assert [m["mode"] for m in info["modes"]] == ["exact", "dense", "binary", "rabitq", "funnel"]
    assert info["dense_bytes_per_vector"][64] < info["dense_bytes_per_vector"][384]
    assert info["swept_on"] is None


@pytest.mark.parametrize(
    "kwargs, error, says",
    [
        ({}, vecdial.InvalidInput, "give vectors, texts to encode, or a file path"),
        ({"vectors": np.zeros((2, 4), np.float32), "path": "x.npy"}, vecdial.InvalidInput, "not both"),
        ({"vectors": np.ones((2, 4), np.float32), "settings": {"dtype": "int4"}}, vecdial.InvalidInput, "dtype"),
        ({"vectors": np.ones(4, np.float32)}, vecdial.InvalidInput, r"\(n, dim\) matrix"),
    ],
)
def test_bad_creates_say_what_to_change(db, kwargs, error, says):
    with pytest.raises(error, match=says):
        db.create("docs", show_progress=False, **kwargs)
    assert db.list() == []


def test_an_existing_name_is_refused_unless_replaced_and_drop_removes_it(db, tiny_dataset):
    db.create("docs", np.asarray(tiny_dataset.vectors), show_progress=False)
    with pytest.raises(vecdial.AlreadyExists):
        db.create("docs", np.asarray(tiny_dataset.vectors), show_progress=False)
    db.drop("docs")
    assert db.list() == []
    with pytest.raises(vecdial.NotFound):
        db.open("docs")


def test_a_replacing_create_refuses_to_drop_acknowledged_writes_unless_told(db, tiny_dataset, outside_vectors):
    docs = db.create("docs", np.asarray(tiny_dataset.vectors), ids=tiny_dataset.ids, show_progress=False)
    docs.upsert(["new"], outside_vectors[:1])
    with pytest.raises(vecdial.AlreadyExists, match="1 writes since its version v000001: reindex it"):
        db.create("docs", np.asarray(tiny_dataset.vectors[:100]), ids=tiny_dataset.ids[:100], replace=True, show_progress=False)
    assert docs.search(outside_vectors[0], k=1).ids[0, 0] == "new"
    replaced = db.create("docs", np.asarray(tiny_dataset.vectors[:100]), ids=tiny_dataset.ids[:100], replace=True, discard_writes=True, show_progress=False)
    assert replaced is docs and (docs.info().size, docs.info().version) == (100, "v000002")


def test_create_from_an_npy_file_reads_it_where_the_caller_is(db, tmp_path, tiny_dataset):
    path = tmp_path / "vectors.npy"
    np.save(path, np.asarray(tiny_dataset.vectors[:50]))
    docs = db.create("from-file", path=path, show_progress=False)
    assert (docs.info().size, docs.info().id_kind) == (50, "int")
    assert docs.search(tiny_dataset.vectors[7], k=1, budget="binary:rescore=10").ids[0, 0] == 7


def test_create_from_texts_alone_encodes_them_with_the_bundled_model(db, tiny_dataset):
    docs = db.create("texts", texts=tiny_dataset.texts[:20], ids=tiny_dataset.ids[:20], payloads=[{"n": i} for i in range(20)], show_progress=False)
    info = docs.info()
    assert (info.size, info.text_queries, info.has_texts) == (20, True, True)
    hits = docs.search(tiny_dataset.texts[3], k=1, with_payload=True)
    assert hits[0][0]["id"] == tiny_dataset.ids[3] and hits[0][0]["payload"] == {"n": 3}


def test_create_from_a_jsonl_file_of_texts_keeps_its_ids_and_payloads(db, tmp_path, tiny_dataset):
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t, "rank": n}) + "\n" for n, (i, t) in enumerate(zip(tiny_dataset.ids[:10], tiny_dataset.texts[:10]))))
    docs = db.create("jsonl", path=path, settings={"rotation": "identity"}, show_progress=False)
    assert (docs.info().size, docs.info().settings["rotation"]) == (10, "identity")
    hit = docs.search(tiny_dataset.texts[4], k=1, with_payload=True, with_text=True)[0][0]
    assert (hit["id"], hit["text"], hit["payload"]) == (tiny_dataset.ids[4], tiny_dataset.texts[4], {"rank": 4})
