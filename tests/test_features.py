"""Readable, steerable sparse features end to end: a collection built with sparse codes and
texts from the shipped corpus labels its features, browses them, steers queries by them and
explains hits with them, the same in Python, over HTTP and from the command line.

The autoencoder is the small one of tests/indexer/features (768 units, 16 active), trained
by the build itself in about 10 s on one thread.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

pytest.importorskip("torch")
pytest.importorskip("sklearn")

import vecdial  # noqa: E402
from vecdial.indexer.features.steering import find_features  # noqa: E402
from vecdial.indexer.features.table import FILES  # noqa: E402
from vecdial.service.app import create_app  # noqa: E402
from vecdial.service.cli import main  # noqa: E402
from vecdial.service.settings import Settings  # noqa: E402

SMALL_SPARSE = {"sparse": {"max_active": 16, "hidden_mult": 2, "min_steps": 80}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, demo_dataset):
    root = tmp_path_factory.mktemp("features")
    db = vecdial.connect(root)
    vectors, source = np.asarray(demo_dataset.vectors), demo_dataset.source_model
    db.create(
        "docs", vectors, texts=demo_dataset.texts, ids=demo_dataset.ids, source_model=source, settings=SMALL_SPARSE, show_progress=False
    )
    db.create("plain", vectors[:300], texts=demo_dataset.texts[:300], ids=demo_dataset.ids[:300], source_model=source, show_progress=False)
    db.create("no-texts", vectors[:300], ids=demo_dataset.ids[:300], source_model=source, settings=SMALL_SPARSE, show_progress=False)
    return root


@pytest.fixture(scope="module")
def docs(data_dir) -> vecdial.Collection:
    return vecdial.connect(data_dir).open("docs")


@pytest.fixture(scope="module")
def version(docs):
    return docs._live.snapshot().version


@pytest.fixture(scope="module")
def table(version):
    return version.features().table


@pytest.fixture(scope="module")
def active_ids(version):
    """unit -> the set of ids of the version's rows where it is active (from the postings)."""
    index = version.store("sparse").index

    def of(unit: int) -> set:
        return set(version.id_list(np.asarray(index.docs[index.indptr[unit] : index.indptr[unit + 1]], dtype=np.int64)))

    return of


@pytest.fixture(scope="module")
def client(data_dir):
    with TestClient(create_app(Settings(data_dir=data_dir, log_level="warning"))) as test_client:
        yield test_client


# --- build --------------------------------------------------------------------------


def test_a_build_with_sparse_codes_and_texts_stores_a_checksummed_feature_table(version):
    assert version.manifest.codecs["sparse"]["features"] is True
    assert set(FILES) <= set(version.manifest.files)


def test_every_live_feature_has_a_label_and_labels_are_mostly_distinct(table):
    live = table.live_units.tolist()
    assert len(live) > 0.5 * table.units
    assert all(table.label(u) for u in live)
    assert table.distinct_label_share() >= 0.8


# --- browsing -----------------------------------------------------------------------


def test_browsing_lists_the_most_frequent_features_with_their_top_documents(docs, table, active_ids):
    listed = docs.features(limit=20)
    assert len(listed) == 20
    frequencies = [f["frequency"] for f in listed]
    assert frequencies == sorted(frequencies, reverse=True)
    for feature in listed:
        assert feature["label"] == table.label(feature["id"]) and feature["documents"]
        assert all(doc["text"] for doc in feature["documents"])
        assert {doc["id"] for doc in feature["documents"]} <= active_ids(feature["id"])


def test_a_browse_query_finds_features_whose_label_holds_the_word(docs):
    listed = docs.features("json", limit=5)
    assert listed and all("json" in feature["terms"] for feature in listed)
    assert docs.features("zzqqxx") == []
    assert [f["id"] for f in docs.features(str(listed[0]["id"]))] == [listed[0]["id"]]


# --- steering -----------------------------------------------------------------------


