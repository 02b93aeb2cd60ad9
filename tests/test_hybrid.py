"""Hybrid search: a budget's hits fused with BM25 over the stored texts, in Python, over HTTP and
from the command line, on the shipped corpus and its judged queries.

Measured (2,032 docs, 1,000 judged queries, nDCG@10): dense (exact) 0.598, BM25 alone 0.461,
hybrid default (weighted z-score, dense 0.7 + lexical 0.3) 0.622, rrf 0.576.
"""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

import vecdial
from vecdial.indexer.eval.metrics import ndcg_at_k
from vecdial.service.app import create_app
from vecdial.service.cli import main
from vecdial.service.settings import Settings


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, demo_dataset):
    root = tmp_path_factory.mktemp("hybrid")
    db = vecdial.connect(root)
    db.create(
        "docs",
        np.asarray(demo_dataset.vectors),
        texts=demo_dataset.texts,
        ids=demo_dataset.ids,
        source_model=demo_dataset.source_model,
        show_progress=False,
    )
    db.create(
        "no-texts",
        np.asarray(demo_dataset.vectors[:500]),
        ids=demo_dataset.ids[:500],
        source_model=demo_dataset.source_model,
        show_progress=False,
    )
    return root


@pytest.fixture(scope="module")
def docs(data_dir):
    return vecdial.connect(data_dir).open("docs")


@pytest.fixture(scope="module")
def judged(demo_corpus, demo_vectors):
    """The 1,000 judged queries: their texts, the bundled model's vectors of them (cached: encoding
    them again for every search would cost most of this file's time) and their qrels."""
    return demo_corpus.query_texts, demo_vectors[1], [demo_corpus.qrels[q] for q in demo_corpus.query_ids]


def ndcg(docs, judged, budget: str = "exact", n: int | None = None, **kwargs) -> float:
    """nDCG@10 of a search of the first n judged queries, sent as their vectors with their texts."""
    texts, vectors, qrels = (part[:n] for part in judged)
    return ndcg_at_k(docs.search(vectors, 10, budget, texts=list(texts), **kwargs).id_lists(), qrels)


def test_the_default_fusion_ranks_better_than_either_signal_alone(docs, judged):
    dense = ndcg(docs, judged)
    lexical = ndcg(docs, judged, hybrid={"lexical": 1})
    fused = ndcg(docs, judged, hybrid={})
    assert fused >= max(dense, lexical) + 0.01
    assert lexical < dense  # the lexical signal alone is the weaker one here


def test_fusion_works_over_a_compressed_budget_and_explains_itself(docs, judged):
    texts, vectors, _ = judged
    hits = docs.search(vectors[:200], 10, "binary:rescore=5", hybrid="lexical=0.3,dense=0.7", texts=list(texts[:200]))
    stages = [stage.stage for stage in hits.explain.stages]
    assert stages == ["binary:bits=384", "rescore:dim=384", "hybrid:weighted(dense=0.7,lexical=0.3)"]
    assert ndcg(docs, judged, "binary:rescore=5", 200, hybrid="lexical=0.3,dense=0.7") >= ndcg(docs, judged, "binary:rescore=5", 200)


RARE_WORDS = ["byteswap", "tedious", "receipt", "unambiguous", "interruption", "nodevisitor"]  # each in one document


def test_a_rare_word_brings_its_document_to_the_top_more_often_than_dense_alone(docs):
    def found_in_top(**kwargs) -> int:
        hits = docs.search(RARE_WORDS, 3, "exact", with_text=True, **kwargs)
        return sum(any(word in (hit["text"] or "").lower() for hit in hits[q]) for q, word in enumerate(RARE_WORDS))

    fused = found_in_top(hybrid={"lexical": 0.5, "dense": 0.5})
    assert fused >= 5 and fused > found_in_top()


def test_deleted_and_filtered_out_items_never_come_back(tmp_path, demo_dataset):
    db = vecdial.connect(tmp_path)
    ids = list(demo_dataset.ids)
    payloads = [{"module": i.split(".")[0]} for i in ids]
    docs = db.create(
        "docs",
        np.asarray(demo_dataset.vectors),
        texts=demo_dataset.texts,
        ids=ids,
        source_model=demo_dataset.source_model,
        payloads=payloads,
        show_progress=False,
    )
    query = "read a file line by line"
    first = docs.search(query, 10, "exact", hybrid={"lexical": 1}).id_lists()[0]
    docs.delete(first[:3])
    after = docs.search(query, 10, "exact", hybrid={}).id_lists()[0]
    assert not set(first[:3]) & set(after)
    module = ids[0].split(".")[0]
    kept = docs.search(query, 10, "exact", hybrid={}, filter={"module": module}).id_lists()[0]
    assert kept and all(i.split(".")[0] == module for i in kept)


def test_items_written_since_the_build_take_part_with_their_dense_score(tmp_path, demo_dataset):
    docs = vecdial.connect(tmp_path).create(
        "docs",
        np.asarray(demo_dataset.vectors[:1500]),
        texts=demo_dataset.texts[:1500],
        ids=demo_dataset.ids[:1500],
        source_model=demo_dataset.source_model,
        show_progress=False,
    )
    docs.upsert(["written.later"], texts=[demo_dataset.texts[1600]])
    hits = docs.search(demo_dataset.texts[1600], 3, "exact", hybrid={})
    assert hits.id_lists()[0][0] == "written.later"
    assert hits.explain.segment_rows == 1


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"queries": None, "hybrid": {"lexical": 0.3}}, "needs the query as text"),
        ({"queries": "x y", "hybrid": {"lexical": -1}}, "lexical"),
        ({"queries": "x y", "hybrid": {"bm25": 1}}, "bm25"),
        ({"queries": "x y", "hybrid": {"lexical": 0, "dense": 0}}, "at least one signal"),
        ({"queries": "x y", "hybrid": "lexical=abc"}, "lexical"),
    ],
)
def test_a_bad_hybrid_declaration_is_invalid_input(docs, demo_dataset, kwargs, says):
    queries = kwargs.pop("queries")
    with pytest.raises(vecdial.InvalidInput, match=says):
        docs.search(demo_dataset.vectors[0] if queries is None else queries, 5, **kwargs)


