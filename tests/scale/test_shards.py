"""A collection split by id hash and searched shard by shard answers as the whole does."""

import numpy as np
import pytest

import vecdial
from vecdial.indexer.scale.shards import ShardHits, merge_hits, shard_of
from vecdial.service.shard_search import create_shards, search_shards

SHARDS = 3


def test_an_id_has_one_shard_whatever_its_type_and_the_shards_are_even():
    ids = np.arange(30_000)
    shards = shard_of(ids, 4)
    assert shard_of(["7"], 4)[0] == shards[7]
    assert np.array_equal(shard_of(ids, 4), shards)
    assert np.bincount(shards, minlength=4).min() > 7_000


def test_the_merge_keeps_the_best_k_across_shards_and_pads():
    a = ShardHits(np.array([["a", "b"]], dtype=object), np.array([[0.9, 0.1]], np.float32), {})
    b = ShardHits(np.array([["c", None]], dtype=object), np.array([[0.5, -np.inf]], np.float32), {})
    ids, scores, found = merge_hits([a, b], 5)
    assert ids[0, :3].tolist() == ["a", "c", "b"] and found.tolist() == [3] and np.isinf(scores[0, 3:]).all()


@pytest.fixture(scope="module")
def sharded(tmp_path_factory, demo_dataset):
    db = vecdial.connect(tmp_path_factory.mktemp("shards"))
    whole = db.create("demo", demo_dataset.vectors, ids=demo_dataset.ids, show_progress=False)
    names = create_shards(db, "demo", SHARDS, demo_dataset.vectors, ids=demo_dataset.ids)
    return whole, [db.open(name) for name in names]


def test_every_id_is_in_exactly_one_shard(sharded, demo_dataset):
    whole, shards = sharded
    assert sum(s.info().size for s in shards) == whole.info().size == len(demo_dataset.ids)


def test_exact_over_the_shards_returns_what_exact_over_the_whole_returns(sharded, demo_vectors):
    whole, shards = sharded
    queries = demo_vectors[1][:40]
    for query in queries:
        expected = whole.search(query, k=10, budget="exact")
        got = search_shards(shards, query, k=10, budget="exact")
        assert [h["id"] for h in got["hits"]] == expected.ids[0].tolist()
        np.testing.assert_allclose([h["score"] for h in got["hits"]], expected.scores[0], atol=1e-5)
        assert [s["shard"] for s in got["explain"]["shards"]] == [s.name for s in shards]


def test_a_compressed_budget_over_shards_keeps_the_recall_of_the_whole(sharded, demo_vectors):
    whole, shards = sharded
    queries = demo_vectors[1][:100]
    budget = "binary:rescore=10"

    def recall(found: list) -> float:
        exact = [set(whole.search(q, k=10).ids[0].tolist()) for q in queries]
        return float(np.mean([len(set(f) & e) / 10 for f, e in zip(found, exact)]))

    on_whole = recall([whole.search(q, k=10, budget=budget).ids[0].tolist() for q in queries])
    on_shards = recall([[h["id"] for h in search_shards(shards, q, k=10, budget=budget)["hits"]] for q in queries])
    assert on_shards >= on_whole - 0.01


def test_the_plain_service_and_command_line_never_import_ray(tmp_path):
    import subprocess
    import sys

    code = "import sys, vecdial.service.app, vecdial.service.cli; vecdial.service.app.create_app(); assert 'ray' not in sys.modules, 'ray imported'"
    env = {"VECDIAL_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).returncode == 0
