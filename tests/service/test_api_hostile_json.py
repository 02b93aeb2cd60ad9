"""Hostile JSON: ids beyond 64 bits, bodies nested a thousand levels, integer literals of
thousands of digits, true/false where numbers belong. Each is a 4xx that says what is wrong,
never a 500, and nothing is written."""

from __future__ import annotations

import json

import pytest

from vecdial.indexer.io.checks import MAX_ID_CHARS
from vecdial.service import json_types
from vecdial.service.api.fast_json import MAX_DEPTH, nesting

HUGE = "9" * 5000  # over Python's 4,300-digit limit for int(str)


@pytest.fixture
def ints(client, inside) -> str:
    """A collection with integer ids 0..3 (the first tiny vectors), made over HTTP."""
    assert client.post("/v1/collections", json={"name": "ints", "vectors": inside[:4]}).status_code == 201
    return "ints"


def post_raw(client, path: str, body: str):
    return client.post(path, content=body.encode(), headers={"content-type": "application/json"})


def nested_filter(depth: int) -> str:
    return '{"not": ' * depth + '{"kind": "x"}' + "}" * depth


@pytest.mark.parametrize("big", [2**63, -(2**63) - 1, 2**64, 10**30])
def test_a_create_with_an_integer_id_beyond_64_bits_is_a_422_and_creates_nothing(client, inside, big):
    response = client.post("/v1/collections", json={"name": "wide", "vectors": inside[:2], "ids": [1, big]})
    assert response.status_code == 422, response.text
    assert response.json()["message"].startswith("ids.1: ") and "64 bits" in response.json()["message"]
    assert client.get("/v1/collections/wide").status_code == 404


def test_a_create_with_the_int64_extremes_is_accepted(client, inside):
    response = client.post("/v1/collections", json={"name": "edges", "vectors": inside[:2], "ids": [2**63 - 1, -(2**63)]})
    assert response.status_code == 201, response.text
    hits = client.post("/v1/collections/edges/search", json={"vector": inside[1], "k": 1}).json()["hits"]
    assert hits[0]["id"] == -(2**63)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_a_filter_nested_past_the_depth_limit_is_a_400_json_too_deep(client, inside, depth):
    response = post_raw(client, "/v1/collections/tiny/search", f'{{"vector": {json.dumps(inside[0])}, "filter": {nested_filter(depth)}}}')
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "json_too_deep"
    assert f"nests {depth + 2} levels deep, over this server's limit of {MAX_DEPTH}" in response.json()["message"]


def test_a_filter_nested_1000_deep_is_refused_by_the_filter_depth_limit(client, inside):
    response = post_raw(client, "/v1/collections/tiny/search", f'{{"vector": {json.dumps(inside[0])}, "filter": {nested_filter(1000)}}}')
    assert response.status_code == 422 and "levels deep" in response.json()["message"]


@pytest.mark.parametrize(
    "path, body",
    [
        ("vectors/delete", '{"ids": ' + "[" * 3000 + "]" * 3000 + "}"),
        ("vectors/upsert", '{"items": ' + "[" * 3000 + "]" * 3000 + "}"),
        ("search/batch", '{"queries": ' + "[" * 3000 + "]" * 3000 + "}"),
    ],
)
def test_any_body_nested_past_the_depth_limit_is_a_400_json_too_deep(client, path, body):
    response = post_raw(client, f"/v1/collections/tiny/{path}", body)
    assert response.status_code == 400 and response.json()["error"] == "json_too_deep", response.text


def test_a_deep_body_that_also_holds_nan_is_a_400_malformed_json(client):
    """NaN is read leniently (and refused by the field) only in bodies as shallow as real requests."""
    response = post_raw(client, "/v1/collections/tiny/search", '{"vector": [NaN], "filter": ' + nested_filter(1000) + "}")
    assert response.status_code == 400 and response.json()["error"] == "malformed_json", response.text


def test_nan_in_a_shallow_body_still_reaches_the_vector_check(client):
    response = post_raw(client, "/v1/collections/tiny/search", '{"vector": [0.5, NaN]}')
    assert response.status_code == 422 and "NaN or infinite values (first at index 1)" in response.json()["message"]


@pytest.mark.parametrize(
    "path, body, says",
    [
        ("vectors/delete", f'{{"ids": [{HUGE}]}}', "ids.0: the number inf is beyond 64 bits"),
        ("vectors/delete", f'{{"ids": [1, -{HUGE}]}}', "ids.1: the number -inf is beyond 64 bits"),
        ("vectors/upsert", f'{{"items": [{{"id": {HUGE}, "text": "a"}}]}}', "items.0.id: the number inf is beyond 64 bits"),
        ("search", f'{{"text": "a", "k": {HUGE}}}', "k: Input should be a valid integer"),
        ("search", f'{{"vector": [{HUGE}, 0.5]}}', "vector: contains NaN or infinite values (first at index 0)"),
    ],
)
def test_an_integer_literal_of_5000_digits_is_a_422_naming_the_field(client, ints, path, body, says):
    response = post_raw(client, f"/v1/collections/{ints}/{path}", body)
    assert response.status_code == 422, response.text
    assert says in response.json()["message"]
    assert client.get(f"/v1/collections/{ints}").json()["size"] == 4


