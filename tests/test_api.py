"""The front door: `vecdial.connect(dir)` -> Database -> live Collection handles; every test runs
embedded and through a server (`connect`: tests/conftest.py)."""

import json
import time

import numpy as np
import pytest

import vecdial
from vecdial.indexer.modes.settings import BuildSettings


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
    replaced = db.create(
        "docs", np.asarray(tiny_dataset.vectors[:100]), ids=tiny_dataset.ids[:100], replace=True, discard_writes=True, show_progress=False
    )
    assert replaced is docs and (docs.info().size, docs.info().version) == (100, "v000002")


def test_create_from_an_npy_file_reads_it_where_the_caller_is(db, tmp_path, tiny_dataset):
    path = tmp_path / "vectors.npy"
    np.save(path, np.asarray(tiny_dataset.vectors[:50]))
    docs = db.create("from-file", path=path, show_progress=False)
    assert (docs.info().size, docs.info().id_kind) == (50, "int")
    assert docs.search(tiny_dataset.vectors[7], k=1, budget="binary:rescore=10").ids[0, 0] == 7


def test_create_from_texts_alone_encodes_them_with_the_bundled_model(db, tiny_dataset):
    docs = db.create(
        "texts", texts=tiny_dataset.texts[:20], ids=tiny_dataset.ids[:20], payloads=[{"n": i} for i in range(20)], show_progress=False
    )
    info = docs.info()
    assert (info.size, info.text_queries, info.has_texts) == (20, True, True)
    hits = docs.search(tiny_dataset.texts[3], k=1, with_payload=True)
    assert hits[0][0]["id"] == tiny_dataset.ids[3] and hits[0][0]["payload"] == {"n": 3}


def test_create_from_a_jsonl_file_of_texts_keeps_its_ids_and_payloads(db, tmp_path, tiny_dataset):
    path = tmp_path / "docs.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": i, "text": t, "rank": n}) + "\n"
            for n, (i, t) in enumerate(zip(tiny_dataset.ids[:10], tiny_dataset.texts[:10]))
        )
    )
    docs = db.create("jsonl", path=path, settings={"rotation": "identity"}, show_progress=False)
    assert (docs.info().size, docs.info().settings["rotation"]) == (10, "identity")
    hit = docs.search(tiny_dataset.texts[4], k=1, with_payload=True, with_text=True)[0][0]
    assert (hit["id"], hit["text"], hit["payload"]) == (tiny_dataset.ids[4], tiny_dataset.texts[4], {"rank": 4})


# --- arguments of the wrong type: InvalidInput naming the argument ------------------


@pytest.fixture
def tiny(tiny_data_dir) -> vecdial.Collection:
    """The tiny collection (string ids, texts, the bundled model's vectors)."""
    return vecdial.connect(tiny_data_dir).open("tiny")


