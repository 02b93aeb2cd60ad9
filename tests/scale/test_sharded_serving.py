"""A collection served as shards on Ray Serve answers /v1/.../search as the whole collection does."""

import pytest

pytest.importorskip("ray.serve")

import httpx  # noqa: E402

import vecdial  # noqa: E402
from bench.server import free_port  # noqa: E402
from vecdial.service.shard_search import create_shards  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def served(tmp_path_factory, demo_dataset, cluster):
    import ray
    from ray import serve

    from vecdial.service.sharded import serve_sharded

    data_dir = tmp_path_factory.mktemp("sharded-data")
    db = vecdial.connect(data_dir)
    whole = db.create("demo", demo_dataset.vectors, ids=demo_dataset.ids, show_progress=False)
    create_shards(db, "demo", 2, demo_dataset.vectors, ids=demo_dataset.ids)
    port = free_port()
    serve_sharded(cluster.address, str(data_dir), "demo", 2, port=port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield whole, client
    finally:
        serve.shutdown()
        ray.shutdown()


def test_exact_through_the_sharded_service_is_exact_over_the_whole(served, demo_vectors):
    whole, client = served
    for query in demo_vectors[1][:10]:
        answer = client.post("/v1/collections/demo/search", json={"vector": query.tolist(), "k": 10, "budget": "exact"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [h["id"] for h in body["hits"]] == whole.search(query, k=10).ids[0].tolist()
        assert sorted(shard["shard"] for shard in body["explain"]["shards"]) == ["demo.shard0of2", "demo.shard1of2"]


def test_another_collection_name_is_not_found(served):
    _, client = served
    assert client.post("/v1/collections/other/search", json={"vector": [0.1] * 384}).status_code == 404
