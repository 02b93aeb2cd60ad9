"""Specification of the shipped demo corpus (indexer/io/demo.py, indexer/io/demo_data/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vecdial.indexer.io import demo
from vecdial.indexer.io.demo import DemoCorpus, demo_embeddings
from vecdial.models.encoder import MODEL_DIM, encode_texts


def test_corpus_loads_with_unique_ids_and_non_empty_texts(demo_corpus: DemoCorpus) -> None:
    c = demo_corpus
    assert len(c.doc_ids) == len(set(c.doc_ids)) == len(c.doc_texts) >= 2000
    assert len(c.query_ids) == len(set(c.query_ids)) == len(c.query_texts) == 1000
    assert all(text.strip() for text in c.doc_texts + c.query_texts)


def test_documents_are_truncated_to_about_700_characters(demo_corpus: DemoCorpus) -> None:
    assert max(len(text) for text in demo_corpus.doc_texts) <= 700


def test_every_query_has_exactly_one_relevant_existing_document(demo_corpus: DemoCorpus) -> None:
    doc_ids = set(demo_corpus.doc_ids)
    assert set(demo_corpus.qrels) == set(demo_corpus.query_ids)
    for judgements in demo_corpus.qrels.values():
        assert len(judgements) == 1
        assert set(judgements) <= doc_ids
        assert list(judgements.values()) == [1]


def test_cached_embeddings_are_one_unit_norm_float32_row_per_text(
    demo_corpus: DemoCorpus, demo_vectors: tuple[np.ndarray, np.ndarray]
) -> None:
    docs, queries = demo_vectors
    assert docs.shape == (len(demo_corpus.doc_ids), MODEL_DIM)
    assert queries.shape == (len(demo_corpus.query_ids), MODEL_DIM)
    for vectors in (docs, queries):
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_bundled_model_reproduces_cached_rows(demo_corpus: DemoCorpus, demo_vectors: tuple[np.ndarray, np.ndarray]) -> None:
    rows = np.linspace(0, len(demo_corpus.doc_texts) - 1, num=5, dtype=int)
    fresh = encode_texts([demo_corpus.doc_texts[i] for i in rows])
    cosines = np.sum(fresh * demo_vectors[0][rows], axis=1)
    assert np.all(cosines > 0.999), cosines


def test_second_call_reads_the_cache_instead_of_encoding(
    demo_vectors: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_encode(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("demo_embeddings re-encoded despite a warm cache")

    monkeypatch.setattr(demo, "encode_texts", must_not_encode)
    docs, queries = demo_embeddings(show_progress=False)
    np.testing.assert_array_equal(docs, demo_vectors[0])
    np.testing.assert_array_equal(queries, demo_vectors[1])


def test_a_run_killed_while_writing_leaves_no_cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_encode(texts: list[str], **kwargs: object) -> np.ndarray:
        return np.ones((len(texts), MODEL_DIM), dtype=np.float32)

    def killed_mid_write(file: object, array: np.ndarray) -> None:
        file.write(b"\x93NUMPY partial")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "encode_texts", fake_encode)
    with monkeypatch.context() as patch:
        patch.setattr(demo.np, "save", killed_mid_write)
        with pytest.raises(KeyboardInterrupt):
            demo_embeddings(cache_dir=tmp_path, show_progress=False)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []

    docs, _ = demo_embeddings(cache_dir=tmp_path, show_progress=False)
    assert docs.shape[1] == MODEL_DIM
    cached = sorted(p.name for p in tmp_path.rglob("*.npy"))
    assert cached == ["doc_vectors.npy", "query_vectors.npy"]


def test_exact_search_ranks_the_relevant_document_in_the_top_10(
    demo_corpus: DemoCorpus, demo_vectors: tuple[np.ndarray, np.ndarray]
) -> None:
    """The benchmark is neither trivial nor hopeless, so compression losses show up."""
    docs, queries = demo_vectors
    doc_row = {doc_id: i for i, doc_id in enumerate(demo_corpus.doc_ids)}
    relevant = np.array([doc_row[next(iter(demo_corpus.qrels[q]))] for q in demo_corpus.query_ids])
    scores = queries @ docs.T
    rank = np.sum(scores > scores[np.arange(len(relevant)), relevant][:, None], axis=1)  # 0-based
    mrr_at_10 = np.mean(np.where(rank < 10, 1.0 / (rank + 1), 0.0))
    recall_at_10 = np.mean(rank < 10)
    # Measured with all-MiniLM-L6-v2 on the shipped data (Python 3.11.7 stdlib):
    # MRR@10 = 0.533, recall@10 = 0.803 (recall@1 = 0.402, nDCG@10 = 0.598).
    assert mrr_at_10 >= 0.50
    assert recall_at_10 >= 0.77