def test_naming_one_signal_leaves_the_rest_of_one_to_the_others(docs, judged):
    texts, vectors, _ = judged
    hits = docs.search(vectors[:5], 10, "exact", hybrid={"lexical": 0.5, "method": "rrf"}, texts=list(texts[:5]))
    assert hits.explain.hybrid == {"method": "rrf", "weights": {"dense": 0.5, "lexical": 0.5}}
    bm25 = ndcg(docs, judged, hybrid={"lexical": 1})
    assert ndcg(docs, judged, hybrid={"lexical": 0.5, "method": "rrf"}) >= bm25 + 0.05  # measured 0.562 against BM25's 0.461


def test_explain_shows_the_weights_a_search_was_fused_with(docs):
    assert docs.search("parse a date", 5, hybrid={}).explain.hybrid == {"method": "weighted", "weights": {"dense": 0.7, "lexical": 0.3}}
    assert docs.search("parse a date", 5).explain.hybrid is None


def test_a_weight_above_one_is_invalid_input_saying_weights_are_shares(docs):
    with pytest.raises(vecdial.InvalidInput, match="1e\\+308 is not a share: a weight is from 0 to 1"):
        docs.search("json", 10, hybrid={"lexical": 1e308})
    with pytest.raises(vecdial.InvalidInput, match="shares of 1"):
        docs.search("json", 10, hybrid={"dense": 0.9, "lexical": 0.9})


def test_a_vector_query_told_that_an_unnamed_lexical_share_needs_text(docs, demo_dataset):
    with pytest.raises(vecdial.InvalidInput, match=r"lexical \(BM25\) the share its weights leave \(0\.3\)"):
        docs.search(demo_dataset.vectors[0], 5, hybrid={"dense": 0.7})


EXTREME = st.one_of(
    st.sampled_from([0.0, 5e-324, 1e-300, 0.5, 1.0, 1 + 1e-12, 1e308, float("inf"), float("nan"), -0.0, -1e-300]), st.floats()
)


@settings(deadline=None, max_examples=40)
@given(dense=EXTREME, lexical=EXTREME, method=st.sampled_from(["rrf", "weighted"]))
def test_any_weights_give_k_distinct_hits_with_finite_scores_or_invalid_input(docs, dense, lexical, method):
    try:
        hits = docs.search("read a json file", 10, "binary:rescore=10", hybrid={"dense": dense, "lexical": lexical, "method": method})
    except vecdial.InvalidInput:
        assert not (0 <= dense <= 1 and 0 <= lexical <= 1 and 0 < dense + lexical <= 1 + 1e-9)
        return
    ids = hits.id_lists()[0]
    assert len(ids) == 10 == len(set(ids)) and None not in ids
    assert np.isfinite(hits.scores).all() and (np.diff(hits.scores[0]) <= 0).all()


def test_a_collection_without_texts_says_it_cannot_fuse(data_dir):
    collection = vecdial.connect(data_dir).open("no-texts")
    with pytest.raises(vecdial.BudgetError, match="no lexical index"):
        collection.search("open a socket", 5, hybrid={})


def test_http_takes_hybrid_on_text_queries_and_refuses_it_on_vectors(data_dir, demo_dataset):
    with TestClient(create_app(Settings(data_dir=data_dir, log_level="warning"))) as client:
        url = "/v1/collections/docs/search"
        body = client.post(url, json={"text": "byteswap", "k": 3, "hybrid": {"lexical": 0.5, "dense": 0.5}}).json()
        assert body["explain"]["stages"][-1]["stage"] == "hybrid:weighted(dense=0.5,lexical=0.5)"
        batch = client.post(url + "/batch", json={"queries": [{"text": "byteswap"}, {"text": "parse a date"}], "k": 3, "hybrid": {}})
        assert batch.status_code == 200 and len(batch.json()["results"]) == 2
        refused = client.post(url, json={"vector": np.asarray(demo_dataset.vectors[0]).tolist(), "hybrid": {"lexical": 0.3}})
        assert refused.status_code == 422 and "as text" in refused.text
        bad = client.post(url, json={"text": "x", "hybrid": {"lexical": "a lot"}})
        assert bad.status_code == 422
        huge = client.post(url, json={"text": "json", "hybrid": {"dense": 1e308, "lexical": 1}})
        assert huge.status_code == 422 and "dense: 1e+308 is not a share" in huge.json()["message"]
        assert body["explain"]["hybrid"] == {"method": "weighted", "weights": {"dense": 0.5, "lexical": 0.5}}


def test_the_cli_fuses_with_hybrid(capsys, data_dir):
    code = main(["--data-dir", str(data_dir), "search", "-c", "docs", "--text", "byteswap", "-k", "3", "--hybrid", "default", "--json"])
    out = capsys.readouterr().out
    assert code == 0 and "hybrid:weighted(dense=0.7,lexical=0.3)" in out
