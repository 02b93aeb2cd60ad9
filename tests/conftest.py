"""Shared fixtures: the shipped demo corpus, its real MiniLM embeddings, built collections."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

import vecdial
from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.io.readers import Dataset
from vecdial.indexer.jobs.create import build_collection
from vecdial.indexer.modes.settings import BuildSettings

# CI (CI=true) runs every property on the same examples: a red run is a regression that
# reproduces, not a new draw, and no wall-clock deadline or slow-data check trips on a
# loaded machine. Locally hypothesis keeps exploring new examples (its default profile);
# HYPOTHESIS_PROFILE=ci reproduces CI's examples.
hypothesis_settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "default"))


@pytest.fixture(scope="session")
def demo_corpus():
    from vecdial.indexer.io.demo import load_demo_corpus

    return load_demo_corpus()


@pytest.fixture(scope="session")
def demo_vectors() -> tuple[np.ndarray, np.ndarray]:
    """(doc vectors, query vectors) made by the bundled model, cached after the first run."""
    from vecdial.indexer.io.demo import demo_embeddings

    return demo_embeddings(show_progress=False)


@pytest.fixture(scope="session")
def demo_dataset(demo_corpus, demo_vectors) -> Dataset:
    docs, _ = demo_vectors
    return Dataset(
        np.asarray(demo_corpus.doc_ids), docs, list(demo_corpus.doc_texts), source_model="sentence-transformers/all-MiniLM-L6-v2"
    )


def handle_of(collection: Collection) -> vecdial.Collection:
    """The live front-door handle on a collection built by a fixture."""
    return vecdial.connect(collection.path.parent).open(collection.name)


@pytest.fixture(scope="session")
def handle():
    """collection (on disk) -> its `vecdial.Collection` handle."""
    return handle_of


def _build(root: Path, name: str, dataset: Dataset, **settings) -> Collection:
    collection = Collection(root, name)
    build_collection(collection, dataset, BuildSettings(**settings), show_progress=False)
    return collection


@pytest.fixture(scope="session")
def demo_collection(tmp_path_factory, demo_dataset) -> Collection:
    """The demo corpus built with the default settings (PCA rotation)."""
    return _build(tmp_path_factory.mktemp("data"), "demo", demo_dataset)


@pytest.fixture(scope="session")
def plain_demo_collection(tmp_path_factory, demo_dataset) -> Collection:
    """The demo corpus without rotation: plain Matryoshka truncation."""
    return _build(tmp_path_factory.mktemp("data"), "demo-plain", demo_dataset, rotation="identity")


@pytest.fixture
def tiny_dataset(demo_dataset) -> Dataset:
    """300 real demo vectors with string ids: enough to build in milliseconds."""
    return Dataset(demo_dataset.ids[:300], np.asarray(demo_dataset.vectors[:300]), demo_dataset.texts[:300])


@pytest.fixture(scope="session")
def _tiny_template(tmp_path_factory, demo_dataset) -> Path:
    """A data dir with collection 'tiny' (the tiny_dataset vectors, texts, the bundled model
    named as their source), built once per session; tests get copies."""
    from vecdial.models.encoder import MODEL_NAME

    root = tmp_path_factory.mktemp("tiny-template")
    dataset = Dataset(demo_dataset.ids[:300], np.asarray(demo_dataset.vectors[:300]), demo_dataset.texts[:300], source_model=MODEL_NAME)
    _build(root, "tiny", dataset)
    return root


@pytest.fixture(scope="session")
def _tiny_sharded_template(tmp_path_factory, _tiny_template) -> Path:
    """The 'tiny' template split into 2 shards by `Database.shard` (built once per session)."""
    import shutil

    root = Path(shutil.copytree(_tiny_template, tmp_path_factory.mktemp("tiny-sharded") / "data"))
    vecdial.connect(root).shard("tiny", 2, show_progress=False)
    return root


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `also_sharded` run twice: over 'tiny' whole and over 'tiny' in 2 shards."""
    if metafunc.definition.get_closest_marker("whole_only"):  # about one collection's own files or counts
        return
    if metafunc.definition.get_closest_marker("also_sharded") and "tiny_data_dir" in metafunc.fixturenames:
        metafunc.parametrize("tiny_layout", ["whole", "sharded"], indirect=True)


@pytest.fixture
def tiny_layout(request) -> str:
    """'whole', or 'sharded' for tests marked `also_sharded` (their second run: 2 shards)."""
    return getattr(request, "param", "whole")


@pytest.fixture
def version_of(tiny_layout):
    """version_of(n): the version 'tiny' reports after n builds: 'v00000n', or in 2 shards 'v00000n+v00000n'."""
    return lambda n: "+".join([f"v{n:06d}"] * (2 if tiny_layout == "sharded" else 1))


