"""POST /v1/collections/{name}/search and /search/batch: hits, explain, budgets, vector encodings, errors."""

import base64
import dataclasses
import json

import numpy as np
import pytest

import vecdial
from vecdial.indexer.modes import MODES

pytestmark = pytest.mark.also_sharded  # over 'tiny' whole and in 2 shards

SEARCH = "/v1/collections/tiny/search"


def b64(vectors) -> str:
    """Little-endian float32 bytes, base64: the `vector_b64` / `vectors_b64` wire form."""
    return base64.b64encode(np.asarray(vectors, dtype="<f4").tobytes()).decode()


BUDGETS = [
    {"mode": "exact"},
    {"mode": "dense", "dim": 64},
    {"mode": "binary", "rescore": 10},
    {"mode": "binary", "rescore": 0},
    {"mode": "funnel", "stages": [{"kind": "binary", "keep": 20}, {"kind": "dense", "dim": 128, "keep": 4}, {"kind": "dense"}]},
]


@pytest.mark.parametrize("budget", BUDGETS, ids=lambda b: b["mode"] + str(len(b)))
def test_search_by_vector_finds_the_stored_vector_under_every_budget(client, inside, demo_dataset, budget):
    response = client.post(SEARCH, json={"vector": inside[3], "k": 5, "budget": budget})
    assert response.status_code == 200
    body = response.json()
    assert body["hits"][0]["id"] == demo_dataset.ids[3] and len(body["hits"]) == 5
    assert body["explain"]["version"] == client.get("/v1/collections/tiny").json()["version"]
    assert body["explain"]["bytes_scanned"] == sum(s["bytes_read"] for s in body["explain"]["stages"]) > 0


@pytest.mark.whole_only(reason="reads the budgets one version serves")
@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_sweep_budget_of_every_registered_mode_answers_k_hits(client, tiny_data_dir, inside, mode):
    """Iterates the registry, so a mode is covered here the day it is registered."""
    version = vecdial.connect(tiny_data_dir).open("tiny")._live.snapshot().version
    budgets = MODES[mode].sweep_budgets(version)
    if not budgets:
        pytest.skip(f"'tiny' is built without {mode}")
    for budget in budgets:
        response = client.post(SEARCH, json={"vector": inside[3], "k": 5, "budget": budget})
        assert response.status_code == 200, (budget, response.text)
        assert len(response.json()["hits"]) == 5 and response.json()["explain"]["bytes_scanned"] > 0, budget


@pytest.mark.whole_only(reason="over shards a stage's candidates are the shards' sum")
def test_explain_reports_budget_candidates_time_and_bytes_per_stage(client, inside):
    explain = client.post(SEARCH, json={"vector": inside[0], "k": 10, "budget": {"mode": "binary", "rescore": 4}}).json()["explain"]
    assert explain["budget"] == "binary:rescore=4"
    assert [(s["stage"], s["candidates"]) for s in explain["stages"]] == [("binary:bits=384", 40), ("rescore:dim=384", 10)]
    modes = {mode["mode"]: mode for mode in client.get("/v1/collections/tiny").json()["modes"]}
    # every one of the 300 binary codes is scanned; then only the 40 candidates' full vectors are read
    assert explain["stages"][0]["bytes_read"] == 300 * modes["binary"]["bytes_per_vector"]
    assert 0 < explain["stages"][1]["bytes_read"] <= 40 * modes["exact"]["bytes_per_vector"]
    assert 0 < sum(s["ms"] for s in explain["stages"]) <= explain["total_ms"]


def test_explain_is_exactly_the_python_explain(client, inside, handle, tiny_data_dir, tiny_layout):
    body = client.post(SEARCH, json={"vector": inside[0], "k": 3, "budget": "dense:dim=64"}).json()
    fields = [field.name for field in dataclasses.fields(vecdial.Explain) if field.name not in ("shards", "partial")]
    assert list(body["explain"]) == fields + (["shards", "partial"] if tiny_layout == "sharded" else [])
    assert list(body) == ["hits", "explain"] and list(body["hits"][0]) == ["id", "score"]
    assert (body["explain"]["version_rows"], body["explain"]["segment_rows"], body["explain"]["deleted_rows"]) == (300, 0, 0)
    assert body["explain"]["calibration"] is None


