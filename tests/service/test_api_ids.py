"""Listing ids over HTTP, a page at a time, exact across writes between pages."""

import pytest

pytestmark = pytest.mark.also_sharded  # over 'tiny' whole and in 2 shards


def test_pages_cover_every_live_id_once_in_order(client, demo_dataset):
    collection = "tiny"
    seen, after = [], None
    while True:
        params = {"limit": 128} | ({"after": after} if after is not None else {})
        response = client.get(f"/v1/collections/{collection}/ids", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += page["ids"]
        after = page["next"]
        if after is None:
            break
    assert seen == sorted(demo_dataset.ids[:300].tolist())


def test_a_deleted_id_leaves_the_listing(client, demo_dataset):
    gone = str(demo_dataset.ids[0])
    assert client.post("/v1/collections/tiny/vectors/delete", json={"ids": [gone]}).status_code == 200
    ids = client.get("/v1/collections/tiny/ids", params={"limit": 10_000}).json()["ids"]
    assert gone not in ids and len(ids) == 299


def test_a_bad_limit_is_a_422(client):
    assert client.get("/v1/collections/tiny/ids", params={"limit": 0}).status_code == 422


@pytest.mark.whole_only(reason="damages the log file of one collection")
def test_writes_to_a_damaged_log_get_a_409_while_searches_and_describe_go_on(tiny_data_dir, make_client, outside):
    client = make_client()
    for i in range(6):
        assert (
            client.post("/v1/collections/tiny/vectors/upsert", json={"items": [{"id": f"new{i}", "vector": outside[i]}]}).status_code == 200
        )
    log = tiny_data_dir / "tiny" / "wal" / "v000001.log"
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0x10  # a flipped bit inside an acknowledged record, valid records after it
    log.write_bytes(bytes(data))
    client = make_client()  # a fresh process view of the damaged log
    response = client.post("/v1/collections/tiny/vectors/upsert", json={"items": [{"id": "more", "vector": outside[7]}]})
    assert response.status_code == 409 and response.json()["error"] == "damaged_log"
    assert "vecdial repair" in response.json()["message"]
    assert "vecdial repair" in client.get("/v1/collections/tiny").json()["damaged"]
    assert client.post("/v1/collections/tiny/search", json={"vector": outside[5], "k": 1}).json()["hits"][0]["id"] == "new5"
    readiness = client.get("/readyz")
    assert readiness.status_code == 200 and "vecdial repair" in readiness.json()["damaged"]["tiny"]
