"""A BM25 index over the shipped demo corpus, written once per session and opened memory-mapped."""

from __future__ import annotations

import pytest

from vecdial.indexer.lexical import LexicalIndex, open_lexical, write_lexical


@pytest.fixture(scope="session")
def demo_lexical_dir(tmp_path_factory, demo_corpus):
    out_dir = tmp_path_factory.mktemp("version")
    write_lexical(out_dir, demo_corpus.doc_texts)
    return out_dir


@pytest.fixture(scope="session")
def demo_lexical(demo_lexical_dir) -> LexicalIndex:
    return open_lexical(demo_lexical_dir)
