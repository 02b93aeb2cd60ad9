"""Payloads and filters over HTTP: created with a collection or upserted with an item, filtered
inside the search, returned with `with_payload`; a bad filter or payload is a 422 naming it."""

from __future__ import annotations

import numpy as np
import pytest

from vecdial.indexer.filters.demo import demo_payloads

pytestmark = pytest.mark.also_sharded  # over 'tiny' whole and in 2 shards

SEARCH = "/v1/collections/docs/search"


@pytest.fixture
def docs(client, demo_corpus, demo_dataset):
    """Collection 'docs': the first 300 demo rows with their payloads, created over HTTP."""
    body = {
        "name": "docs",
        "vectors": np.asarray(demo_dataset.vectors[:300]).tolist(),
        "ids": demo_corpus.doc_ids[:300],
        "payloads": demo_payloads(demo_corpus.doc_ids[:300], demo_corpus.doc_texts[:300]),
    }
    response = client.post("/v1/collections", json=body)
    assert response.status_code == 201, response.text
    return client


def test_a_filtered_search_returns_only_matching_hits_with_their_payloads(docs, inside):
    response = docs.post(
        SEARCH, json={"vector": inside[0], "k": 5, "budget": "binary:rescore=10", "filter": {"module": "asyncio"}, "with_payload": True}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["hits"] and all(hit["id"].startswith("asyncio.") and hit["payload"]["module"] == "asyncio" for hit in body["hits"])
    assert body["explain"]["filter"]["strategy"] in ("rows", "mask") and body["explain"]["filter"]["matched_rows"] > 0


def test_a_batch_takes_the_same_filter(docs, inside):
    body = docs.post(
        SEARCH + "/batch",
        json={"queries": [{"vector": v} for v in inside[:3]], "k": 3, "filter": {"chars": {"range": {"lt": 300}}}, "with_payload": True},
    ).json()
    assert all(hit["payload"]["chars"] < 300 for hits in body["results"] for hit in hits)


def test_upserted_payloads_are_searchable_at_once(docs, outside):
    response = docs.post(
        "/v1/collections/docs/vectors/upsert",
        json={"items": [{"id": "fresh", "vector": outside[0], "payload": {"module": "fresh", "released": "2024-05-01"}}]},
    )
    assert response.status_code == 200, response.text
    hits = docs.post(
        SEARCH, json={"vector": outside[0], "k": 3, "filter": {"released": {"range": {"gte": "2024-01-01"}}}, "with_payload": True}
    ).json()["hits"]
    assert hits == [
        {"id": "fresh", "score": pytest.approx(1.0, abs=1e-5), "payload": {"module": "fresh", "released": "2024-05-01T00:00:00+00:00"}}
    ]


@pytest.mark.parametrize(
    "filter_, says",
    [
        ({"nope": 1}, "unknown payload field 'nope'"),
        ({"chars": "long"}, "compare with a number"),
        ({"module": {"like": "a%"}}, "unknown operator"),
        ({"or": "module"}, "non-empty list"),
    ],
)
def test_a_bad_filter_is_a_422_saying_what_to_change(docs, inside, filter_, says):
    response = docs.post(SEARCH, json={"vector": inside[0], "k": 3, "filter": filter_})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_input" and says in response.json()["message"]


def test_a_filter_that_is_not_an_object_is_a_422(docs, inside):
    response = docs.post(SEARCH, json={"vector": inside[0], "filter": "module=os"})
    assert response.status_code == 422


def test_a_payload_of_the_wrong_type_is_a_422_and_nothing_is_written(docs, outside):
    response = docs.post(
        "/v1/collections/docs/vectors/upsert", json={"items": [{"id": "bad", "vector": outside[1], "payload": {"chars": "many"}}]}
    )
    assert response.status_code == 422 and "the field holds integers" in response.json()["message"]
    assert docs.get("/v1/collections/docs").json()["segment_size"] == 0


def test_a_create_with_a_bad_payload_is_a_422_and_creates_nothing(client, inside):
    body = {"name": "broken", "vectors": inside[:2], "payloads": [{"when": True}, None]}
    response = client.post("/v1/collections", json=body)
    assert response.status_code == 422 and "payloads" in response.json()["message"]
    assert client.get("/v1/collections/broken").status_code == 404