def test_steering_toward_a_feature_raises_the_share_of_hits_with_it(docs, table, demo_vectors, active_ids):
    _, queries = demo_vectors
    live = table.live_units
    frequency = np.asarray(table.frequency)[live]
    units = np.random.default_rng(0).choice(live[(frequency > 0.005) & (frequency < 0.05)], 8, replace=False).tolist()
    share = {0.0: [], 0.5: [], 1.0: []}
    for unit in units:
        active = active_ids(unit)
        for weight in share:
            found = docs.search(queries[:200], 10, "exact", steer={str(unit): weight}).id_lists()
            share[weight].append(np.mean([sum(i in active for i in ids) / len(ids) for ids in found]))
    mean = {weight: float(np.mean(values)) for weight, values in share.items()}
    assert mean[0.5] > 2 * mean[0.0] and mean[1.0] > mean[0.5] and mean[1.0] >= 0.2, mean


def test_a_stronger_steer_replaces_more_of_the_unsteered_top_10(docs, table, demo_vectors):
    _, queries = demo_vectors
    live = table.live_units
    frequency = np.asarray(table.frequency)[live]
    units = np.random.default_rng(0).choice(live[(frequency > 0.005) & (frequency < 0.05)], 8, replace=False).tolist()
    plain = docs.search(queries[:200], 10, "exact").id_lists()
    kept = {}
    for weight in (0.2, 0.5, 1.0):
        overlaps = []
        for unit in units:
            steered = docs.search(queries[:200], 10, "exact", steer={str(unit): weight}).id_lists()
            overlaps.extend(len(set(a) & set(b)) / 10 for a, b in zip(steered, plain))
        kept[weight] = float(np.mean(overlaps))
    assert kept[0.2] > kept[0.5] > kept[1.0] and kept[0.5] >= 0.6 and kept[1.0] <= 0.7, kept  # 768 units: 0.90, 0.74, 0.40


def test_explain_records_each_steer_key_with_the_feature_it_resolved_to(docs, table):
    unit = int(find_features(table, "json", limit=1)[0])
    other = int(table.live_units[0])
    hits = docs.search("open a file", 10, "exact", steer={"json": 0.5, str(other): -0.2})
    assert hits.explain.steer == [
        {"key": "json", "feature": unit, "label": table.label(unit), "weight": 0.5},
        {"key": str(other), "feature": other, "label": table.label(other), "weight": -0.2},
    ]
    assert "json" in hits.explain.steer[0]["label"]
    assert docs.search("open a file", 10, "exact").explain.steer is None


def test_weight_zero_changes_nothing(docs, table, demo_vectors):
    _, queries = demo_vectors
    plain = docs.search(queries[:50], 10, "binary:rescore=5")
    steered = docs.search(queries[:50], 10, "binary:rescore=5", steer={str(int(table.live_units[0])): 0.0})
    assert np.array_equal(plain.ids, steered.ids) and np.array_equal(plain.scores, steered.scores)


def test_a_label_word_steers_like_the_id_of_its_best_feature(docs, table):
    unit = int(find_features(table, "json", limit=1)[0])
    by_word = docs.search("open a file", 10, "exact", steer={"json": 0.5})
    by_id = docs.search("open a file", 10, "exact", steer={str(unit): 0.5})
    assert np.array_equal(by_word.ids, by_id.ids) and not np.array_equal(by_id.ids, docs.search("open a file", 10, "exact").ids)


@pytest.mark.parametrize(
    "steer, says",
    [
        ({"999999": 0.5}, "no feature 999999"),
        ({"1": "a lot"}, "not a number"),
        ({"1": 3}, "-2..2"),
        ({"1": 1e308}, "-2..2"),
        ({"1": float("nan")}, "not a number"),
        ({"zzqqxx": 0.5}, "no feature's label matches"),
        ([1, 2], "an object"),
    ],
)
def test_a_bad_steer_is_invalid_input(docs, steer, says):
    with pytest.raises(vecdial.InvalidInput, match=says):
        docs.search("open a file", 5, steer=steer)


# --- explaining hits ----------------------------------------------------------------


def test_explain_features_is_off_by_default(docs):
    assert "features" not in docs.search("parse a date string", 3)[0][0]


