"""`vecdial.connect(url)`: a server's collections answer as the same collections opened in this
process do (same hits, arrays, explain and errors), and what only a client meets (an API key,
an unreachable server) says what to do. The rest of the public-API suite runs on both through
the `connect` fixture (tests/conftest.py)."""

from __future__ import annotations

import json
import shutil
import time
from typing import TYPE_CHECKING

import numpy as np
import pytest

import vecdial
from vecdial.indexer.plan.calibration import PSEUDO_MISS_FACTOR
from vecdial.remote import JobFailed, connect_remote
from vecdial.remote_http import ServerUnavailable, Unauthorized

if TYPE_CHECKING:
    import httpx
pytestmark = pytest.mark.also_sharded  # over 'tiny' whole and in 2 shards

API_KEY = "remote-suite-key"  # tests/conftest.py starts the server with it


@pytest.fixture
def pair(api_server, tiny_data_dir, tiny_dataset):
    """(embedded, remote) handles on copies of the same 'tiny' collection (texts, the bundled
    model), with the same payloads and texts written to both; the server's copy is dropped after."""
    url, served = api_server
    shutil.copytree(tiny_data_dir / "tiny", served / "tiny")
    client = vecdial.connect(url, api_key=API_KEY)
    handles = vecdial.connect(tiny_data_dir).open("tiny"), client.open("tiny")
    payloads = [{"group": ["even", "odd"][i % 2], "rank": i} for i in range(40)]
    for handle in handles:
        handle.upsert(
            tiny_dataset.ids[:40], np.asarray(tiny_dataset.vectors[:40]), texts=[f"item {i}" for i in range(40)], payloads=payloads
        )
    yield handles
    client.drop("tiny")
    client.close()


def same_hits(a: vecdial.Hits, b: vecdial.Hits) -> None:
    """Equal answers: ids and padding, scores to float32 rounding, texts, payloads, explain's budget and stages."""
    assert a.ids.shape == b.ids.shape and a.ids.dtype == b.ids.dtype and a.found.tolist() == b.found.tolist()
    assert a.ids.tolist() == b.ids.tolist()
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)
    assert (a.texts, a.payloads) == (b.texts, b.payloads)
    assert a.explain.budget == b.explain.budget and a.explain.version == b.explain.version
    assert [s.stage for s in a.explain.stages] == [s.stage for s in b.explain.stages]
    assert [s.candidates for s in a.explain.stages] == [s.candidates for s in b.explain.stages]
    assert (a.explain.version_rows, a.explain.segment_rows, a.explain.deleted_rows) == (
        b.explain.version_rows,
        b.explain.segment_rows,
        b.explain.deleted_rows,
    )
    assert (a.explain.filter or {}).get("matched_rows") == (b.explain.filter or {}).get("matched_rows")


SEARCHES = {
    "one vector": lambda q, t: dict(queries=q[0], k=5, budget="binary:rescore=10"),
    "a batch of vectors": lambda q, t: dict(queries=q, k=7, budget="dense:dim=64", with_text=True),
    "more hits than items match": lambda q, t: dict(
        queries=q[:2], k=30, filter={"group": "odd", "rank": {"range": {"lt": 40}}}, with_payload=True
    ),
    "a filter on one vector": lambda q, t: dict(
        queries=q[0], k=3, budget="funnel:binary*40>128*10>full", filter={"group": "even"}, with_payload=True
    ),
    "texts": lambda q, t: dict(queries=t, k=4, budget="exact", with_text=True),
    "one text, hybrid": lambda q, t: dict(queries=t[0], k=4, hybrid={"lexical": 0.5}),
    "vectors with their texts, hybrid": lambda q, t: dict(queries=q[:2], k=4, hybrid="lexical=0.3,method=rrf", texts=t[:2]),
    "a JSON budget": lambda q, t: dict(queries=q[:2], k=3, budget={"mode": "dense", "dim": 32}),
}


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
def test_a_server_answers_every_kind_of_search_as_the_embedded_collection_does(pair, outside_vectors, search):
    embedded, remote = pair
    texts = ["parse a date string", "item 3", "open a file and read its lines"]
    kwargs = search(outside_vectors[:3], texts)
    same_hits(embedded.search(**kwargs), remote.search(**kwargs))


