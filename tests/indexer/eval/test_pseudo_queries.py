"""Pseudo-queries and the default calibration: real-query-like texts cut from stored texts,
traffic taking over once it exists, documents corrected for the query gap."""

import numpy as np
import pytest

import vecdial
from vecdial.indexer.eval.pseudo_queries import SPAN_WORDS, pseudo_query_text, pseudo_query_texts, sample_pseudo_queries
from vecdial.indexer.plan.calibration import DOCUMENTS_MISS_FACTOR, PSEUDO_MISS_FACTOR

DOC = "json.loads\nDeserialize s (a str, bytes or bytearray instance containing a JSON document) to a Python object. Other keywords follow."


def test_a_title_pseudo_query_is_the_first_line():
    assert pseudo_query_text(DOC, "title", np.random.default_rng(0)) == "json.loads"


def test_a_lemma_before_a_colon_is_a_title():
    assert pseudo_query_text("dog: a member of the genus Canis", "title", np.random.default_rng(0)) == "dog"


def test_a_sentence_pseudo_query_is_the_first_sentence_after_the_title():
    text = pseudo_query_text(DOC, "sentence", np.random.default_rng(0))
    assert text == "Deserialize s (a str, bytes or bytearray instance containing a JSON document) to a Python object."


def test_a_span_pseudo_query_is_a_few_consecutive_words_of_the_body():
    text = pseudo_query_text(DOC, "span", np.random.default_rng(3))
    assert len(text.split()) == SPAN_WORDS and text in DOC.split("\n", 1)[1] and "json.loads" not in text


def test_pseudo_queries_take_the_kinds_in_turn():
    texts = pseudo_query_texts([DOC, DOC, DOC, DOC])
    assert texts[0] == texts[3] == "json.loads" and texts[1].startswith("Deserialize") and len(texts[2].split()) == SPAN_WORDS


def test_pseudo_queries_are_encoded_texts_of_the_sampled_rows(live):
    version = live.snapshot().version
    rows, queries, texts = sample_pseudo_queries(version, 9)
    assert queries.shape == (9, version.dim) and np.allclose(np.linalg.norm(queries, axis=1), 1, atol=1e-5)
    assert all(text.split()[0] in source for text, source in zip(texts, version.texts(rows)))


@pytest.fixture
def tiny(tiny_data_dir):
    return vecdial.connect(tiny_data_dir).open("tiny")


def test_the_default_sweep_of_a_text_collection_calibrates_on_pseudo_queries(tiny, outside_vectors):
    points = tiny.sweep(n=30, budgets=["binary:rescore=5", "exact"], show_progress=False)
    assert tiny.sweep_points()[0].startswith("pseudo-queries (30 titles, first sentences and spans")
    assert {p.miss_factor for p in points} == {PSEUDO_MISS_FACTOR}
    assert dict((p.budget, p.recall_at_10) for p in points)["exact"] == 1.0  # the source document is left out of both answers
    explain = tiny.search(outside_vectors[0], 10, "auto:target_recall=0.5").explain
    assert "expected on real queries" in explain.calibration and "pseudo-queries" in explain.calibration


def test_documents_as_queries_carry_the_documents_correction(tiny):
    points = tiny.sweep("documents", n=30, budgets=["binary:rescore=5"], show_progress=False)
    assert points[0].miss_factor == DOCUMENTS_MISS_FACTOR and points[0].trusted_recall < points[0].recall_lower


def test_a_traffic_sample_takes_over_the_default_calibration(tiny, demo_dataset):
    tiny.keep_queries(np.asarray(demo_dataset.vectors[1000:1100]))
    points = tiny.sweep(n=30, budgets=["binary:rescore=5"], show_progress=False)
    assert tiny.sweep_points()[0].startswith("traffic (30 sampled real queries)") and points[0].miss_factor == 1.0


def test_too_small_a_traffic_sample_leaves_the_default_on_pseudo_queries(tiny, demo_dataset):
    tiny.keep_queries(np.asarray(demo_dataset.vectors[1000:1050]))
    tiny.sweep(n=30, budgets=["binary:rescore=5"], show_progress=False)
    assert tiny.sweep_points()[0].startswith("pseudo-queries")


def test_pseudo_queries_need_texts_from_the_bundled_model(tmp_path, tiny_dataset):
    col = vecdial.connect(tmp_path).create("bare", vectors=tiny_dataset.vectors, ids=tiny_dataset.ids, show_progress=False)
    with pytest.raises(vecdial.InvalidInput, match="queries='pseudo' needs a collection built with texts and the bundled model"):
        col.sweep("pseudo", n=30, show_progress=False)
    col.sweep(n=30, budgets=["binary:rescore=5"], show_progress=False)
    assert col.sweep_points()[0].startswith("documents (30 stored vectors, misses x12")


def test_pseudo_queries_are_cut_only_from_rows_with_a_text(tmp_path, tiny_dataset):
    from vecdial.models.encoder import MODEL_NAME

    texts = [text if i % 2 == 0 else None for i, text in enumerate(tiny_dataset.texts)]
    col = vecdial.connect(tmp_path).create(
        "half", vectors=tiny_dataset.vectors, ids=tiny_dataset.ids, texts=texts, source_model=MODEL_NAME, show_progress=False
    )
    version = col._live.snapshot().version
    rows, queries, _ = sample_pseudo_queries(version, 50)
    assert len(rows) == len(queries) == 50 and all(version.texts(rows))
