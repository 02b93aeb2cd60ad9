"""Readable names for sparse-autoencoder units: class-based TF-IDF over their top documents.

As in "Disentangling Dense Embeddings with Sparse Autoencoders" (O'Neill et al. 2024),
a unit is read through the rows that activate it most. Its top documents are joined
into one class document and scored with c-TF-IDF (Grootendorst, BERTopic 2022):

    tf(t, u)  = docs among u's top documents containing t / terms of u's class document
    idf(t)    = log(1 + A / f(t)),  A: mean terms per class document, f(t): t's count in all of them
    score     = tf * idf

so a term wins when most of a unit's top documents share it and few other units'
top documents do. Counting documents, not occurrences (binary counts), keeps one
long docstring that repeats a word from naming the unit alone.

Pure compute: codes and texts in, a :class:`FeatureTable` out. Tokenising and the
English stopword list come from scikit-learn's CountVectorizer (imported when called).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from vecdial.indexer.features.table import FeatureTable

TOP = 10
TERMS = 5
MIN_TERMS = 3
# Terms past the third are kept only while their score is at least this share of the
# best term's: a unit with one clear theme keeps a short label, a mixed one a longer one.
KEEP_SHARE = 0.5
# Words of two letters or more, starting with a letter: "os.path.join" -> os, path, join.
TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W_]+\b"


def top_rows(codes: sp.csr_matrix, top: int = TOP) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's `top` most-activating rows, best first; ties go to the lower row.

    codes: CSR (N, units) activations. Returns rows (units, top) int64 (-1 pads) and
    activations (units, top) float32 (0 pads). One sort over the non-zeros, no loop per unit.
    """
    coo = codes.tocoo()
    keep = coo.data > 0
    row, unit, value = coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep]
    order = np.lexsort((row, -value, unit))
    row, unit, value = row[order], unit[order], value[order]
    units = codes.shape[1]
    starts = np.searchsorted(unit, np.arange(units))
    rank = np.arange(len(unit)) - starts[unit]
    first = rank < top
    rows_out = np.full((units, top), -1, dtype=np.int64)
    acts_out = np.zeros((units, top), dtype=np.float32)
    rows_out[unit[first], rank[first]] = row[first]
    acts_out[unit[first], rank[first]] = value[first]
    return rows_out, acts_out


def frequency(codes: sp.csr_matrix) -> np.ndarray:
    """(units,) float32 share of rows where each unit is active (activation > 0)."""
    n = max(codes.shape[0], 1)
    active = np.bincount(codes.indices[codes.data > 0], minlength=codes.shape[1])
    return (active / n).astype(np.float32)


def class_tfidf(class_docs: sp.csr_matrix) -> sp.csr_matrix:
    """c-TF-IDF of class documents: counts (classes, vocab) -> scores (classes, vocab) float64,
    with the counts' sparsity pattern (indices sorted). Empty classes score nothing. See the module docstring for the formula.
    """
    scores = sp.csr_matrix(class_docs, dtype=np.float64, copy=True)
    scores.sort_indices()
    per_class = np.asarray(scores.sum(axis=1)).ravel()
    per_term = np.asarray(scores.sum(axis=0)).ravel()
    filled = per_class > 0
    mean_terms = per_class[filled].mean() if filled.any() else 0.0
    idf = np.log1p(np.divide(mean_terms, per_term, out=np.zeros_like(per_term), where=per_term > 0))
    inv_class = np.divide(1.0, per_class, out=np.zeros_like(per_class), where=filled)
    rows = np.repeat(np.arange(scores.shape[0]), np.diff(scores.indptr))
    scores.data *= inv_class[rows] * idf[scores.indices]  # same pattern as the counts
    return scores


def pick_terms(
    scores: sp.csr_matrix, counts: sp.csr_matrix, vocabulary: np.ndarray, terms: int = TERMS, min_terms: int = MIN_TERMS
) -> tuple[list[list[str]], list[list[float]]]:
    """Each unit's label: its best c-TF-IDF terms, most distinctive first.

    scores/counts: (units, vocab) CSR with the same pattern (counts: top documents holding
    the term). Terms shared by two or more top documents come before terms of one document
    alone, which on the demo corpus were mostly incidental words ("completely",
    "observes"). At least `min_terms` are kept when there are that many, up to `terms`
    while a term of the first tier scores >= KEEP_SHARE of the best. Ties go by term.
    """
    labels, label_scores = [], []
    for i in range(scores.shape[0]):
        start, stop = scores.indptr[i], scores.indptr[i + 1]
        cols, vals, shared = scores.indices[start:stop], scores.data[start:stop], counts.data[start:stop] >= 2
        order = np.lexsort((vocabulary[cols], -vals, ~shared))[:terms]
        vals, shared = vals[order], shared[order]
        keep = [j for j in range(len(order)) if j < min_terms or (shared[j] == shared[0] and vals[j] >= KEEP_SHARE * vals[0])]
        labels.append([str(vocabulary[cols[order[j]]]) for j in keep])
        label_scores.append([float(vals[j]) for j in keep])
    return labels, label_scores


def feature_table(
    codes: sp.csr_matrix,
    texts: Sequence[str | None],
    top: int = TOP,
    terms: int = TERMS,
    min_terms: int = MIN_TERMS,
) -> FeatureTable:
    """Label every unit of a sparse autoencoder from the rows it fires on.

    codes: CSR (N, units) float32 activations of every row (e.g. ``codes_from_postings``
    of a version). texts: N texts in the same row order (None or "" for rows without one).
    Each live unit gets its `top` most-activating rows, a label of `min_terms`..`terms`
    c-TF-IDF terms of their texts and its frequency; dead units get none. A live unit
    whose top documents hold no usable word is named by its top document's first words.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    codes = sp.csr_matrix(codes)
    if len(texts) != codes.shape[0]:
        raise ValueError(f"codes have {codes.shape[0]} rows but {len(texts)} texts were given")
    rows, activations = top_rows(codes, top)
    share = frequency(codes)
    units = codes.shape[1]
    chosen = np.unique(rows[rows >= 0])
    words = [texts[r] or "" for r in chosen.tolist()]
    vectorizer = CountVectorizer(stop_words="english", binary=True, lowercase=True, token_pattern=TOKEN_PATTERN)
    try:
        doc_terms = vectorizer.fit_transform(words)
        vocabulary = vectorizer.get_feature_names_out().astype(object)
    except ValueError:  # no usable word in any top document
        doc_terms, vocabulary = sp.csr_matrix((len(chosen), 0)), np.array([], dtype=object)
    # (units, chosen) indicator of each unit's top documents, then class documents (units, vocab).
    filled = rows >= 0
    member = sp.csr_matrix(
        (np.ones(int(filled.sum())), (np.nonzero(filled)[0], np.searchsorted(chosen, rows[filled]))),
        shape=(units, len(chosen)),
    )
    counts = sp.csr_matrix(member @ doc_terms)
    counts.sort_indices()
    scores = class_tfidf(counts)
    labels, label_scores = pick_terms(scores, counts, vocabulary, terms, min_terms)
    for unit in np.flatnonzero(share > 0).tolist():
        if not labels[unit]:
            first = (texts[int(rows[unit, 0])] or "").split()[:min_terms]
            labels[unit], label_scores[unit] = (first or [f"unit {unit}"]), [0.0] * len(first or [0])
    return FeatureTable(rows, activations, share, labels, label_scores)
