"""The BM25 index over a version's texts: finds rare words, masks deleted rows, reopens memory-mapped."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.lexical import open_lexical, tokenize, write_lexical
from vecdial.indexer.stores.alive import AliveRows


def rare_words(texts: list[str], n: int) -> list[tuple[str, int]]:
    """(word, the one row containing it) for the first n words of 6+ letters found in exactly one text."""
    tokens = tokenize(texts)
    df = Counter(word for doc in tokens for word in set(doc))
    found, seen = [], set()
    for row, doc in enumerate(tokens):
        for word in doc:
            if df[word] == 1 and len(word) >= 6 and word.isalpha() and word not in seen:
                found.append((word, row))
                seen.add(word)
                break
        if len(found) == n:
            break
    return found


def test_a_rare_query_word_finds_the_document_containing_it_first(demo_lexical, demo_corpus):
    pairs = rare_words(demo_corpus.doc_texts, 50)
    rows, scores = demo_lexical.search([word for word, _ in pairs], k=5)
    assert rows[:, 0].tolist() == [row for _, row in pairs]
    assert (scores[:, 0] > 0).all() and (rows[:, 1:] == -1).all()  # nothing else shares the word


def test_results_are_best_first_padded_with_minus_one_and_minus_inf(demo_lexical, demo_corpus):
    rows, scores = demo_lexical.search(demo_corpus.query_texts[:100] + ["the of and", "zzzqqq"], k=20)
    assert rows.shape == scores.shape == (102, 20) and rows.dtype == np.int64 and scores.dtype == np.float32
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    assert ((rows == -1) == np.isneginf(scores)).all()
    assert (rows[-2:] == -1).all()  # stopwords only, and a word no document has: no hits


def test_dead_rows_never_come_back_and_live_ones_fill_their_places(demo_lexical, demo_corpus):
    queries = demo_corpus.query_texts[:200]
    full_rows, _ = demo_lexical.search(queries, k=demo_lexical.size)
    dead = np.random.default_rng(0).random(demo_lexical.size) < 0.3
    dead[full_rows[:, 0][full_rows[:, 0] >= 0]] = True  # every query's best document is deleted
    rows, _ = demo_lexical.search(queries, k=10, alive=dead)
    assert not dead[rows[rows >= 0]].any()
    expected = [[r for r in ranked if r >= 0 and not dead[r]][:10] for ranked in full_rows]
    assert [[r for r in got if r >= 0] for got in rows] == expected


def test_an_alive_rows_object_masks_like_its_dead_mask(demo_lexical, demo_corpus):
    dead = np.zeros(demo_lexical.size, dtype=bool)
    dead[::3] = True
    queries = demo_corpus.query_texts[:50]
    by_mask = demo_lexical.search(queries, 10, alive=dead)
    by_rows = demo_lexical.search(queries, 10, alive=AliveRows(dead))
    assert np.array_equal(by_mask[0], by_rows[0]) and np.array_equal(by_mask[1], by_rows[1])


def test_a_dead_mask_of_the_wrong_length_is_refused(demo_lexical):
    with pytest.raises(InvalidInput, match="dead mask"):
        demo_lexical.search(["json"], 10, alive=np.zeros(3, dtype=bool))


def test_scores_for_gives_the_bm25_score_of_any_row(demo_lexical, demo_corpus):
    queries = demo_corpus.query_texts[:100]
    rows, scores = demo_lexical.search(queries, k=10)
    assert np.allclose(demo_lexical.scores_for(queries, rows), scores)
    other = np.tile(np.arange(20), (100, 1))  # rows the query may not match at all: 0, not -inf
    assert (demo_lexical.scores_for(queries, other) >= 0).all()


def test_rows_without_text_are_indexed_in_place_and_score_zero(tmp_path):
    record = write_lexical(tmp_path, ["parse a date string", None, "", "sort a list in place"])
    index = open_lexical(tmp_path)
    assert record["docs"] == 4 and record["with_text"] == 2
    rows, _ = index.search(["sort the list", "date"], k=4)
    assert rows.tolist() == [[3, -1, -1, -1], [0, -1, -1, -1]]
    assert index.scores_for(["parse a date"], np.array([[0, 1, 2, 3]]))[0, 1:].tolist() == [0, 0, 0]


def test_write_records_what_a_manifest_needs(demo_lexical_dir, demo_corpus):
    record = write_lexical(demo_lexical_dir / "again", demo_corpus.doc_texts)
    assert record["docs"] == len(demo_corpus.doc_texts) and record["vocab"] > 1000
    assert record["method"] == "lucene" and record["stopwords"] == "en"
    assert all((demo_lexical_dir / "again" / name).is_file() for name in record["files"])
    assert record["bytes"] == sum((demo_lexical_dir / "again" / name).stat().st_size for name in record["files"])


def test_index_survives_write_and_reopen_memory_mapped_with_identical_results(demo_lexical_dir, demo_corpus):
    mapped, loaded = open_lexical(demo_lexical_dir, mmap=True), open_lexical(demo_lexical_dir / "lexical", mmap=False)
    assert isinstance(mapped._bm25.scores["data"], np.memmap)
    queries = demo_corpus.query_texts
    for got, want in zip(mapped.search(queries, 10), loaded.search(queries, 10)):
        assert np.array_equal(got, want)


def test_opening_a_folder_without_an_index_says_so(tmp_path):
    from vecdial.indexer.errors import CorruptIndex

    with pytest.raises(CorruptIndex, match="no lexical index"):
        open_lexical(tmp_path)


def test_without_bm25s_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "bm25s", None)  # import bm25s now raises ImportError
    with pytest.raises(InvalidInput, match=r"vecdial\[lexical\]"):
        write_lexical(tmp_path, ["some text"])


def test_importing_vecdial_and_the_lexical_package_does_not_import_bm25s():
    code = "import sys, vecdial, vecdial.indexer.lexical, vecdial.indexer.plan.fusion; print('bm25s' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
