"""Hybrid search: fuse the ranked lists of several signals (dense, lexical, sparse) into one.

Pure functions over arrays. Each signal gives, per query, its candidates as
rows (nq, m) int64 (-1 pads) and scores (nq, m) float (higher is better, -inf
pads); rows within one query's list are distinct. Two ways to fuse:

- `rrf`: reciprocal rank fusion (Cormack et al. 2009), sum of w / (c + rank).
  Uses ranks only, so signals on any scale fuse without calibration.
- `weighted`: each list's scores normalised per query (min-max or z-score), then
  a weighted sum. A row a signal did not return gets that list's lowest
  normalised score; pass complete lists (e.g. lexical `scores_for` the dense
  candidates and dense scores of the lexical ones) to fuse true scores instead.

`HybridSpec` is the per-query declaration, `{"lexical": 0.3, "dense": 0.7,
"method": "rrf"}`, and `fuse` applies it to named signals.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from vecdial.indexer.errors import InvalidInput, first_problem

Ranked = tuple[np.ndarray, np.ndarray]  # rows (nq, m) int64 with -1 pads, scores (nq, m) with -inf pads

SIGNALS = ("dense", "lexical", "sparse")
# One setting for both judged sets, chosen in bench/hybrid_bench.py on half their queries:
# weighted z-score fusion over both lists' union, dense 0.7 + lexical 0.3. nDCG@10: demo 0.622
# (dense 0.598, BM25 0.461), WordNet 0.327 (dense 0.307, BM25 0.203); over the two top-100
# lists without completing them: 0.634 and 0.311. RRF only held up at lexical 0.1 (+0.001).
DEFAULT_WEIGHTS = {"dense": 0.7, "lexical": 0.3}
RANK_CONSTANT = 60  # RRF's c: Cormack et al.'s value, also Elasticsearch's and OpenSearch's default


class HybridSpec(BaseModel):
    """How one query fuses its signals: a weight per signal (0: unused) and the method.

    A spec naming no signal gets DEFAULT_WEIGHTS; one naming some gives the others 0.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dense: float = Field(0.0, ge=0, description="Weight of the dense budget's results.")
    lexical: float = Field(0.0, ge=0, description="Weight of BM25 over the stored texts.")
    sparse: float = Field(0.0, ge=0, description="Weight of the learned sparse codes (needs a --sparse build).")
    method: Literal["rrf", "weighted"] = Field("weighted", description="rrf: by ranks; weighted: by normalised scores.")
    normalize: Literal["minmax", "zscore"] = Field("zscore", description="Score normalisation of `weighted`.")
    rank_constant: int = Field(RANK_CONSTANT, ge=1, description="RRF's c in w / (c + rank).")

    @model_validator(mode="before")
    @classmethod
    def _default_weights(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not any(name in data for name in SIGNALS):
            return {**DEFAULT_WEIGHTS, **data}
        return data

    @model_validator(mode="after")
    def _some_weight(self) -> HybridSpec:
        if not any(self.weights.values()):
            raise ValueError("give at least one signal a weight above 0 (dense, lexical, sparse)")
        return self

    @property
    def weights(self) -> dict[str, float]:
        """Signal name -> weight, for the signals with a weight above 0."""
        return {name: getattr(self, name) for name in SIGNALS if getattr(self, name) > 0}


def parse_hybrid(spec: HybridSpec | Mapping[str, Any] | str) -> HybridSpec:
    """A HybridSpec from its JSON form, its string form (`lexical=0.3,dense=0.7,method=rrf`) or itself.

    Raises InvalidInput naming the field and what is allowed.
    """
    if isinstance(spec, HybridSpec):
        return spec
    if isinstance(spec, str):
        pairs = [item.partition("=") for item in spec.split(",") if item.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise InvalidInput(f"invalid hybrid {spec!r}: expected name=value pairs, e.g. lexical=0.3,dense=0.7,method=rrf")
        spec = {key.strip(): value.strip() for key, _, value in pairs}
    try:
        return HybridSpec.model_validate(spec)
    except ValidationError as exc:
        raise InvalidInput(f"invalid hybrid {spec!r}: {first_problem(exc, 'hybrid')}") from None


def rrf(lists: Sequence[Ranked], weights: Sequence[float], k: int, c: int = RANK_CONSTANT) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal rank fusion: a row scores sum_i weights[i] / (c + its 1-based rank in list i).

    lists: per signal, rows (nq, m_i) and scores (nq, m_i), best first (only the
    order is used). Returns rows (nq, k) int64, -1 padded, and fused scores
    (nq, k) float32, -inf padded; ties go to the lower row.
    """
    _check(lists, weights, k)
    parts = []
    for (rows, _), weight in zip(lists, weights):
        rows = np.asarray(rows, dtype=np.int64)
        ranks = np.arange(1, rows.shape[1] + 1, dtype=np.float64)
        parts.append((rows, np.broadcast_to(weight / (c + ranks), rows.shape)))
    return _sum_by_row(parts, np.zeros(len(lists[0][0])), k)


def weighted(
    lists: Sequence[Ranked], weights: Sequence[float], k: int, normalize: Literal["minmax", "zscore"] = "minmax"
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted score fusion: sum_i weights[i] * normalised score of the row in list i.

    Each list's scores are normalised per query over its real entries: `minmax`
    to [0, 1] (all equal: 1), `zscore` to (s - mean) / std (all equal: 0). A row
    missing from list i counts list i's lowest normalised score. Shapes as `rrf`.
    """
    _check(lists, weights, k)
    parts, floor = [], np.zeros(len(lists[0][0]))
    for (rows, scores), weight in zip(lists, weights):
        rows = np.asarray(rows, dtype=np.int64)
        norm = normalized(rows, scores, normalize)
        lowest = np.where(rows >= 0, norm, np.inf).min(axis=1, initial=np.inf)
        lowest = np.where(np.isfinite(lowest), lowest, 0.0)  # an empty list adds nothing
        floor += weight * lowest
        parts.append((rows, weight * (norm - lowest[:, None])))
    return _sum_by_row(parts, floor, k)


def normalized(rows: np.ndarray, scores: np.ndarray, normalize: Literal["minmax", "zscore"]) -> np.ndarray:
    """(nq, m) scores normalised per query over the entries with rows >= 0; pads become 0."""
    real = np.asarray(rows) >= 0
    values = np.where(real, np.asarray(scores, dtype=np.float64), np.nan)
    count = real.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a query whose list is all padding: masked below
        if normalize == "minmax":
            low, high = np.nanmin(values, axis=1, keepdims=True), np.nanmax(values, axis=1, keepdims=True)
            out = np.where(high > low, (values - low) / (high - low), 1.0)
        elif normalize == "zscore":
            mean, std = np.nanmean(values, axis=1, keepdims=True), np.nanstd(values, axis=1, keepdims=True)
            out = np.where(std > 0, (values - mean) / std, 0.0)
        else:
            raise InvalidInput(f"unknown normalize {normalize!r}: use minmax or zscore")
    return np.where(real & (count > 0), out, 0.0)


def fuse(signals: Mapping[str, Ranked], spec: HybridSpec, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Fuse named signals ("dense", "lexical", "sparse") as `spec` declares; shapes as `rrf`.

    Every signal with a weight above 0 must be given; others are ignored.
    """
    missing = [name for name in spec.weights if name not in signals]
    if missing:
        raise InvalidInput(f"hybrid weighs {', '.join(missing)} but no results were given for it")
    names = list(spec.weights)
    lists, weights = [signals[name] for name in names], [spec.weights[name] for name in names]
    if spec.method == "rrf":
        return rrf(lists, weights, k, spec.rank_constant)
    return weighted(lists, weights, k, spec.normalize)


def union_rows(*rows: np.ndarray) -> np.ndarray:
    """The distinct rows of several (nq, m_i) row arrays per query: (nq, sum m_i) int64,
    ascending, -1 padded at the end. The candidates to score with every signal before
    `weighted` fusion, so that no row is missing from a list."""
    stacked = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows], axis=1)
    ordered = np.sort(np.where(stacked >= 0, stacked, np.iinfo(np.int64).max), axis=1)
    repeat = np.zeros(ordered.shape, dtype=bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    ordered[repeat | (ordered == np.iinfo(np.int64).max)] = np.iinfo(np.int64).max
    ordered = np.sort(ordered, axis=1)
    return np.where(ordered == np.iinfo(np.int64).max, -1, ordered)


def _check(lists: Sequence[Ranked], weights: Sequence[float], k: int) -> None:
    if not lists or len(lists) != len(weights):
        raise InvalidInput(f"give one weight per list: {len(lists)} lists, {len(weights)} weights")
    if k < 1:
        raise InvalidInput(f"k must be at least 1, got {k}")
    if any(w < 0 for w in weights):
        raise InvalidInput(f"weights must be >= 0, got {list(weights)}")
    nq = len(lists[0][0])
    for rows, scores in lists:
        if np.ndim(rows) != 2 or np.shape(rows) != np.shape(scores) or len(rows) != nq:
            raise InvalidInput(f"every list needs rows and scores of shape ({nq}, m), got {np.shape(rows)} and {np.shape(scores)}")


def _sum_by_row(parts: list[tuple[np.ndarray, np.ndarray]], base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Add up the contributions each row gets across lists, per query, and keep the k best.

    parts: (rows (nq, m_i), contributions (nq, m_i)); base: (nq,) added to every
    fused row. Vectorised: rows are sorted per query, equal rows summed by segment.
    """
    rows = np.concatenate([r for r, _ in parts], axis=1)
    gain = np.concatenate([np.asarray(g, dtype=np.float64) for _, g in parts], axis=1)
    nq, width = rows.shape
    pad = np.iinfo(np.int64).max
    keyed = np.where(rows >= 0, rows, pad)
    order = np.argsort(keyed, axis=1, kind="stable")
    keyed, gain = np.take_along_axis(keyed, order, axis=1), np.take_along_axis(gain, order, axis=1)
    starts = np.ones((nq, width), dtype=bool)
    starts[:, 1:] = keyed[:, 1:] != keyed[:, :-1]
    group = np.cumsum(starts, axis=1) - 1  # slot of each entry's row within its query
    fused = np.zeros((nq, width))
    np.add.at(fused, (np.repeat(np.arange(nq), width), group.ravel()), gain.ravel())
    unique = np.full((nq, width), pad, dtype=np.int64)
    unique[np.nonzero(starts)[0], group[starts]] = keyed[starts]
    real = unique != pad
    fused = np.where(real, fused + base[:, None], -np.inf)
    best = np.argsort(-fused, axis=1, kind="stable")[:, :k]  # stable: ties keep ascending rows
    out_rows = np.take_along_axis(np.where(real, unique, -1), best, axis=1)
    out_scores = np.take_along_axis(fused, best, axis=1).astype(np.float32)
    if out_rows.shape[1] < k:
        fill = k - out_rows.shape[1]
        out_rows = np.pad(out_rows, ((0, 0), (0, fill)), constant_values=-1)
        out_scores = np.pad(out_scores, ((0, 0), (0, fill)), constant_values=-np.inf)
    return out_rows, out_scores

