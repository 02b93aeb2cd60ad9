"""A BM25 index over a version's stored texts, written beside the version and memory-mapped.

Why: dense embeddings miss rare exact words (identifiers, names, jargon) that a
lexical index finds first; fusing the two (plan/fusion.py) beats either alone.
The scoring is bm25s's (`xhluca/bm25s`): its eager index stores every
(term, document) BM25 weight in one CSC matrix, so a query's scores are a sum of
the posting lists of its terms, read from the memory map.

Tokens are bm25s's: lower-cased words of 2+ word characters (scikit-learn's
pattern), English stopwords shipped with bm25s removed, no stemmer (nothing to
download). Rows are indexed in the order given; a row without text has no
postings and scores 0 for every query.

Measured on WordNet (117,659 glosses, one thread, busy 2-core machine, three
runs): build 2.3-3.5 s, index 9.8 MiB (80k terms), search 0.07-0.15 ms per 1-3
word query in a batch at k=100, 0.14-0.26 ms one query at a time at k=10
(`python -m bench.hybrid_bench`). A query's cost is
its terms' postings plus one pass over an (N,) score vector.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vecdial.indexer.errors import CorruptIndex, InvalidInput
from vecdial.indexer.stores.alive import AliveRows

LEXICAL_DIR = "lexical"
META_FILE = "lexical.json"
FORMAT = 1
METHOD = "lucene"  # bm25s's default BM25 variant (Lucene's idf, never negative)
K1, B = 1.5, 0.75
STOPWORDS = "en"  # bm25s.stopwords.STOPWORDS_EN (NLTK's English list, shipped in the wheel)


def _bm25s() -> Any:
    """Import bm25s on first use, so the core install works without the `lexical` extra."""
    try:
        import bm25s
    except ImportError:
        raise InvalidInput("lexical search needs the bm25s library: pip install 'vecdial[lexical]'") from None
    return bm25s


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Texts -> their tokens, the same way for documents and queries (lower case, stopwords dropped)."""
    return _bm25s().tokenize(list(texts), stopwords=STOPWORDS, return_ids=False, show_progress=False)