def test_explain_features_lists_only_features_active_in_both_the_query_and_the_hit(docs, version, active_ids):
    query = "parse a date string"
    hits = docs.search(query, 10, "sparse:active=16,rescore=5", explain_features=True)
    units, _ = version.store("sparse").encode(docs.encode([query]))
    in_query = set(units[0].tolist())
    listed = [hit["features"] for hit in hits[0]]
    assert any(listed) and all(len(features) <= 5 for features in listed)
    for hit, features in zip(hits[0], listed):
        contributions = [f["contribution"] for f in features]
        assert contributions == sorted(contributions, reverse=True) and all(c > 0 for c in contributions)
        for feature in features:
            assert feature["feature"] in in_query and hit["id"] in active_ids(feature["feature"]) and feature["label"]


# --- HTTP and the command line ------------------------------------------------------


def test_http_and_the_cli_list_the_same_features_as_python(docs, client, capsys, data_dir):
    expected = docs.features("json", limit=5)
    response = client.get("/v1/collections/docs/features", params={"q": "json", "limit": 5})
    assert response.status_code == 200 and response.json()["features"] == expected
    assert main(["--data-dir", str(data_dir), "features", "-c", "docs", "--query", "json", "--limit", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["features"] == expected


def test_http_steers_and_explains_as_python_does(docs, client):
    body = {"text": "open a file", "k": 5, "steer": {"json": 0.5}, "explain_features": True}
    response = client.post("/v1/collections/docs/search", json=body)
    expected = docs.search("open a file", 5, steer={"json": 0.5}, explain_features=True)
    assert response.status_code == 200
    assert [hit["id"] for hit in response.json()["hits"]] == expected.id_lists()[0]
    assert [hit["features"] for hit in response.json()["hits"]] == [hit["features"] for hit in expected[0]]
    assert response.json()["explain"]["steer"] == expected.explain.steer
    batch = client.post("/v1/collections/docs/search/batch", json={"queries": [{"text": "open a file"}], "k": 5, "steer": {"json": 0.5}})
    assert [hit["id"] for hit in batch.json()["results"][0]] == expected.id_lists()[0]


def test_the_remote_client_browses_steers_and_explains_as_python_does(docs, data_dir, api_server):
    import shutil

    url, served = api_server
    shutil.copytree(data_dir / "docs", served / "docs")
    with vecdial.connect(url, api_key="remote-suite-key") as db:
        remote = db.open("docs")
        try:
            assert remote.features("json", limit=5) == docs.features("json", limit=5)
            vectors = docs.encode(["open a file", "parse json"])
            for queries in ("open a file", vectors[0], vectors):  # a text, one vector, a batch
                expected = docs.search(queries, 5, steer={"json": 0.5}, explain_features=True)
                hits = remote.search(queries, 5, steer={"json": 0.5}, explain_features=True)
                assert hits.id_lists() == expected.id_lists() and hits.features == expected.features
        finally:
            db.drop("docs")


def test_the_cli_steers_and_explains(capsys, data_dir):
    args = ["--data-dir", str(data_dir), "search", "-c", "docs", "--text", "open a file", "-k", "3", "--json"]
    assert main([*args, "--steer", '{"json": 0.5}', "--explain-features"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert len(hits) == 3 and all("features" in hit for hit in hits)


@pytest.mark.parametrize("steer", [{"999999": 0.5}, {"1": "x"}, {"1": 3}, {"zzqqxx": 1}])
def test_a_bad_steer_is_a_422_and_a_cli_error(client, capsys, data_dir, steer):
    response = client.post("/v1/collections/docs/search", json={"text": "open a file", "steer": steer})
    assert response.status_code == 422 and response.json()["message"].startswith("steer")
    assert main(["--data-dir", str(data_dir), "search", "-c", "docs", "--text", "open a file", "--steer", json.dumps(steer)]) == 2
    assert "steer" in capsys.readouterr().err


def test_a_collection_without_sparse_codes_says_to_build_with_sparse(data_dir, client):
    plain = vecdial.connect(data_dir).open("plain")
    for call in (
        lambda: plain.search("open a file", 5, steer={"1": 0.5}),
        lambda: plain.search("x y", 5, explain_features=True),
        plain.features,
    ):
        with pytest.raises(vecdial.BudgetError, match="--sparse"):
            call()
    for response in (
        client.get("/v1/collections/plain/features"),
        client.post("/v1/collections/plain/search", json={"text": "open a file", "steer": {"1": 0.5}}),
        client.post("/v1/collections/plain/search", json={"text": "open a file", "explain_features": True}),
    ):
        assert response.status_code == 422 and "--sparse" in response.json()["message"]


def test_without_texts_features_steer_by_id_and_explain_unlabelled(data_dir, demo_dataset):
    collection = vecdial.connect(data_dir).open("no-texts")
    query = np.asarray(demo_dataset.vectors[0])
    assert collection._live.snapshot().version.manifest.codecs["sparse"].get("features") is None
    assert collection.search(query, 5, steer={"3": 0.5}).found[0] == 5
    with pytest.raises(vecdial.InvalidInput, match="steer by feature id"):
        collection.search(query, 5, steer={"json": 0.5})
    features = collection.search(query, 3, explain_features=True)[0][0]["features"]
    assert features and all(f["label"] == "" for f in features)


def test_items_written_since_the_build_are_explained_from_their_codes(docs, demo_dataset):
    """Runs last: it leaves a row in the write segment."""
    text = demo_dataset.texts[7]
    docs.upsert(["written.later"], texts=[text])
    hits = {hit["id"]: hit for hit in docs.search(text, 3, explain_features=True)[0]}
    written, stored = hits["written.later"], hits[demo_dataset.ids[7]]  # the same text, so the same code
    assert written["features"]
    assert [f["feature"] for f in written["features"]] == [f["feature"] for f in stored["features"]]


def test_hybrid_fuses_the_learned_sparse_codes_as_a_third_signal(docs, demo_corpus):
    queries = demo_corpus.query_texts[:200]
    qrels = [demo_corpus.qrels[q] for q in demo_corpus.query_ids[:200]]
    from vecdial.indexer.eval.metrics import ndcg_at_k

    dense = docs.search(queries, 10, "exact")
    fused = docs.search(queries, 10, "exact", hybrid={"dense": 0.7, "lexical": 0.2, "sparse": 0.1})
    assert fused.explain.stages[-1].stage == "hybrid:weighted(dense=0.7,lexical=0.2,sparse=0.1)"
    assert all(len(hits) == 10 for hits in fused.id_lists())
    assert fused.id_lists() != dense.id_lists()
    assert ndcg_at_k(fused.id_lists(), qrels) >= ndcg_at_k(dense.id_lists(), qrels) - 0.01


def test_a_sparse_weight_on_a_collection_without_sparse_codes_says_to_build_with_them(data_dir):
    with pytest.raises(vecdial.BudgetError, match="sparse codes"):
        vecdial.connect(data_dir).open("plain").search("open a file", 5, hybrid={"sparse": 0.5, "dense": 0.5})


def test_a_selective_filter_holds_for_every_hybrid_signal_and_for_rows_written_since(tmp_path, demo_dataset):
    n = 600
    ids = list(demo_dataset.ids[:n])
    payloads = [{"pick": "yes" if i % 10 == 0 else "no"} for i in range(n)]  # 60 rows: scored as rows
    docs = vecdial.connect(tmp_path).create(
        "docs",
        np.asarray(demo_dataset.vectors[:n]),
        texts=demo_dataset.texts[:n],
        ids=ids,
        source_model=demo_dataset.source_model,
        payloads=payloads,
        settings=SMALL_SPARSE,
        show_progress=False,
    )
    query = demo_dataset.texts[700]
    docs.upsert(["written.later"], texts=[query], payloads=[{"pick": "no"}])  # the query's own text: first for every signal
    for spec in ({"dense": 0.5, "lexical": 0.3, "sparse": 0.2}, {"sparse": 1}, {"lexical": 1, "method": "rrf"}):
        hits = docs.search(query, 10, "exact", hybrid=spec, filter={"pick": "yes"})
        assert hits.explain.filter["strategy"] == "rows"
        found = hits.id_lists()[0]
        assert len(found) == 10 and "written.later" not in found, spec
        assert all(ids.index(i) % 10 == 0 for i in found), spec