@pytest.mark.parametrize(
    "call, says",
    [
        (lambda c, v: c.search("abc\ud800"), r"query\[0\] contains a lone surrogate \(U\+D800 at character 3\)"),
        (lambda c, v: c.search(["ok", "abc\ud800"]), r"queries\[1\] contains a lone surrogate"),
        (lambda c, v: c.search([1, "a"]), r"queries\[0\] is 1: texts must be strings"),
        (lambda c, v: c.search(object()), "queries must be a vector"),
        (lambda c, v: c.search(v, k=1.5), "k is 1.5: use a whole number from 1 to 10000"),
        (lambda c, v: c.search(v, k="3"), "k is '3'"),
        (lambda c, v: c.search(v, k=True), "k is True"),
        (lambda c, v: c.search(v, k=None), "k is None"),
        (lambda c, v: c.search(np.stack([v, v]), threads=1.5), "threads is 1.5"),
        (lambda c, v: c.search(v, texts="json", hybrid={}), "texts is 'json': pass a list"),
        (lambda c, v: c.search(v, texts=[3], hybrid={}), r"texts\[0\] is 3"),
        (lambda c, v: c.features("json", limit="3"), "limit is '3'"),
        (lambda c, v: c.features(3), "query is 3: pass a string"),
        (lambda c, v: c.upsert("abc", texts=["a", "b", "c"]), "ids is 'abc': pass a list"),
        (lambda c, v: c.upsert(3, texts=["a"]), "ids is 3: pass a list"),
        (lambda c, v: c.upsert(["x"], texts=3), "texts is 3: pass a list"),
        (lambda c, v: c.upsert(["x"], texts=["a"], payloads=3), "payloads is 3: pass a list"),
        (lambda c, v: c.delete("abc"), "ids is 'abc': pass a list"),
        (lambda c, v: c.delete(3), "ids is 3: pass a list"),
        (lambda c, v: c.ids(limit=1.5), "limit is 1.5"),
        (lambda c, v: c.sweep(n=1.5), "n is 1.5"),
        (lambda c, v: c.sweep(budgets="exact"), "budgets is 'exact': pass a list"),
        (lambda c, v: c.sweep(max_seconds="1"), "max_seconds is '1'"),
        (lambda c, v: c.sweep(queries=3), "queries is 3"),
        (lambda c, v: c.report(3), "path is 3"),
        (lambda c, v: c.reindex(3), "settings is 3"),
        (lambda c, v: c.reindex(min_recall="x"), "min_recall is 'x'"),
    ],
)
def test_a_collection_method_given_a_wrong_type_raises_invalid_input_naming_it(connect, tiny_data_dir, tiny_dataset, call, says):
    tiny = connect(tiny_data_dir).open("tiny")
    with pytest.raises(vecdial.InvalidInput, match=says):
        call(tiny, np.asarray(tiny_dataset.vectors[0]))
    assert tiny.info().size == 300 and tiny.info().version == "v000001"  # nothing written


@pytest.mark.parametrize(
    "call, says",
    [
        (lambda c, v: c.encode("json"), "texts is 'json': pass a list"),
        (lambda c, v: c.keep_queries("x"), "queries must be a vector"),
        (lambda c, v: c.keep_queries(v[None], limit=1.5), "limit is 1.5"),
        (lambda c, v: c.evaluate("x"), "queries must be a vector"),
        (lambda c, v: c.evaluate(v[None], budgets=3), "budgets is 3"),
        (lambda c, v: c.evaluate(v[None], qrels=3), "qrels is 3"),
    ],
)
def test_an_embedded_only_method_given_a_wrong_type_raises_invalid_input_naming_it(tiny, tiny_dataset, call, says):
    with pytest.raises(vecdial.InvalidInput, match=says):
        call(tiny, np.asarray(tiny_dataset.vectors[0]))


@pytest.mark.parametrize(
    "call, says",
    [
        (lambda db, v: db.open(3), "name is 3: a collection's name is a string"),
        (lambda db, v: db.drop(None), "name is None"),
        (lambda db, v: db.create(3, texts=["a"], show_progress=False), "name is 3"),
        (lambda db, v: db.create("docs", texts="abc", show_progress=False), "texts is 'abc': pass a list"),
        (lambda db, v: db.create("docs", v, ids=3, show_progress=False), "ids is 3: pass a list"),
        (lambda db, v: db.create("docs", v, settings=3, show_progress=False), "settings is 3"),
        (lambda db, v: db.create("docs", path=3, show_progress=False), "path is 3"),
        (lambda db, v: db.job(3), "job_id is 3"),
        (lambda db, v: db.jobs("x"), "limit is 'x'"),
        (lambda db, v: vecdial.connect(3), "data_dir is 3"),
    ],
)
def test_a_database_method_given_a_wrong_type_raises_invalid_input_naming_it(db, tiny_dataset, call, says):
    with pytest.raises(vecdial.InvalidInput, match=says):
        call(db, np.asarray(tiny_dataset.vectors[:10]))
    assert db.list() == []


# --- jobs ---------------------------------------------------------------------


def test_waiting_on_a_reindex_that_misses_its_recall_gate_raises_what_it_measured(tiny):
    with pytest.raises(
        vecdial.JobFailed, match=r"reindex of 'tiny' failed: the new version misses min_recall=0\.999: dense:dim=8: recall@10 "
    ) as raised:
        tiny.reindex({"rotation": "identity"}, min_recall=0.999, budget="dense:dim=8", wait=True, show_progress=False)
    assert raised.value.status.state == "failed"
    assert tiny.info().version == "v000001"