def test_dense_budgets_read_bytes_in_proportion_to_dim(client, inside):
    def scanned(dim):
        body = client.post(SEARCH, json={"vector": inside[0], "budget": {"mode": "dense", "dim": dim}}).json()
        return body["explain"]["bytes_scanned"]

    assert scanned(32) < scanned(128) < scanned(384)


def test_budget_may_be_sent_in_its_string_form(client, inside):
    body = client.post(SEARCH, json={"vector": inside[0], "budget": "funnel:binary*20>128*4>full"}).json()
    assert body["explain"]["budget"] == "funnel:binary*20>128*4>full"


def test_with_text_returns_stored_texts(client, inside, demo_dataset):
    hit = client.post(SEARCH, json={"vector": inside[2], "k": 1, "with_text": True}).json()["hits"][0]
    assert hit["text"] == demo_dataset.texts[2]
    assert "text" not in client.post(SEARCH, json={"vector": inside[2], "k": 1}).json()["hits"][0]


def test_search_by_text_uses_the_bundled_model(client, demo_dataset):
    body = client.post(SEARCH, json={"text": demo_dataset.texts[4], "k": 3}).json()
    assert demo_dataset.ids[4] in [hit["id"] for hit in body["hits"]]


def test_text_search_on_a_collection_of_foreign_vectors_says_to_send_vectors(client, outside):
    client.post("/v1/collections", json={"name": "foreign", "vectors": outside})
    response = client.post("/v1/collections/foreign/search", json={"text": "anything"})
    assert response.status_code == 422 and "cannot encode text: send vectors instead" in response.json()["message"]


def test_a_base64_vector_gives_the_same_answer_as_the_list(client, inside):
    for budget in ("exact", "binary:rescore=10"):
        as_list = client.post(SEARCH, json={"vector": inside[8], "k": 5, "budget": budget}).json()
        as_b64 = client.post(SEARCH, json={"vector_b64": b64(inside[8]), "k": 5, "budget": budget}).json()
        assert as_b64["hits"] == as_list["hits"]


def test_a_batch_may_send_every_vector_as_one_base64_array(client, inside, demo_dataset):
    body = {"vectors_b64": b64(inside[:4]), "dim": 384, "k": 2, "budget": "dense:dim=128"}
    results = client.post(SEARCH + "/batch", json=body).json()["results"]
    assert [hits[0]["id"] for hits in results] == list(demo_dataset.ids[:4])
    as_queries = client.post(SEARCH + "/batch", json={"queries": [{"vector": v} for v in inside[:4]], "k": 2, "budget": "dense:dim=128"})
    assert as_queries.json()["results"] == results


def test_a_batch_may_mix_vectors_base64_and_text(client, inside, demo_dataset):
    queries = [{"vector": inside[1]}, {"vector_b64": b64(inside[2])}, {"text": demo_dataset.texts[3]}]
    results = client.post(SEARCH + "/batch", json={"queries": queries, "k": 3}).json()["results"]
    assert [hits[0]["id"] for hits in results[:2]] == list(demo_dataset.ids[1:3])
    assert demo_dataset.ids[3] in [hit["id"] for hit in results[2]]


