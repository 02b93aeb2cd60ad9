"""Readable, steerable sparse features on a sparse autoencoder trained on the demo corpus's
real MiniLM embeddings: labels name units, top documents fire them, steering moves hits."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from vecdial.indexer.features.explain import query_code, shared_features  # noqa: E402
from vecdial.indexer.features.labels import class_tfidf, feature_table  # noqa: E402
from vecdial.indexer.features.steering import (  # noqa: E402
    find_features,
    load_decoder,
    steer,
    steering_weights,
)
from vecdial.indexer.features.table import (  # noqa: E402
    FeatureTable,
    codes_from_postings,
    codes_from_topk,
    hit_codes_from_postings,
)
from vecdial.indexer.stores.sparse import build_postings  # noqa: E402

ACTIVE = 16


@pytest.fixture(scope="module")
def sae(demo_vectors):
    """A short training on all 2,032 demo documents (768 units, 16 active): ~7 s on one thread."""
    from vecdial.models.train_sparse import TrainConfig, train_sparse_autoencoder

    docs, _ = demo_vectors
    config = TrainConfig(
        k=ACTIVE,
        k_multi=4 * ACTIVE,
        nested_ks=(8,),
        hidden_mult=2,
        batch_size=256,
        max_epochs=40,
        patience=100,
        seed=0,
        threads=1,
        time_limit_s=60,
    )
    model, _ = train_sparse_autoencoder(np.ascontiguousarray(docs), config=config, show_progress=False)
    return model


@pytest.fixture(scope="module")
def codes(sae, demo_vectors) -> sp.csr_matrix:
    indices, values = sae.encode_topk(demo_vectors[0], ACTIVE, threads=1)
    return codes_from_topk(indices, values, sae.hidden)


@pytest.fixture(scope="module")
def table(codes, demo_corpus) -> FeatureTable:
    return feature_table(codes, demo_corpus.doc_texts)


@pytest.fixture(scope="module")
def decoder(sae, tmp_path_factory) -> np.ndarray:
    """The decoder read back from the weights file a version stores, with numpy alone."""
    directory = tmp_path_factory.mktemp("sae")
    sae.save(directory)
    return load_decoder(directory)


# --- labels ---------------------------------------------------------------------


def test_every_live_unit_has_a_label_of_three_to_five_terms(table):
    live = table.live_units
    assert len(live) > 0.5 * table.units
    assert all(3 <= len(table.terms[u]) <= 5 for u in live.tolist())
    assert all(table.label(u) for u in live.tolist())


def test_labels_are_mostly_distinct(table):
    assert table.distinct_label_share() >= 0.8


def test_dead_units_have_no_label_and_no_documents(codes, demo_corpus):
    """Two units no row fires: marked dead, unlabelled, without top rows."""
    wider = sp.hstack([codes, sp.csr_matrix((codes.shape[0], 2), dtype=np.float32)]).tocsr()
    table = feature_table(wider, demo_corpus.doc_texts)
    assert table.dead[-2:].all() and table.terms[-1] == [] and (table.top_rows[-2:] == -1).all()


def test_a_units_top_documents_have_it_active_best_first(table, codes):
    dense = codes.toarray()
    for unit in table.live_units.tolist():
        rows, activations = table.top_documents(unit)
        assert len(rows) == min(10, int((dense[:, unit] > 0).sum()))
        assert (dense[rows, unit] == activations).all() and (activations > 0).all()
        assert (np.diff(activations) <= 0).all()
        assert activations[0] == dense[:, unit].max()


def test_frequency_is_the_share_of_rows_where_a_unit_is_active(table, codes):
    np.testing.assert_allclose(table.frequency, (codes.toarray() > 0).mean(axis=0), rtol=1e-6)


def test_a_label_names_words_its_top_documents_share(table, demo_corpus):
    """The first term of a label occurs in at least two of the unit's top documents, for most units."""
    shared = 0
    live = table.live_units.tolist()
    for unit in live:
        rows, _ = table.top_documents(unit)
        term = table.terms[unit][0]
        shared += sum(term in demo_corpus.doc_texts[r].lower() for r in rows.tolist()) >= min(2, len(rows))
    assert shared / len(live) >= 0.9


def test_class_tfidf_favours_terms_one_class_has_to_itself():
    counts = sp.csr_matrix(np.array([[3, 1, 0], [0, 1, 3]], dtype=np.float64))  # term 1 in both classes
    scores = class_tfidf(counts).toarray()
    assert scores[0, 0] > scores[0, 1] and scores[1, 2] > scores[1, 1] and scores[0, 2] == 0


def test_the_table_round_trips_through_its_files(table, tmp_path):
    names = table.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    back = FeatureTable.load(tmp_path)
    np.testing.assert_array_equal(back.top_rows, table.top_rows)
    np.testing.assert_array_equal(back.top_activations, table.top_activations)
    np.testing.assert_array_equal(back.frequency, table.frequency)
    assert back.terms == table.terms and back.labels == table.labels
    assert sum((tmp_path / n).stat().st_size for n in names) < 200_000


def test_codes_read_back_from_a_versions_postings_equal_the_encoded_codes(sae, codes, demo_vectors):
    indices, values = sae.encode_topk(demo_vectors[0][:300], ACTIVE, threads=1)
    arrays = build_postings(indices, values, sae.hidden)
    back = codes_from_postings(arrays["sparse_indptr.npy"], arrays["sparse_docs.npy"], arrays["sparse_values.npy"], 300)
    assert (back != codes[:300]).nnz == 0


# --- explain ----------------------------------------------------------------------


