"""The sharded door (service/api/door.py, served on Ray Serve by service/sharded.py) is built
from the main app's pieces: the same settings, API key, limits, parser and error shape. Here
it is served in process over the in-process scatter (service/shard_search.py), and the auth
and poison requests are sent to the main app and to the door alike."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

import vecdial
from vecdial.service.api.door import create_door
from vecdial.service.app import create_app
from vecdial.service.settings import Settings
from vecdial.service.shard_search import create_shards, search_one_shard

KEY = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def door_settings(tiny_data_dir, tiny_dataset) -> Settings:
    """'tiny' in tiny_data_dir, also as 2 shards, and the settings both apps are built with."""
    create_shards(vecdial.connect(tiny_data_dir), "tiny", 2, np.asarray(tiny_dataset.vectors), ids=tiny_dataset.ids)
    return Settings(data_dir=tiny_data_dir, log_level="warning", api_key="s3cret", max_k=50, max_body_bytes=64 * 1024)


def make_door(settings: Settings) -> TestClient:
    shards = [vecdial.connect(settings.data_dir).open(f"tiny.shard{i}of2") for i in range(2)]

    async def scatter(queries, k, budget):
        return [search_one_shard(shard, queries, k, budget) for shard in shards]

    return TestClient(create_door(settings, "tiny", scatter))


@pytest.fixture(params=["main app", "sharded door"])
def served(request, door_settings):
    """A client of the main app or of the door, built with the same settings."""
    app = create_app(door_settings) if request.param == "main app" else None
    with TestClient(app) if app is not None else make_door(door_settings) as client:
        yield client


def test_exact_through_the_door_is_exact_over_the_whole(door_settings, inside, demo_dataset):
    whole = vecdial.connect(door_settings.data_dir).open("tiny")
    with make_door(door_settings) as door:
        for query in inside[:5]:
            answer = door.post("/v1/collections/tiny/search", json={"vector": query, "k": 10}, headers=KEY)
            assert answer.status_code == 200, answer.text
            assert [hit["id"] for hit in answer.json()["hits"]] == whole.search(np.asarray(query), k=10).ids[0].tolist()
            assert len(answer.json()["explain"]["shards"]) == 2


def test_without_the_key_a_search_is_a_401_in_the_one_error_shape(served, inside):
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = served.post("/v1/collections/tiny/search", json={"vector": inside[0]}, headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert set(response.json()) == {"error", "message"} and response.json()["error"] == "unauthorized"
    assert served.get("/healthz").status_code == 200


def test_the_key_is_checked_before_the_body_is_parsed(served):
    response = served.post("/v1/collections/tiny/search", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 401


def raw(body: str) -> dict:
    return {"content": body.encode(), "headers": {**KEY, "content-type": "application/json"}}


POISON = {
    "malformed json": (raw("{not json"), 400, "malformed_json"),
    "json 5000 levels deep": (raw('{"vector": [0.5], "filter": ' + '{"not": ' * 5000 + "1" + "}" * 5000 + "}"), 400, "json_too_deep"),
    "k of 5000 digits": (raw('{"vector": [0.5], "k": ' + "9" * 5000 + "}"), 422, "invalid_input"),
    "k true": (raw('{"vector": [0.5], "k": true}'), 422, "invalid_input"),
    "k over max_k": (raw('{"vector": [0.5], "k": 51}'), 422, "invalid_input"),
    "vector and text": (raw('{"vector": [0.5], "text": "x"}'), 422, "invalid_input"),
    "NaN in the vector": (raw('{"vector": [0.5, NaN]}'), 422, "invalid_input"),
    "body over max_body_bytes": (raw(json.dumps({"vector": [0.5] * 20_000})), 413, "body_too_large"),
    "a bad budget": (raw(json.dumps({"vector": [0.5] * 384, "budget": "dense:dim=-3"})), 422, "invalid_budget"),
}


@pytest.mark.parametrize("case", list(POISON))
def test_poison_searches_get_the_same_4xx_from_the_main_app_and_the_door(served, case):
    request, status, code = POISON[case]
    response = served.post("/v1/collections/tiny/search", **request)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error", "message"} and response.json()["error"] == code


def test_a_collection_the_door_does_not_hold_is_a_404_in_the_error_shape(door_settings, inside):
    with make_door(door_settings) as door:
        response = door.post("/v1/collections/other/search", json={"vector": inside[0]}, headers=KEY)
    assert response.status_code == 404 and response.json()["error"] == "not_found" and "'tiny' only" in response.json()["message"]


@pytest.mark.parametrize("extra", [{"text": "sort a list"}, {"filter": {"module": "os"}}, {"with_text": True}])
def test_what_the_door_does_not_shard_is_a_422_pointing_at_the_plain_service(door_settings, inside, extra):
    body = {"text": extra["text"]} if "text" in extra else {"vector": inside[0], **extra}
    with make_door(door_settings) as door:
        response = door.post("/v1/collections/tiny/search", json=body, headers=KEY)
    assert response.status_code == 422 and "plain service" in response.json()["message"]
