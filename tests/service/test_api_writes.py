"""Upsert and delete: acknowledged writes are visible to the next search in every mode and survive restarts."""

import pytest

pytestmark = pytest.mark.also_sharded  # over 'tiny' whole and in 2 shards

UPSERT = "/v1/collections/tiny/vectors/upsert"
DELETE = "/v1/collections/tiny/vectors/delete"
MODES = ["exact", "dense:dim=32", "binary:rescore=10", "binary:rescore=0", "funnel:binary*20>128*4>full"]


def top_id(client, vector, budget="exact"):
    return client.post("/v1/collections/tiny/search", json={"vector": vector, "k": 1, "budget": budget}).json()["hits"][0]["id"]


def test_an_upsert_is_visible_to_the_next_search_in_every_mode(client, outside, version_of):
    response = client.post(UPSERT, json={"items": [{"id": "new", "vector": outside[0], "text": "hello"}]})
    assert response.status_code == 200
    assert response.json() == {"upserted": 1, "deleted": 0, "size": 301, "version": version_of(1)}
    assert {top_id(client, outside[0], mode) for mode in MODES} == {"new"}


def test_a_delete_is_visible_to_the_next_search_in_every_mode(client, inside, demo_dataset):
    target = demo_dataset.ids[3]
    assert client.post(DELETE, json={"ids": [target, "no-such-id"]}).json()["deleted"] == 1
    assert all(top_id(client, inside[3], mode) != target for mode in MODES)
    assert client.get("/v1/collections/tiny").json()["size"] == 299


def test_an_upsert_of_an_existing_id_replaces_its_vector(client, inside, outside, demo_dataset):
    target = demo_dataset.ids[5]
    client.post(UPSERT, json={"items": [{"id": target, "vector": outside[1]}]})
    assert top_id(client, outside[1]) == target and top_id(client, inside[5]) != target
    info = client.get("/v1/collections/tiny").json()
    assert (info["size"], info["segment_size"], info["deleted"]) == (300, 1, 1)


def test_items_with_only_text_are_encoded_with_the_bundled_model(client, demo_dataset):
    client.post(UPSERT, json={"items": [{"id": "by-text", "text": demo_dataset.texts[1500]}]})
    assert client.post("/v1/collections/tiny/search", json={"text": demo_dataset.texts[1500], "k": 1}).json()["hits"][0]["id"] == "by-text"


def test_acknowledged_writes_survive_a_restart(make_client, outside, demo_dataset):
    first = make_client()
    first.post(UPSERT, json={"items": [{"id": "kept", "vector": outside[2]}]})
    first.post(DELETE, json={"ids": [demo_dataset.ids[0]]})
    restarted = make_client()  # a new process would replay the same log
    assert top_id(restarted, outside[2]) == "kept"
    assert restarted.get("/v1/collections/tiny").json()["size"] == 300


def test_a_write_through_one_worker_is_seen_by_another(make_client, outside):
    worker_a, worker_b = make_client(), make_client()
    worker_a.post(UPSERT, json={"items": [{"id": "from-a", "vector": outside[3]}]})
    assert top_id(worker_b, outside[3]) == "from-a"


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"items": [{"id": "x", "vector": [1.0, 2.0]}]}, "items[0].vector has 2 numbers, the collection has 384"),
        ({"items": [{"id": 7, "vector": [1.0] * 384}]}, "this collection has non-empty string ids"),
        ({"items": [{"id": "x", "vector": [1.0] * 384}, {"id": "x", "vector": [1.0] * 384}]}, "send each id once"),
        ({"items": [{"id": "x"}]}, "needs a `vector`, or a `text`"),
        ({"items": []}, "items: List should have at least 1 item"),
        ({"ids": []}, "items: Field required"),
    ],
)
def test_bad_upserts_are_refused_and_change_nothing(client, body, fragment):
    response = client.post(UPSERT, json=body)
    assert response.status_code == 422 and fragment in response.json()["message"]
    assert client.get("/v1/collections/tiny").json()["size"] == 300


def test_nan_in_an_upsert_is_refused(client):
    raw = '{"items": [{"id": "x", "vector": [' + ", ".join(["0.1"] * 383 + ["NaN"]) + "]}]}"
    response = client.post(UPSERT, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "NaN or infinite" in response.json()["message"]


def test_write_batches_over_the_limit_are_refused(make_client, outside):
    client = make_client(max_write_batch=2)
    response = client.post(UPSERT, json={"items": [{"id": str(i), "vector": outside[i]} for i in range(3)]})
    assert response.status_code == 422 and "limit of 2" in response.json()["message"]
    assert client.post(DELETE, json={"ids": ["a", "b", "c"]}).status_code == 422


def test_writes_to_an_unknown_collection_are_404(client, outside):
    assert client.post("/v1/collections/nope/vectors/upsert", json={"items": [{"id": "x", "vector": outside[0]}]}).status_code == 404
