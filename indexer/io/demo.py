"""The shipped demo corpus: CPython stdlib docstrings with query -> document relevance.

Why it exists: compressed embeddings must be judged by retrieval quality
(nDCG@10 / MRR@10 against human-meaningful relevance), not only by agreement with
exact search. The data is built by `scripts/make_demo_corpus.py`; see
`indexer/io/demo_data/README.md`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from vecdial.indexer.disk.atomic import save_npy_atomic
from vecdial.models.encoder import MODEL_NAME, encode_texts

_DATA = resources.files(__package__) / "demo_data"
_CORPUS_FILE = "corpus.jsonl.gz"
_QUERIES_FILE = "queries.jsonl.gz"
_QRELS_FILE = "qrels.tsv"
_DOC_VECTORS = "doc_vectors.npy"
_QUERY_VECTORS = "query_vectors.npy"


@dataclass(frozen=True)
class DemoCorpus:
    """Documents, evaluation queries and graded relevance (query_id -> {doc_id: grade})."""

    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]


def _read_jsonl_gz(name: str) -> tuple[list[str], list[str]]:
    """(ids, texts) of a gzipped JSON-lines package file, in file order."""
    lines = gzip.decompress((_DATA / name).read_bytes()).decode("utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    return [r["id"] for r in rows], [r["text"] for r in rows]


def _read_qrels() -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    reader = csv.DictReader(io.StringIO((_DATA / _QRELS_FILE).read_text("utf-8")), delimiter="\t")
    for row in reader:
        qrels.setdefault(row["query_id"], {})[row["doc_id"]] = int(row["relevance"])
    return qrels


def load_demo_corpus() -> DemoCorpus:
    """Read the corpus from package data, so it works from a wheel as well as a checkout."""
    doc_ids, doc_texts = _read_jsonl_gz(_CORPUS_FILE)
    query_ids, query_texts = _read_jsonl_gz(_QUERIES_FILE)
    return DemoCorpus(doc_ids, doc_texts, query_ids, query_texts, _read_qrels())


def _default_cache_dir() -> Path:
    return Path(os.environ.get("VECDIAL_CACHE_DIR") or Path.home() / ".cache" / "vecdial")


def _cache_key() -> str:
    """Changes whenever the corpus, the queries or the model change, never otherwise."""
    digest = hashlib.sha256()
    for name in (_CORPUS_FILE, _QUERIES_FILE):
        digest.update((_DATA / name).read_bytes())
    digest.update(MODEL_NAME.encode())
    return f"demo-{digest.hexdigest()[:16]}"


def _load_cached(path: Path, n_rows: int) -> np.ndarray | None:
    """The cached matrix if present and of the expected height, else None."""
    if not path.exists():
        return None
    array = np.load(path)
    return array if array.shape[0] == n_rows else None


def _cached_encode(path: Path, texts: list[str], show_progress: bool) -> np.ndarray:
    cached = _load_cached(path, len(texts))
    if cached is not None:
        return cached
    vectors = encode_texts(texts, show_progress=show_progress)
    save_npy_atomic(path, vectors)
    return vectors


def demo_embeddings(cache_dir: Path | None = None, show_progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(doc_vectors, query_vectors), float32 unit-norm, rows in corpus/query order.

    Encoding takes tens of seconds on CPU, so vectors are cached under
    `cache_dir` (default: $VECDIAL_CACHE_DIR or ~/.cache/vecdial) in a folder keyed
    by the data and model, and re-runs and tests load them instead.
    """
    corpus = load_demo_corpus()
    folder = (cache_dir or _default_cache_dir()) / _cache_key()
    folder.mkdir(parents=True, exist_ok=True)
    doc_vectors = _cached_encode(folder / _DOC_VECTORS, corpus.doc_texts, show_progress)
    query_vectors = _cached_encode(folder / _QUERY_VECTORS, corpus.query_texts, show_progress)
    return doc_vectors, query_vectors
