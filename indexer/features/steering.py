"""Steering a query by features: move the dense query along units' decoder directions.

The autoencoder decodes linearly (x_hat = W_dec z + b_pre, unit-norm columns), so raising
unit u's activation by w moves the reconstruction by w * W_dec[:, u]. "Disentangling Dense
Embeddings with Sparse Autoencoders" steers search by changing features' activations and
mapping them back through the decoder; with a linear decoder and the query's own
reconstruction error kept, that is adding w * direction(u) to the query itself, which is
what :func:`steer` does, then renormalising so every mode sees a unit query.

Scale: the query has length 1 and the direction is normalised, so `weight` is the length
added along the feature (the same as raising the unit's activation by `weight`, the
decoder columns being unit-norm); a negative weight steers away. Measured on the demo
corpus (``bench/features_report.py``, 1,000 queries, 20 features active in 0.5-5% of
documents, exact top 10), share of hits with the feature active and top 10 kept:

    weight             0      0.2    0.5    1.0    2.0
    768 units, 16 on   0.022  0.040  0.114  0.473          (kept 1.0, 0.90, 0.74, 0.40)
    3072 units, 32 on  0.014  0.023  0.057  0.238  0.660   (kept 1.0, 0.91, 0.79, 0.55, 0.19)

With 3072 units the kept hits move 0.7, 1.3, 1.9 and 3.0 ranks on average and the first hit
changes for 9%, 22%, 46% and 91% of queries at 0.2, 0.5, 1 and 2: up to 0.5 steering mostly
reorders the same hits, 1 replaces about half of them, 2 most.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vecdial.indexer.features.table import FeatureTable

WEIGHTS_FILE = "sae_weights.npz"  # models.sparse_autoencoder.WEIGHTS_FILE, read here without torch
_WORD = re.compile(r"[^\W_]+")


def load_decoder(directory: str | Path) -> np.ndarray:
    """The decoder directions of a version's autoencoder, read with numpy alone.

    Returns (units, dim) float32: row u is W_dec[:, u], the embedding-space direction of unit u.
    """
    with np.load(Path(directory) / WEIGHTS_FILE, allow_pickle=False) as archive:
        return np.ascontiguousarray(np.asarray(archive["W_dec"], dtype=np.float32).T)


def steer(query_unit: np.ndarray, weights: Mapping[int, float], decoder: np.ndarray) -> np.ndarray:
    """Queries moved toward (weight > 0) or away from (weight < 0) features, renormalised.

    query_unit: (dim,) or (nq, dim) float32 unit queries, in the space the autoencoder was
    trained on (a version's unrotated unit vectors). weights: {unit: weight}, weight being
    the change of the unit's activation. decoder: (units, dim), e.g. :func:`load_decoder`.
    Returns the same shape, float32, unit rows. Weights all 0 (or none) return the queries
    unchanged, bit for bit. ValueError for an unknown unit, or when a weight cancels a query.
    """
    query = np.asarray(query_unit, dtype=np.float32)
    if query.ndim not in (1, 2) or query.shape[-1] != decoder.shape[1]:
        raise ValueError(f"query must be (dim,) or (nq, dim) with dim {decoder.shape[1]}, got {query.shape}")
    moves = {int(u): float(w) for u, w in weights.items() if float(w) != 0.0}
    bad = [u for u in moves if not 0 <= u < decoder.shape[0]]
    if bad:
        raise ValueError(f"no feature {bad[0]}: features are numbered 0..{decoder.shape[0] - 1}")
    if not moves:
        return query.copy()
    units = np.fromiter(moves, dtype=np.int64)
    directions = np.asarray(decoder[units], dtype=np.float64)
    directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    shift = np.fromiter(moves.values(), dtype=np.float64) @ directions  # (dim,)
    moved = query.astype(np.float64) + shift
    norms = np.linalg.norm(moved, axis=-1, keepdims=True)
    if np.any(norms < 1e-6):
        raise ValueError("the steering weights cancel the query: use smaller weights")
    return (moved / norms).astype(np.float32)


def words(text: str) -> list[str]:
    """Lower-case words of a label query, split as labels are ("os.path" -> os, path)."""
    return _WORD.findall(text.lower())


def find_features(table: FeatureTable, text_query: str, limit: int = 10) -> np.ndarray:
    """Units whose label holds the words of a "label query", best match first.

    Every word must be one of the label's terms; when no unit has them all, a word may be
    the start of a term ("pars" finds "parse", "parser"). Matches are ranked by the summed
    c-TF-IDF scores of the matching terms (how central the words are to the unit), then by
    frequency. Returns (m,) int64 unit ids, m <= limit; empty when nothing matches.
    """
    wanted = words(text_query)
    if not wanted:
        return np.zeros(0, dtype=np.int64)
    for prefix in (False, True):
        found: list[tuple[float, float, int]] = []
        for unit in table.live_units.tolist():
            terms, scores = table.terms[unit], table.term_scores[unit]
            total = 0.0
            for word in wanted:
                hit = [s for t, s in zip(terms, scores) if t == word or (prefix and t.startswith(word))]
                if not hit:
                    break
                total += max(hit)
            else:
                found.append((-total, -float(table.frequency[unit]), unit))
        if found:
            return np.array([unit for *_, unit in sorted(found)[:limit]], dtype=np.int64)
    return np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class SteerKey:
    """One key of a `steer` field as resolved: the key as sent, the unit it names, its weight."""

    key: str | int
    unit: int
    weight: float

    def to_dict(self, table: FeatureTable) -> dict:
        """What explain shows: {key, feature, label, weight} (label "" for an unlabelled table)."""
        return {"key": self.key, "feature": self.unit, "label": table.label(self.unit), "weight": self.weight}


def resolve_steer(table: FeatureTable, steer_by: Mapping[str | int, float]) -> list[SteerKey]:
    """A query's `steer` field -> one SteerKey per key: feature ids (ints or digit strings) name
    their unit, label queries their best-matching unit (:func:`find_features`).

    ValueError names a label query that matches no feature, or a feature id out of range.
    """
    out = []
    for key, weight in steer_by.items():
        if isinstance(key, (int, np.integer)) or (isinstance(key, str) and key.strip().isdigit()):
            unit = int(key)
            if not 0 <= unit < table.units:
                raise ValueError(f"no feature {unit}: features are numbered 0..{table.units - 1}")
        else:
            units = find_features(table, str(key), limit=1)
            if len(units) == 0:
                raise ValueError(f"no feature's label matches {key!r}: browse the features for their labels")
            unit = int(units[0])
        out.append(SteerKey(key if isinstance(key, str) else int(key), unit, float(weight)))
    return out


def steering_weights(table: FeatureTable, steer_by: Mapping[str | int, float]) -> dict[int, float]:
    """A query's `steer` field -> {unit: weight} (:func:`resolve_steer`); weights of keys
    resolving to the same unit add up."""
    out: dict[int, float] = {}
    for resolved in resolve_steer(table, steer_by):
        out[resolved.unit] = out.get(resolved.unit, 0.0) + resolved.weight
    return out