def test_the_cli_still_exits_2_when_a_reindex_misses_its_recall_gate(tiny_data_dir, capsys):
    from vecdial.service.cli import main

    code = main(["--data-dir", str(tiny_data_dir), "reindex", "-c", "tiny", "--quiet", "--min-recall", "0.999", "--budget", "dense:dim=8"])
    assert code == 2 and "misses min_recall=0.999: dense:dim=8: recall@10" in capsys.readouterr().err


# --- results and handles as the anchors give them -------------------------------------


def test_hits_unpack_into_the_ids_and_scores_arrays(tiny, tiny_dataset):
    hits = tiny.search(np.asarray(tiny_dataset.vectors[:2]), k=3)
    ids, scores = hits
    assert ids is hits.ids and scores is hits.scores and ids.shape == (2, 3)


def test_to_list_gives_each_querys_hits_as_plain_values_without_padding(tiny, tiny_dataset):
    tiny.delete(list(tiny_dataset.ids[3:300]))  # 3 live items for k=5
    listed = tiny.search(np.asarray(tiny_dataset.vectors[:2]), k=5, with_text=True).to_list()
    assert [len(hits) for hits in listed] == [3, 3]
    assert listed[0][0] == {"id": tiny_dataset.ids[0], "score": pytest.approx(1.0, abs=1e-5), "text": tiny_dataset.texts[0]}
    assert all(type(hit["score"]) is float for hits in listed for hit in hits)


def test_to_arrow_gives_one_row_per_hit(tiny, tiny_dataset):
    pytest.importorskip("pyarrow")
    hits = tiny.search(np.asarray(tiny_dataset.vectors[:2]), k=3, with_text=True)
    table = hits.to_arrow().to_pydict()
    assert table["query"] == [0, 0, 0, 1, 1, 1] and table["rank"] == [0, 1, 2] * 2
    assert table["id"] == [i for row in hits.id_lists() for i in row]
    assert table["text"][0] == tiny_dataset.texts[0] and table["score"] == pytest.approx(hits.scores.ravel().tolist())


def test_to_arrow_without_pyarrow_says_how_to_install_it(tiny, tiny_dataset, monkeypatch):
    hits = tiny.search(np.asarray(tiny_dataset.vectors[0]), k=3)
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"pip install pyarrow"):
        hits.to_arrow()


def test_db_item_is_the_open_handle_and_in_says_whether_a_name_exists(connect, tiny_data_dir):
    db = connect(tiny_data_dir)
    assert db["tiny"] is db.open("tiny") and "tiny" in db and "other" not in db
    with pytest.raises(vecdial.NotFound):
        db["other"]


def test_create_with_exist_ok_opens_an_existing_collection_without_building(connect, tiny_data_dir, tiny_dataset):
    db = connect(tiny_data_dir)
    opened = db.create("tiny", np.asarray(tiny_dataset.vectors[:10]), ids=tiny_dataset.ids[:10], exist_ok=True, show_progress=False)
    assert opened is db["tiny"] and opened.info().version == "v000001" and opened.info().size == 300
    built = db.create("fresh", np.asarray(tiny_dataset.vectors[:50]), exist_ok=True, show_progress=False)
    assert built.info().size == 50


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"vectors": np.ones((4, 8), np.float32), "exist_ok": True}, "exists with dim 384, and the vectors given have 8"),
        ({"exist_ok": True, "replace": True}, "not both"),
    ],
)
def test_create_with_exist_ok_refuses_what_it_cannot_honour(connect, tiny_data_dir, kwargs, says):
    with pytest.raises(vecdial.InvalidInput, match=says):
        connect(tiny_data_dir).create("tiny", show_progress=False, **kwargs)


def test_the_docstring_examples_run(tmp_path, monkeypatch):
    import doctest

    import vecdial.api
    from vecdial.indexer.plan import results

    monkeypatch.chdir(tmp_path)
    for module in (vecdial.api, results):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
