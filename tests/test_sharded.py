"""A collection split into shards (`Database.shard`, `vecdial shard`) answers as the whole does,
keeps every acknowledged write, and serves from its live shards while one is down."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import vecdial
from vecdial.indexer.disk.collection import Collection as CollectionDir
from vecdial.indexer.disk.locks import FileLock
from vecdial.indexer.scale.shards import ShardLayout, shard_of
from vecdial.service.app import create_app
from vecdial.service.cli import main
from vecdial.service.errors import status_for
from vecdial.service.settings import Settings


@pytest.fixture
def db(tiny_data_dir) -> vecdial.Database:
    return vecdial.connect(tiny_data_dir)


def written(db: vecdial.Database, demo_dataset) -> vecdial.Collection:
    """'tiny' with writes in its log only: 5 new items (one with a text), 3 deleted."""
    tiny = db.open("tiny")
    tiny.upsert([f"new-{i}" for i in range(5)], np.asarray(demo_dataset.vectors[1000:1005]), texts=["a new text", None, None, None, None])
    tiny.delete(list(demo_dataset.ids[:3]))
    return tiny


def break_shard(db: vecdial.Database, shard: int) -> None:
    """Make shard `shard` of 'tiny' fail to open (its CURRENT names no version)."""
    (CollectionDir(db.data_dir, "tiny").shards_dir / f"shard{shard}" / "CURRENT").write_text("garbage\n")


def test_sharding_keeps_every_acknowledged_write_and_so_does_merging_back(db, demo_dataset):
    before = written(db, demo_dataset)
    ids_before, _ = before.ids(limit=10_000)
    sharded = db.shard("tiny", 3, show_progress=False)
    assert sharded.info().shards == 3 and sharded.ids(limit=10_000)[0] == ids_before
    assert sharded.search(np.asarray(demo_dataset.vectors[1000]), k=1, with_text=True)[0][0] == {
        "id": "new-0",
        "score": pytest.approx(1.0, abs=1e-5),
        "text": "a new text",
    }
    merged = db.shard("tiny", 1, show_progress=False)
    assert merged.info().shards == 1 and merged.ids(limit=10_000)[0] == ids_before
    assert db.list() == ["tiny"] and not list(db.data_dir.glob(".reshard-*"))


def test_exact_over_the_shards_is_exact_over_the_whole(tiny_data_dir, tmp_path, demo_dataset, demo_vectors):
    import shutil

    copy = shutil.copytree(tiny_data_dir, tmp_path / "copy")
    whole = written(vecdial.connect(tiny_data_dir), demo_dataset)
    written(vecdial.connect(copy), demo_dataset)  # the same writes, then split
    sharded = vecdial.connect(copy).shard("tiny", 3, show_progress=False)
    queries = demo_vectors[1][:20]
    expected, got = whole.search(queries, k=10), sharded.search(queries, k=10)
    assert got.ids.tolist() == expected.ids.tolist()
    np.testing.assert_allclose(got.scores, expected.scores, atol=1e-5)
    assert [s["shard"] for s in got.explain.shards] == ["shard0", "shard1", "shard2"] and got.explain.partial is False


def test_each_write_lands_in_the_shard_owning_its_id(db, demo_dataset):
    sharded = db.shard("tiny", 2, show_progress=False)
    ids = [f"w-{i}" for i in range(6)]
    assert sharded.upsert(ids, np.asarray(demo_dataset.vectors[1000:1006])).upserted == 6
    owners = shard_of(ids, 2)
    for shard in range(2):
        listed = set(sharded.shards.open(f"shard{shard}").ids(limit=10_000)[0])
        assert {i for i, o in zip(ids, owners) if o == shard} <= listed and not {i for i, o in zip(ids, owners) if o != shard} & listed


def test_a_shard_that_cannot_open_leaves_searches_partial_naming_it(db, demo_dataset):
    db.shard("tiny", 2, show_progress=False)
    break_shard(db, 1)
    hits = vecdial.connect(db.data_dir).open("tiny").search(np.asarray(demo_dataset.vectors[0]), k=5)
    assert hits.explain.partial is True and len(hits.ids[0]) == 5
    assert hits.explain.shards[0]["shard"] == "shard0" and "explain" in hits.explain.shards[0]
    assert hits.explain.shards[1]["shard"] == "shard1" and "unavailable" in hits.explain.shards[1]["missing"]
    assert set(hits.ids[0].tolist()) <= set(np.asarray(demo_dataset.ids[:300])[shard_of(demo_dataset.ids[:300], 2) == 0].tolist())


def test_with_partial_off_a_down_shard_fails_searches_as_unavailable(db, demo_dataset):
    db.shard("tiny", 2, partial=False, show_progress=False)
    assert ShardLayout.load(db.data_dir / "tiny").partial is False
    break_shard(db, 1)
    with pytest.raises(vecdial.VecdialError, match="shard1.*partial is false") as caught:
        vecdial.connect(db.data_dir).open("tiny").search(np.asarray(demo_dataset.vectors[0]), k=5)
    assert status_for(caught.value) == (503, "unavailable")


def test_writes_owned_by_a_down_shard_are_unavailable_and_write_nothing(db, demo_dataset):
    db.shard("tiny", 2, show_progress=False)
    break_shard(db, 1)
    tiny = vecdial.connect(db.data_dir).open("tiny")
    size = tiny.info().size
    ids = [f"w-{i}" for i in range(8)]  # some owned by each shard
    assert set(shard_of(ids, 2).tolist()) == {0, 1}
    with pytest.raises(vecdial.VecdialError, match="shard1") as caught:
        tiny.upsert(ids, np.asarray(demo_dataset.vectors[1000:1008]))
    assert status_for(caught.value) == (503, "unavailable") and tiny.info().size == size


def test_over_http_a_down_shard_gives_partial_searches_and_503_writes(db, demo_dataset):
    db.shard("tiny", 2, show_progress=False)
    break_shard(db, 1)
    with TestClient(create_app(Settings(data_dir=db.data_dir, log_level="warning"))) as client:
        answer = client.post("/v1/collections/tiny/search", json={"vector": np.asarray(demo_dataset.vectors[0]).tolist(), "k": 3})
        assert answer.status_code == 200 and answer.json()["explain"]["partial"] is True
        owned_by_1 = next(f"w-{i}" for i in range(50) if shard_of([f"w-{i}"], 2)[0] == 1)
        write = client.post(
            "/v1/collections/tiny/vectors/upsert",
            json={"items": [{"id": owned_by_1, "vector": np.asarray(demo_dataset.vectors[1000]).tolist()}]},
        )
        assert write.status_code == 503 and write.json()["error"] == "unavailable" and "shard1" in write.json()["message"]


def test_sharding_is_refused_while_a_reindex_of_the_collection_runs(db):
    with FileLock(CollectionDir(db.data_dir, "tiny").layout.reindex_lock):
        with pytest.raises(vecdial.AlreadyExists, match="reindex"):
            db.shard("tiny", 2, show_progress=False)
    assert db.open("tiny").info().shards == 1


def test_a_split_that_fails_before_its_swap_leaves_the_collection_as_it_was(db, demo_dataset, monkeypatch):
    ids_before, _ = written(db, demo_dataset).ids(limit=10_000)

    def killed(a, b):
        raise OSError("killed before the swap")

    monkeypatch.setattr("vecdial.indexer.jobs.reshard.exchange", killed)
    with pytest.raises(OSError, match="killed"):
        db.shard("tiny", 2, show_progress=False)
    again = vecdial.connect(db.data_dir).open("tiny")
    assert again.info().shards == 1 and again.ids(limit=10_000)[0] == ids_before and not list(db.data_dir.glob(".reshard-*"))


def test_the_command_line_splits_and_merges_back(tiny_data_dir, capsys):
    assert main(["--data-dir", str(tiny_data_dir), "shard", "-c", "tiny", "--shards", "2", "--quiet"]) == 0
    assert "300 vectors in 2 shards" in capsys.readouterr().out
    assert main(["--data-dir", str(tiny_data_dir), "shard", "-c", "tiny", "--shards", "2", "--quiet"]) == 2
    assert "has 2 shards already" in capsys.readouterr().err
    assert main(["--data-dir", str(tiny_data_dir), "shard", "-c", "tiny", "--shards", "1", "--quiet"]) == 0
    assert vecdial.connect(tiny_data_dir).open("tiny").info().shards == 1
