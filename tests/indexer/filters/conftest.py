"""The demo corpus with payloads derived from its own rows (filters/demo.py), built once."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import vecdial
from vecdial.indexer.filters.demo import demo_payloads

DAY0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def payloads_of(demo_corpus) -> list[dict]:
    """demo_payloads plus `updated`, a datetime the text's length puts in 2020-2021."""
    rows = demo_payloads(demo_corpus.doc_ids, demo_corpus.doc_texts)
    for row in rows:
        row["updated"] = (DAY0 + dt.timedelta(days=row["chars"])).isoformat()
    return rows


@pytest.fixture(scope="session")
def demo_payload_rows(demo_corpus) -> list[dict]:
    return payloads_of(demo_corpus)


@pytest.fixture(scope="session")
def payload_demo(tmp_path_factory, demo_corpus, demo_vectors, demo_payload_rows) -> vecdial.Collection:
    """The whole demo corpus with payloads (module, path, chars, words, updated); never written to."""
    docs, _ = demo_vectors
    db = vecdial.connect(tmp_path_factory.mktemp("payloads"))
    return db.create("demo", docs, ids=demo_corpus.doc_ids, texts=demo_corpus.doc_texts, payloads=demo_payload_rows, show_progress=False)


@pytest.fixture(scope="session")
def queries(demo_vectors) -> np.ndarray:
    """40 real demo queries."""
    return np.asarray(demo_vectors[1][:40])