def test_batch_search_answers_each_query_in_order(client, inside, demo_dataset):
    body = client.post(
        SEARCH + "/batch", json={"queries": [{"vector": inside[1]}, {"vector": inside[6]}], "k": 2, "budget": {"mode": "dense", "dim": 128}}
    ).json()
    assert [hits[0]["id"] for hits in body["results"]] == [demo_dataset.ids[1], demo_dataset.ids[6]]
    assert body["explain"]["budget"] == "dense:dim=128"


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"vector": [0.1, 0.2, 0.3]}, 422, "vector has 3 numbers, the collection has 384 dims"),
        ({"vector_b64": b64([0.1, 0.2, 0.3])}, 422, "vector_b64 has 3 numbers, the collection has 384 dims"),
        ({"vector_b64": b64([0.5] * 384)[:-4]}, 422, "vector_b64: decodes to 1533 bytes, not a whole number of float32"),
        ({"vector_b64": "not base64!"}, 400, "vector_b64 is not valid base64"),
        ({"vector": [0.5] * 383 + ["half"]}, 422, "vector: send a flat list of numbers"),
        ({"vector": [0.5] * 383 + [None]}, 422, "vector: holds null at index 383"),
        ({"vector": [[0.5] * 384]}, 422, "vector: send one flat list of numbers, got shape (1, 384)"),
        ({"vector": []}, 422, "vector: is empty"),
        ({"vector": None, "k": 3}, 422, "send exactly one of `vector`, `vector_b64` or `text`"),
        ({"vector": [1.0] * 384, "budget": {"mode": "fancy"}}, 422, "unknown mode 'fancy': use one of exact, dense"),
        ({"vector": [1.0] * 384, "budget": {"mode": "dense", "dim": 999}}, 422, "dim=999 is out of range"),
        ({"vector": [1.0] * 384, "budget": "binary:rescore=many"}, 422, "invalid budget 'binary:rescore=many'"),
        ({"vector": [1.0] * 384, "budget": {"mode": "sparse", "active": 8}}, 422, "no sparse codes"),
        ({"vector": [1.0] * 384, "k": 0}, 422, "k: Input should be greater than or equal to 1"),
        ({"vector": [1.0] * 384, "k": 5000}, 422, "k=5000 is above this server's limit of 1000"),
        ({"vector": [0.0] * 384}, 422, "all zeros"),
        ({"k": 3}, 422, "send exactly one of `vector`, `vector_b64` or `text`"),
        ({"vector": [1.0] * 384, "vector_b64": b64([1.0] * 384)}, 422, "send exactly one of"),
        ({"vector": [1.0] * 384, "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
        ({"text": "x" * 3000}, 422, "over this server's limit of 2000"),
    ],
)
def test_bad_searches_get_a_4xx_saying_what_to_change(client, body, status, fragment):
    response = client.post(SEARCH, json=body)
    assert response.status_code == status
    assert fragment in response.json()["message"]