ERRORS = {  # the server's own limits (max_k, max_batch...) may word a refusal its way: `says` is what both name
    "an unknown mode": (dict(budget="fast"), vecdial.BudgetError, "fast"),
    "a knob out of range": (dict(budget="dense:dim=5000"), vecdial.BudgetError, "dim"),
    "k out of range": (dict(k=0), vecdial.InvalidInput, "k"),
    "an unknown filter field": (dict(filter={"colour": "red"}), vecdial.InvalidInput, "colour"),
    "hybrid without texts": (dict(hybrid={"lexical": 0.3}), vecdial.InvalidInput, "as text"),
    "a steer without sparse codes": (dict(steer={"12": 0.5}), vecdial.BudgetError, "sparse"),
}


@pytest.mark.parametrize("kwargs, error, says", ERRORS.values(), ids=ERRORS.keys())
def test_a_bad_search_raises_the_same_class_remotely(pair, outside_vectors, kwargs, error, says):
    embedded, remote = pair
    with pytest.raises(error, match=says) as here:
        embedded.search(outside_vectors[0], **kwargs)
    with pytest.raises(error, match=says) as there:
        remote.search(outside_vectors[0], **kwargs)
    assert type(there.value) is type(here.value)


def test_writes_through_either_handle_answer_alike(pair, outside_vectors):
    embedded, remote = pair
    for handle in (embedded, remote):
        assert handle.upsert(["fresh"], outside_vectors[5:6], payloads=[{"group": "new"}]).upserted == 1
        assert handle.delete(["fresh", "never-there"]).deleted == 1
    assert embedded.info().to_dict() | {"created_at": None} == remote.info().to_dict() | {"created_at": None}
    assert remote.ids(limit=5) == embedded.ids(limit=5)


def test_a_sweep_runs_on_the_server_and_its_report_is_written_here(connect, tiny_data_dir, tmp_path):
    docs = connect(tiny_data_dir).open("tiny")
    points = docs.sweep(n=40, budgets=["binary:rescore=10", "dense:dim=64", "exact"], show_progress=False)
    assert {p.budget for p in points} >= {"binary:rescore=10", "dense:dim=64"} and all(0 <= p.recall_at_10 <= 1 for p in points)
    source, stored = docs.sweep_points()
    assert source.startswith("pseudo-queries (40") and [p.budget for p in stored] == [
        p.budget for p in points
    ]  # the default: tiny has texts
    assert stored == points and {p.miss_factor for p in stored} == {PSEUDO_MISS_FACTOR}  # the query-gap correction travels too
    assert docs.search(np.zeros(384, np.float32) + 0.05, k=2, budget="auto:target_recall=0.5").explain.calibration
    report = json.loads(docs.report(tmp_path / "sweep.json").read_text())
    assert len(report["points"] if isinstance(report, dict) else report) == len(points)


def test_a_reindex_that_misses_its_recall_gate_fails_alike(connect, tiny_data_dir, version_of):
    docs = connect(tiny_data_dir).open("tiny")
    job = docs.reindex({"dtype": "float16"}, min_recall=0.999, budget="binary:rescore=0", show_progress=False)
    while not docs.db.job(job.id).finished:  # the job's record, as every process sees it
        time.sleep(0.1)
    status = docs.db.job(job.id)
    assert status.state == "failed" and "recall" in status.message and docs.info().version == version_of(1)
    assert job.status.state == "failed"


def test_waiting_on_a_failed_remote_reindex_raises_what_it_measured(pair, version_of):
    _, remote = pair
    with pytest.raises(JobFailed, match="recall") as failed:
        remote.reindex({"dtype": "float16"}, min_recall=0.999, budget="binary:rescore=0", wait=True, show_progress=False)
    assert failed.value.status.state == "failed" and remote.info().version == version_of(1)


def test_features_of_a_collection_without_sparse_codes_say_to_build_them(connect, tiny_data_dir):
    with pytest.raises(vecdial.VecdialError, match="sparse"):
        connect(tiny_data_dir).open("tiny").features()


def test_an_unknown_collection_is_not_found(connect, tmp_path):
    db = connect(tmp_path)
    with pytest.raises(vecdial.NotFound):
        db.open("nothing-here")
    with pytest.raises(vecdial.NotFound):
        db.drop("nothing-here")


