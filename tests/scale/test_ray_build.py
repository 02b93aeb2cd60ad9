"""A build on a two-node Ray cluster on loopback (127.0.0.2) writes the same version as a build in-process."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from vecdial.indexer.io.readers import Dataset  # noqa: E402
from vecdial.indexer.jobs.build import build_version  # noqa: E402
from vecdial.indexer.modes.settings import BuildSettings  # noqa: E402
from vecdial.indexer.scale.engines import engine_for  # noqa: E402

pytestmark = pytest.mark.ray

# Cells (rows stored cell by cell) and batches small enough for several shards per pass.
SETTINGS = BuildSettings(partitions=8, batch_size=256)


@pytest.fixture
def ray_engine(cluster, monkeypatch):
    monkeypatch.setenv("VECDIAL_RAY_SHARD_ROWS", "512")
    engine = engine_for(cluster.address)
    yield engine
    engine.close()


def test_both_nodes_take_part(ray_engine):
    import ray

    ray_engine.connect()
    assert sum(node["Alive"] for node in ray.nodes()) == 2


def differing_files(here: Path, there: Path, version_digests) -> list[str]:
    """The data files that differ between two versions: byte for byte, except the rotated float
    rows, computed by matrix products in other processes and batch shapes (equal to 1e-6, not
    bit for bit: BLAS may sum in another order)."""
    expected, got = version_digests(here), version_digests(there)
    assert "ids.npy" in got and got.keys() == expected.keys()
    differ = []
    for name in expected:
        if name.startswith("dense_") and name.endswith(".npy"):
            a, b = np.load(here / name), np.load(there / name)
            if a.shape != b.shape or not np.allclose(a.astype(np.float32), b.astype(np.float32), rtol=0, atol=1e-6):
                differ.append(name)
        elif got[name] != expected[name]:
            differ.append(name)
    return differ


def assert_answers_alike(here, on_ray, queries: np.ndarray) -> None:
    """Two reindexed versions answer alike: the same ids, exact search identical, compressed budgets
    within a hair of each other. Not byte for byte: a reindex trains on the stored rotated rows,
    which a Ray build computes in other processes equal only to 1e-6, and a code bit may flip."""
    assert here.ids(limit=10_000)[0] == on_ray.ids(limit=10_000)[0]
    assert here.search(queries, k=10, budget="exact").ids.tolist() == on_ray.search(queries, k=10, budget="exact").ids.tolist()
    for budget in ("binary:rescore=10", "rabitq:rescore=5"):
        a, b = here.search(queries, k=10, budget=budget).ids, on_ray.search(queries, k=10, budget=budget).ids
        shared = sum(len(set(x) & set(y)) for x, y in zip(a.tolist(), b.tolist(), strict=True))
        assert shared >= 0.98 * a.size, (budget, shared, a.size)


def test_a_ray_build_writes_the_same_codes_and_ids_as_in_process(tmp_path, demo_dataset, ray_engine, version_digests):
    with build_version(demo_dataset, tmp_path / "here", SETTINGS, show_progress=False) as here:
        with build_version(demo_dataset, tmp_path / "ray", SETTINGS, show_progress=False, engine=ray_engine) as on_ray:
            assert differing_files(here.path, on_ray.path, version_digests) == []


def test_an_in_memory_input_goes_through_the_object_store(tmp_path, demo_dataset, ray_engine, version_digests):
    dataset = Dataset(demo_dataset.ids[:700], np.array(demo_dataset.vectors[:700]), None)
    with build_version(dataset, tmp_path / "here", SETTINGS, show_progress=False) as here:
        with build_version(dataset, tmp_path / "ray", SETTINGS, show_progress=False, engine=ray_engine) as on_ray:
            assert differing_files(here.path, on_ray.path, version_digests) == []


def test_an_unreachable_cluster_is_an_input_error():
    from bench.server import free_port
    from vecdial.indexer.errors import InvalidInput
    from vecdial.indexer.scale.ray_engine import RayEngine
    from vecdial.indexer.scale.settings import RaySettings

    with pytest.raises(InvalidInput, match="cannot reach"):
        RayEngine(RaySettings(address=f"127.0.0.1:{free_port()}")).connect()


def test_a_reindex_on_ray_swaps_in_the_same_version_as_in_process(tmp_path, tiny_dataset, cluster):
    import vecdial

    db = vecdial.connect(tmp_path)
    for name in ("here", "ray"):
        db.create(name, tiny_dataset.vectors, ids=tiny_dataset.ids, show_progress=False)
    changes = {"partitions": 4, "batch_size": 64}
    from vecdial.indexer.jobs.reindex import start_reindex

    assert start_reindex(tmp_path, "here", changes).run().state == "succeeded"
    status = start_reindex(tmp_path, "ray", changes, ray=cluster.address).run()
    assert status.state == "succeeded", status.message
    assert_answers_alike(db.open("here"), db.open("ray"), tiny_dataset.vectors[:50])


def test_the_command_line_builds_and_reindexes_on_ray(tmp_path, tiny_dataset, cluster):
    import vecdial
    from vecdial.service.cli import main

    vectors = tmp_path / "tiny.npy"
    np.save(vectors, np.asarray(tiny_dataset.vectors))
    for name, extra in (("here", []), ("ray", ["--ray", cluster.address])):
        assert main(["--data-dir", str(tmp_path / "data"), "build", str(vectors), "-c", name, "--quiet", "--partitions", "4", *extra]) == 0
        assert main(["--data-dir", str(tmp_path / "data"), "reindex", "-c", name, "--quiet", "--partitions", "3", *extra]) == 0
    db = vecdial.connect(tmp_path / "data")
    assert_answers_alike(db.open("here"), db.open("ray"), tiny_dataset.vectors[:50])


def test_texts_given_alone_are_encoded_by_ray_actors_as_in_process(tmp_path, tiny_dataset, cluster):
    import vecdial
    from vecdial.models.encoder import encode_texts

    texts = list(tiny_dataset.texts[:48])
    collection = vecdial.connect(tmp_path).create("texts", texts=texts, show_progress=False, ray=cluster.address)
    hits = collection.search(encode_texts(texts[:5]), k=1)
    assert [row[0] for row in hits.ids] == [0, 1, 2, 3, 4]