def test_nan_and_infinite_values_are_refused(client):
    for token in ("NaN", "Infinity", "-Infinity", "1e999"):
        raw = '{"vector": [' + ", ".join(["0.5"] * 383 + [token]) + "]}"
        response = client.post(SEARCH, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert response.json()["message"].startswith("vector: contains NaN or infinite values (first at index 383)")
    packed = b64([0.5] * 100 + [float("nan")] + [0.5] * 283)
    response = client.post(SEARCH, json={"vector_b64": packed})
    assert response.status_code == 422 and "vector_b64: contains NaN or infinite values (first at index 100)" in response.json()["message"]


@pytest.mark.parametrize("path", [SEARCH, SEARCH + "/batch"])
def test_malformed_json_is_a_400_and_a_missing_or_non_object_body_a_422(client, path):
    for raw in (b'{"vector": [1, 2', b"{'vector': [1]}"):
        response = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400 and response.json()["error"] == "malformed_json"
        assert response.json()["message"].startswith("request body is not valid JSON (")
    for raw, fragment in ((b"", "body: Field required"), (b"[1, 2]", "valid dictionary")):
        response = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422 and fragment in response.json()["message"]


def test_an_oversized_body_is_a_413(make_client):
    client = make_client(max_body_bytes=4096)
    response = client.post(SEARCH, content=json.dumps({"vector": [0.123456789] * 384}), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "limit of 4096 bytes" in response.json()["message"]


def test_a_body_streamed_past_the_limit_is_a_413(make_client):
    client = make_client(max_body_bytes=4096)
    chunks = (b" " * 1024 for _ in range(8))  # no Content-Length: counted while read
    response = client.post(SEARCH, content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_a_batch_over_the_limit_is_refused(make_client, inside):
    client = make_client(max_batch=2)
    response = client.post(SEARCH + "/batch", json={"queries": [{"vector": inside[0]}] * 3})
    assert response.status_code == 422 and "batch limit of 2" in response.json()["message"]
    response = client.post(SEARCH + "/batch", json={"vectors_b64": b64(inside[:3]), "dim": 384})
    assert response.status_code == 422 and "batch limit of 2" in response.json()["message"]


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"queries": [{"vector": [0.5] * 384}, {"vector": [1.0, 2.0]}]}, 422, "queries[1].vector has 2 numbers"),
        ({"queries": [{"vector": [0.5] * 384}, {"vector_b64": b64([1.0, 2.0])}]}, 422, "queries[1].vector_b64 has 2 numbers"),
        ({"queries": [{"vector": [0.5] * 384}, {"vector": [0.5] * 383 + [None]}]}, 422, "queries.1.vector: holds null at index 383"),
        ({"queries": [{"vector_b64": "%%%"}]}, 400, "queries.0.vector_b64 is not valid base64"),
        ({"vectors_b64": b64(np.full((2, 384), 0.5)), "dim": 768}, 422, "dim=768, the collection has 384 dims"),
        ({"vectors_b64": b64(np.full(500, 0.5)), "dim": 384}, 422, "vectors_b64 holds 500 numbers, not a whole number of 384-dim vectors"),
        ({"vectors_b64": b64(np.full(384, 0.5))}, 422, "send `dim` with `vectors_b64`"),
        (
            {"vectors_b64": b64(np.full(384, 0.5)), "dim": 384, "queries": [{"vector": [0.5] * 384}]},
            422,
            "exactly one of `queries` or `vectors_b64`",
        ),
        ({"k": 3}, 422, "exactly one of `queries` or `vectors_b64`"),
    ],
)
def test_bad_batches_name_the_query_or_field(client, body, status, fragment):
    response = client.post(SEARCH + "/batch", json=body)
    assert response.status_code == status and fragment in response.json()["message"], response.json()


def test_unknown_collection_is_a_404(client, inside):
    response = client.post("/v1/collections/nope/search", json={"vector": inside[0]})
    assert response.status_code == 404 and set(response.json()) == {"error", "message"}
    assert response.json()["error"] == "not_found" and "'nope' does not exist" in response.json()["message"]


def test_a_collection_dropped_and_rebuilt_elsewhere_is_served_afresh(client, tiny_data_dir, inside, outside):
    assert client.post(SEARCH, json={"vector": inside[0]}).status_code == 200  # this server holds a handle
    other = vecdial.connect(tiny_data_dir)  # another process, as far as the server can tell
    other.drop("tiny")
    response = client.post(SEARCH, json={"vector": inside[0]})
    assert response.status_code == 404 and "does not exist" in response.json()["message"]
    other.create("tiny", np.asarray(outside), ids=[f"new-{i}" for i in range(len(outside))], show_progress=False)
    assert client.post(SEARCH, json={"vector": outside[3], "k": 1}).json()["hits"][0]["id"] == "new-3"


@pytest.mark.whole_only(reason="reads the sample file of one collection (a sharded one keeps one per shard)")
def test_a_server_keeps_a_sample_of_its_queries_only_when_asked(make_client, inside, tiny_data_dir):
    from vecdial.indexer.disk.query_sample import read_queries

    plain = make_client()
    plain.post("/v1/collections/tiny/search", json={"vector": inside[0], "k": 3}).raise_for_status()
    assert len(read_queries(tiny_data_dir / "tiny", 384)) == 0  # off by default
    sampling = make_client(query_sample_rate=1.0, query_sample_size=10)
    for vector in inside + inside[:5]:
        sampling.post("/v1/collections/tiny/search", json={"vector": vector, "k": 3, "budget": "binary:rescore=5"}).raise_for_status()
    kept = read_queries(tiny_data_dir / "tiny", 384)
    assert kept.shape == (10, 384)  # bounded
    np.testing.assert_allclose(kept[0], inside[0], rtol=1e-6)