def test_shared_features_lists_only_units_active_in_both(sae, codes, table, demo_vectors):
    docs, queries = demo_vectors
    q_units, q_weights = sae.encode_topk(queries[:20], ACTIVE, threads=1)
    hits = np.argsort(-(queries[:20] @ docs.T), axis=1)[:, :10]
    for units, weights, rows in zip(q_units, q_weights, hits):
        query = query_code(units, weights, sae.hidden)
        listed = shared_features(query, codes[rows], table, top=5)
        q_active = set(units[weights > 0].tolist())
        for row, features in zip(rows.tolist(), listed):
            h_active = set(codes[row].indices[codes[row].data > 0].tolist())
            assert {f.unit for f in features} <= q_active & h_active
            assert len(features) == min(5, len(q_active & h_active))
            contributions = [f.contribution for f in features]
            assert contributions == sorted(contributions, reverse=True) and all(c > 0 for c in contributions)
            assert all(f.label == table.label(f.unit) for f in features)


def test_hit_codes_read_from_postings_give_the_same_shared_features(sae, codes, table, demo_vectors):
    docs, queries = demo_vectors
    indices, values = sae.encode_topk(docs, ACTIVE, threads=1)
    arrays = build_postings(indices, values, sae.hidden)
    q_units, q_weights = sae.encode_topk(queries[:1], ACTIVE, threads=1)
    rows = np.argsort(-(queries[0] @ docs.T))[:10]
    from_postings = hit_codes_from_postings(
        arrays["sparse_indptr.npy"], arrays["sparse_docs.npy"], arrays["sparse_values.npy"], q_units[0], rows
    )
    query = query_code(q_units[0], q_weights[0], sae.hidden)
    assert shared_features(query, from_postings, table) == shared_features(query, codes[rows], table)


# --- steering ---------------------------------------------------------------------


def _share_with_feature(queries: np.ndarray, docs: np.ndarray, active: np.ndarray, unit: int) -> float:
    """Share of exact-search top-10 hits (cosine over every document) with `unit` active."""
    top = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    return float(active[top, unit].mean())


def test_steering_toward_a_feature_brings_hits_that_have_it(table, codes, decoder, demo_vectors):
    """Over 200 queries and 12 features of 0.5-5% of rows, weight 0.5 at least triples the share
    of top-10 hits with the feature active (bench/features_report.py: 0.022 -> 0.114), and every
    feature gains; a negative weight lowers it."""
    docs, queries = demo_vectors
    active = codes.toarray() > 0
    freq = table.frequency
    candidates = table.live_units[(freq[table.live_units] > 0.005) & (freq[table.live_units] < 0.05)]
    units = np.random.default_rng(0).choice(candidates, 12, replace=False).tolist()
    sample = queries[:200]
    before = np.array([_share_with_feature(sample, docs, active, u) for u in units])
    toward = np.array([_share_with_feature(steer(sample, {u: 0.5}, decoder), docs, active, u) for u in units])
    away = np.array([_share_with_feature(steer(sample, {u: -0.3}, decoder), docs, active, u) for u in units])
    assert toward.mean() >= 3 * before.mean()
    assert (toward > before).all()
    assert away.mean() < before.mean()


def test_weight_zero_changes_nothing(decoder, demo_vectors):
    queries = demo_vectors[1][:50]
    np.testing.assert_array_equal(steer(queries, {3: 0.0}, decoder), queries)
    np.testing.assert_array_equal(steer(queries[0], {}, decoder), queries[0])


def test_steered_queries_are_unit_vectors_moved_along_the_decoder_direction(decoder, demo_vectors):
    query = demo_vectors[1][0]
    moved = steer(query, {5: 0.4}, decoder)
    direction = decoder[5] / np.linalg.norm(decoder[5])
    assert moved.shape == query.shape and abs(np.linalg.norm(moved) - 1) < 1e-5
    expected = (query + 0.4 * direction) / np.linalg.norm(query + 0.4 * direction)
    np.testing.assert_allclose(moved, expected, atol=1e-6)
    assert moved @ direction > query @ direction


def test_steering_rejects_unknown_features_and_cancelled_queries(decoder):
    with pytest.raises(ValueError, match="no feature"):
        steer(np.ones(decoder.shape[1], np.float32) / 20, {decoder.shape[0]: 1.0}, decoder)
    direction = decoder[0] / np.linalg.norm(decoder[0])
    with pytest.raises(ValueError, match="cancel"):
        steer(direction, {0: -1.0}, decoder)


def test_a_label_query_finds_the_units_whose_labels_hold_it(table):
    unit = int(table.live_units[0])
    word = table.terms[unit][0]
    found = find_features(table, word.upper())
    assert unit in found.tolist() and all(word in table.terms[u] for u in found.tolist())
    assert len(find_features(table, "zzzqqq")) == 0


def test_the_start_of_a_word_no_label_holds_whole_finds_the_units_with_a_term_beginning_so(table):
    units = table.live_units.tolist()
    every_term = {term for unit in units for term in table.terms[unit]}
    prefix = next(
        term[:-1] for unit in units for term in table.terms[unit] if term.isalpha() and len(term) > 4 and term[:-1] not in every_term
    )
    expected = {unit for unit in units if any(term.startswith(prefix) for term in table.terms[unit])}
    assert set(find_features(table, prefix, limit=len(units)).tolist()) == expected


def test_steering_keys_are_feature_ids_or_label_queries(table):
    unit = int(table.live_units[0])
    word = table.terms[unit][0]
    best = int(find_features(table, word, limit=1)[0])
    assert steering_weights(table, {str(unit): 0.2, unit: 0.1}) == {unit: pytest.approx(0.3)}
    assert steering_weights(table, {word: -0.5}) == {best: -0.5}
    with pytest.raises(ValueError, match="no feature.s label matches"):
        steering_weights(table, {"zzzqqq": 1.0})