def test_a_create_with_exist_ok_that_another_client_beat_opens_theirs(api_server, tiny_dataset, monkeypatch):
    from vecdial.remote import RemoteDatabase

    url, _ = api_server
    vectors = np.asarray(tiny_dataset.vectors[:50])
    with vecdial.connect(url, api_key=API_KEY) as other, vecdial.connect(url, api_key=API_KEY) as db:
        theirs = other.create("docs", vectors[:20], show_progress=False)
        looked = []
        existing = RemoteDatabase._existing

        def not_yet(self, name, given):  # the name is looked up before the other client created it
            if not looked:
                looked.append(name)
                raise vecdial.NotFound(f"collection {name!r} does not exist")
            return existing(self, name, given)

        monkeypatch.setattr(RemoteDatabase, "_existing", not_yet)
        try:
            mine = db.create("docs", vectors, exist_ok=True, show_progress=False)
            assert looked == ["docs"] and mine.info().size == 20 and mine.info().version == theirs.info().version
        finally:
            other.drop("docs")


def test_a_wrong_api_key_says_to_pass_one(api_server):
    with vecdial.connect(api_server[0], api_key="wrong") as db, pytest.raises(Unauthorized, match="api_key="):
        db.list()


def test_an_unreachable_server_says_where_it_looked(api_server):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free, so nothing listens there
    with connect_remote(f"http://127.0.0.1:{port}", retries=0) as db, pytest.raises(ServerUnavailable, match=f"127.0.0.1:{port}"):
        db.list()


def scripted(answers: list[int], seen: list[str]) -> httpx.MockTransport:
    """A transport answering each request with the next status (503: busy; 200: an empty collection list)."""
    import httpx

    def answer(request):
        seen.append(f"{request.method} {request.url.path}")
        status = answers.pop(0)
        return httpx.Response(status, json=[] if status == 200 else {"error": "busy", "message": "every worker is busy"})

    return httpx.MockTransport(answer)


def test_an_idempotent_call_is_retried_while_the_server_is_busy():
    from vecdial.remote import RemoteDatabase
    from vecdial.remote_http import Http

    seen: list[str] = []
    db = RemoteDatabase(Http("http://vecdial.test", transport=scripted([503, 503, 200], seen)))
    assert db.list() == [] and seen == ["GET /v1/collections"] * 3


def test_a_create_is_never_sent_twice():
    from vecdial.remote import RemoteDatabase
    from vecdial.remote_http import Http

    seen: list[str] = []
    db = RemoteDatabase(Http("http://vecdial.test", transport=scripted([503, 200], seen)))
    with pytest.raises(ServerUnavailable, match="busy"):
        db.create("docs", np.ones((2, 4), np.float32))
    assert seen == ["POST /v1/collections"]


@pytest.mark.parametrize(
    "status, body, error",
    [
        (409, {"error": "damaged_log", "message": "run vecdial repair"}, vecdial.DamagedLog),
        (503, {"error": "corrupt_index", "message": "v000001/codes.bin is damaged"}, vecdial.CorruptIndex),
        (503, {"error": "busy", "message": "every worker is busy"}, ServerUnavailable),
        (400, {"error": "a_code_added_later", "message": "send less"}, vecdial.InvalidInput),
        (502, None, ServerUnavailable),
    ],
)
def test_an_error_answer_raises_the_class_its_code_names(status, body, error):
    from vecdial.remote_http import error_from

    assert type(error_from(status, body)) is error


# Embedded-only: they need the model or the collection's files in this process (vecdial/remote.py
# says so; `backup` copies the files, run it where they are), or start a job's thread here (a
# server starts its own).
# shard: rewrites the collection's directory while no server holds it (`vecdial shard` beside the data)
EMBEDDED_ONLY = {"backup", "encode", "evaluate", "keep_queries", "shard", "start", "warm_up"}


@pytest.mark.parametrize("embedded, remote", [("Database", "RemoteDatabase"), ("Collection", "RemoteCollection"), ("Job", "RemoteJob")])
def test_the_remote_classes_take_every_argument_the_embedded_ones_do(embedded, remote):
    import inspect

    import vecdial.remote as remote_module

    here, there = getattr(vecdial, embedded), getattr(remote_module, remote)
    for name, member in inspect.getmembers(here):
        if name.startswith("_") or name in EMBEDDED_ONLY or not callable(member):
            continue
        assert hasattr(there, name), f"{remote}.{name} is missing"
        wanted = [(p.name, p.kind, p.default) for p in inspect.signature(member).parameters.values()]
        given = [(p.name, p.kind, p.default) for p in inspect.signature(getattr(there, name)).parameters.values()]
        assert given == wanted, f"{remote}.{name}"