@pytest.fixture
def tiny_data_dir(tmp_path, request, tiny_layout) -> Path:
    """A private data dir holding collection 'tiny': write to it, reindex it, drop it freely.
    In the 'sharded' run of an `also_sharded` test, 'tiny' is held as 2 shards."""
    import shutil

    template = request.getfixturevalue("_tiny_sharded_template" if tiny_layout == "sharded" else "_tiny_template")
    return Path(shutil.copytree(template, tmp_path / "data"))


@pytest.fixture
def live(tiny_data_dir):
    """The tiny collection opened for writes and searches."""
    from vecdial.indexer.live.collection import LiveCollection

    return LiveCollection.open(tiny_data_dir, "tiny")


@pytest.fixture(scope="module")
def outside_vectors(demo_dataset) -> np.ndarray:
    """Real demo vectors that are not in the tiny collection."""
    return np.asarray(demo_dataset.vectors[1000:1010])


# The public Python API, run twice: in this process, and through `vecdial.connect(url)` against
# one real `vecdial serve` per session (vecdial/remote.py). Tests take `connect` instead of
# calling `vecdial.connect(dir)`, so any difference between the two fails a test.

API_KEY = "remote-suite-key"


@pytest.fixture(scope="session")
def api_server(tmp_path_factory):
    """(url, data dir) of a `vecdial serve` on a free loopback port, with an API key, for the session."""
    from bench.server import served

    data_dir = tmp_path_factory.mktemp("served")
    # The first text query loads the model: slow on a busy box.
    env = {"VECDIAL_API_KEY": API_KEY, "VECDIAL_THREADS": "4", "VECDIAL_REQUEST_TIMEOUT_S": "300"}
    with served(data_dir, env=env, log=data_dir.parent / "served.log", ready_within=90) as (url, _):
        yield url, data_dir


@pytest.fixture(params=["embedded", "remote"])
def connect(request):
    """connect(data_dir) -> a `vecdial.Database` over that directory's collections: the directory
    itself (embedded), or the session's server after copying them into its data dir (remote);
    connecting twice is two clients. After the test every collection on the server is dropped."""
    import shutil

    from vecdial.indexer.disk.collection import list_collections

    if request.param == "embedded":
        yield vecdial.connect
        return
    url, served = request.getfixturevalue("api_server")
    copied: set[Path] = set()
    clients = []

    def remote(data_dir) -> vecdial.Database:
        data_dir = Path(data_dir)
        if data_dir not in copied and data_dir.is_dir():
            for name in list_collections(data_dir):
                shutil.copytree(data_dir / name, served / name)
        copied.add(data_dir)
        clients.append(vecdial.connect(url, api_key=API_KEY, timeout=300))  # the first text query loads the model there
        return clients[-1]

    yield remote
    with vecdial.connect(url, api_key=API_KEY) as admin:
        for name in admin.list():
            admin.drop(name)
    for client in clients:
        client.close()


def assert_same_knn(ref_ids: np.ndarray, ref_scores: np.ndarray, ids: np.ndarray, scores: np.ndarray, atol: float = 1e-5) -> None:
    """Two (nq, k) results agree modulo ties, as FAISS's check_ref_knn_with_draws: equal scores
    (within atol), and the same ids wherever the reference's score is clearly above its k-th;
    among hits tied (within atol) with the k-th, which of the tied ids made the cut is free."""
    np.testing.assert_allclose(scores, ref_scores, atol=atol, rtol=0)
    for q in range(len(ref_ids)):
        finite = np.isfinite(ref_scores[q])
        boundary = ref_scores[q][finite][-1] if finite.any() else -np.inf
        above = ref_scores[q] > boundary + 2 * atol
        assert set(np.asarray(ids[q])[above].tolist()) == set(np.asarray(ref_ids[q])[above].tolist()), (
            f"query {q}: a hit above the k-th differs"
        )
        assert len(set(np.asarray(ids[q])[finite].tolist())) == int(finite.sum()), f"query {q}: a hit is listed twice"


@pytest.fixture(scope="session")
def same_knn():
    """assert_same_knn(ref_ids, ref_scores, ids, scores, atol=1e-5): results equal modulo ties at the k boundary."""
    return assert_same_knn


def registered_budgets(collection, mode: str, which: str = "warm") -> list[str]:
    """`mode`'s own budgets on a collection (a built `Collection` or a `vecdial.Collection`), taken
    from the mode registry: which="warm" (one per kernel it runs) or "sweep" (its sweep points).
    Tests parametrized over `MODES` call this, so a mode is covered the day it is registered;
    a mode the collection was built without is skipped, saying so."""
    from vecdial.indexer.modes import MODES

    version = collection._live.snapshot().version if hasattr(collection, "_live") else collection.open()
    budgets = MODES[mode].warm_budgets(version) if which == "warm" else MODES[mode].sweep_budgets(version)
    if not budgets:
        pytest.skip(f"this collection was built without {mode} codes")
    return budgets


@pytest.fixture(scope="session")
def mode_budgets():
    """registered_budgets(collection, mode, which="warm"|"sweep"): a registered mode's budgets."""
    return registered_budgets