def test_integer_literals_past_64_bits_read_as_floats_whichever_parser_reads_them(client, ints):
    """orjson reads 2**64 as a float; the stdlib fallback (here for the NaN) reads it the same way."""
    for body in (f'{{"ids": [{2**64}]}}', f'{{"ids": [{2**64}], "x": NaN}}'):
        response = post_raw(client, f"/v1/collections/{ints}/vectors/delete", body)
        assert response.status_code == 422 and "ids.0: the number 1.8446744073709552e+19 is beyond 64 bits" in response.json()["message"]


def test_true_as_an_id_does_not_overwrite_id_1(client, ints, outside, inside):
    response = client.post(f"/v1/collections/{ints}/vectors/upsert", json={"items": [{"id": True, "vector": outside[0]}]})
    assert response.status_code == 422 and "items.0.id: true is not an id" in response.json()["message"]
    hits = client.post(f"/v1/collections/{ints}/search", json={"vector": inside[1], "k": 1}).json()["hits"]
    assert hits[0]["id"] == 1 and hits[0]["score"] > 0.99


def test_true_and_false_are_not_ids_of_a_create_or_a_delete(client, ints, inside):
    create = client.post("/v1/collections", json={"name": "flags", "vectors": inside[:2], "ids": [True, False]})
    assert create.status_code == 422 and "ids.0: true is not an id" in create.json()["message"]
    assert client.get("/v1/collections/flags").status_code == 404
    delete = client.post(f"/v1/collections/{ints}/vectors/delete", json={"ids": [True]})
    assert delete.status_code == 422 and client.get(f"/v1/collections/{ints}").json()["size"] == 4


@pytest.mark.parametrize(
    "path, body, field",
    [
        (
            "/v1/collections",
            {"name": "s", "vectors": [[0.5, 0.5]], "settings": {"sparse": {"contrastive_coef": False}}},
            "settings.sparse.contrastive_coef",
        ),
        ("/v1/collections", {"name": "s", "vectors": [[0.5, 0.5]], "settings": {"block": True}}, "settings.block"),
        ("/v1/collections/tiny/reindex", {"sparse": {"max_active": True}}, "sparse.max_active"),
        ("/v1/collections/tiny/reindex", {"min_recall": True}, "min_recall"),
        ("/v1/collections/tiny/search", {"text": "sort a list", "k": True}, "k"),
        ("/v1/collections/tiny/search", {"text": "sort a list", "with_text": 1}, "with_text"),
        ("/v1/collections/tiny/search/batch", {"vectors_b64": "AAAAPw==", "dim": True}, "dim"),
    ],
)
def test_json_booleans_are_not_numbers_and_numbers_are_not_booleans(client, path, body, field):
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["message"].startswith(f"{field}: Input should be a valid")
    assert client.get("/v1/jobs").json() == []


def test_the_http_id_limits_are_the_librarys():
    assert (json_types.INT64_MIN, json_types.INT64_MAX, json_types.MAX_ID_CHARS) == (-(2**63), 2**63 - 1, MAX_ID_CHARS)


@pytest.mark.parametrize(
    "body, depth",
    [
        (b"1", 0),
        (b"[[], [[[]]]]", 4),
        (b'{"a": "[[[[", "b": [1]}', 2),
        (b'{"a": "\\"[[[[", "b": [1]}', 2),  # an escaped quote does not end the string
        (b'{"a": "\\\\", "b": [[1]]}', 3),  # an escaped backslash does not escape the closing quote
        (b'["]]]]", [[["\\\\\\"]"]]]]', 4),
    ],
)
def test_nesting_counts_the_brackets_outside_strings(body, depth):
    assert nesting(body) == depth


@pytest.mark.parametrize(
    "extra, says, code",
    [
        ({"budget": {"mode": "dense", "dim": True}}, "budget: dim is true", "invalid_budget"),
        ({"budget": {"mode": "funnel", "stages": [{"kind": "binary", "keep": False}]}}, "budget: stages.0.keep is false", "invalid_budget"),
        ({"hybrid": {"lexical": True}}, "hybrid: lexical is true", "invalid_input"),
    ],
)
def test_true_and_false_are_not_budget_or_hybrid_knobs(client, inside, extra, says, code):
    response = client.post("/v1/collections/tiny/search", json={"vector": inside[0], **extra})
    assert response.status_code == 422 and response.json()["error"] == code
    assert response.json()["message"].startswith(says)