def write_lexical(out_dir: Path, texts: Sequence[str | None], show_progress: bool = False) -> dict[str, Any]:
    """Index `texts` (one per row, None: no text) into `out_dir/lexical/`.

    Returns what a manifest should record: docs (rows indexed), with_text (rows
    that have a non-empty text), vocab (distinct terms), method/k1/b/stopwords, and
    files (paths relative to out_dir, each to be checksummed with the version).
    """
    bm25s = _bm25s()
    documents = [text or "" for text in texts]
    if not documents:
        raise InvalidInput("a lexical index needs at least one row")
    tokens = bm25s.tokenize(documents, stopwords=STOPWORDS, return_ids=True, show_progress=show_progress)
    if not tokens.vocab:  # no row has a text with a term (all overwritten without one, say): bm25s cannot index that
        raise InvalidInput("no row has a text with a term to index: the version is built without a lexical index")
    retriever = bm25s.BM25(method=METHOD, k1=K1, b=B, backend="numpy")
    retriever.index(tokens, show_progress=show_progress)
    directory = Path(out_dir) / LEXICAL_DIR
    directory.mkdir(parents=True, exist_ok=True)
    retriever.save(directory, show_progress=False)
    record = {
        "format": FORMAT,
        "docs": len(documents),
        "with_text": sum(1 for text in documents if text.strip()),
        "vocab": sum(1 for term in retriever.vocab_dict if term),  # "" is bm25s's empty-query token
        "method": METHOD,
        "k1": K1,
        "b": B,
        "stopwords": STOPWORDS,
        "bm25s": bm25s.__version__,
    }
    (directory / META_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    files = sorted(f"{LEXICAL_DIR}/{path.name}" for path in directory.iterdir() if path.is_file())
    return {**record, "files": files, "bytes": sum((Path(out_dir) / name).stat().st_size for name in files)}


def open_lexical(directory: Path, mmap: bool = True) -> LexicalIndex:
    """Open the index that write_lexical wrote: `directory` is its out_dir or the `lexical/` folder itself."""
    directory = Path(directory)
    if (directory / LEXICAL_DIR / META_FILE).is_file():
        directory = directory / LEXICAL_DIR
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise CorruptIndex(f"no lexical index in {directory}: build the version with texts and a lexical index")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise CorruptIndex(f"lexical index in {directory} has format {meta.get('format')}, this vecdial reads {FORMAT}")
    retriever = _bm25s().BM25.load(directory, mmap=mmap, show_progress=False, backend="numpy")
    if retriever.scores["num_docs"] != meta["docs"]:
        raise CorruptIndex(f"lexical index in {directory} holds {retriever.scores['num_docs']} rows, its record says {meta['docs']}")
    return LexicalIndex(retriever, meta)


class LexicalIndex:
    """BM25 search over the rows of one version: `search` finds, `scores_for` scores given rows."""

    def __init__(self, retriever: Any, meta: dict[str, Any]):
        self._bm25 = retriever
        self.meta = meta
        self.size: int = int(meta["docs"])

    def _term_ids(self, queries: Sequence[str]) -> list[np.ndarray]:
        if isinstance(queries, str):
            raise InvalidInput("queries must be a list of strings, not one string")
        ids = [self._bm25.get_tokens_ids(tokens) for tokens in tokenize(queries)]
        return [np.asarray(found, dtype=np.int32) for found in ids]

    def _scores(self, term_ids: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        """One query's BM25 score of every row: (N,) float32, 0 where no term matches."""
        if term_ids.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        return self._bm25.get_scores_from_ids(term_ids, weight_mask=weights)

    def search(self, queries: Sequence[str], k: int, alive: AliveRows | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k best rows per query by BM25, best first (ties: lower row first).

        queries: nq texts; alive: the rows that may be returned, an AliveRows or a dead
        mask (N,) bool (True: deleted), None: all. Only rows sharing a term with the
        query come back. Returns rows (nq, k) int64, -1 padded, and scores (nq, k)
        float32, -inf padded.
        """
        if k < 1:
            raise InvalidInput(f"k must be at least 1, got {k}")
        weights = self._alive_weights(alive)
        term_ids = self._term_ids(queries)
        rows = np.full((len(term_ids), k), -1, dtype=np.int64)
        scores = np.full((len(term_ids), k), -np.inf, dtype=np.float32)
        for i, ids in enumerate(term_ids):
            if ids.size == 0:
                continue
            found, best = _top_positive(self._scores(ids, weights), k)
            rows[i, : found.size], scores[i, : found.size] = found, best
        return rows, scores

    def scores_for(self, queries: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """The BM25 score of given rows: for fusing candidates another signal found.

        rows: (nq, m) int, -1 for padding. Returns (nq, m) float32: 0 for a row that
        shares no term with its query, -inf at padding.
        """
        rows = np.asarray(rows)
        term_ids = self._term_ids(queries)
        if rows.ndim != 2 or rows.shape[0] != len(term_ids):
            raise InvalidInput(f"rows must be ({len(term_ids)}, m) for {len(term_ids)} queries, got {rows.shape}")
        if rows.size and int(rows.max()) >= self.size:
            raise InvalidInput(f"row {int(rows.max())} is beyond the {self.size} rows of the lexical index")
        out = np.full(rows.shape, -np.inf, dtype=np.float32)
        for i, ids in enumerate(term_ids):
            real = rows[i] >= 0
            out[i, real] = self._scores(ids, None)[rows[i, real]] if ids.size else 0.0
        return out

    def _alive_weights(self, alive: AliveRows | np.ndarray | None) -> np.ndarray | None:
        """bm25s's weight_mask: 1 for rows that may be returned, 0 for dead ones (None: all)."""
        if alive is None:
            return None
        dead = np.asarray(alive.dead if isinstance(alive, AliveRows) else alive)
        if dead.dtype != np.bool_ or dead.shape != (self.size,):
            raise InvalidInput(f"the dead mask must be ({self.size},) bool, got {dead.shape} {dead.dtype}")
        return (~dead).astype(np.float32)


def _top_positive(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores) of the k highest positive scores of (N,) scores, best first, ties by row."""
    rows = np.flatnonzero(scores > 0)
    if rows.size > k:
        keep = np.argpartition(-scores[rows], k - 1)[:k]
        cut = scores[rows[keep]].min()  # rows tied with the k-th score: keep the lowest ones
        rows = np.flatnonzero(scores >= cut) if np.count_nonzero(scores >= cut) > k else rows[keep]
    order = np.lexsort((rows, -scores[rows]))[:k]
    rows = rows[order]
    return rows.astype(np.int64), scores[rows].astype(np.float32)
