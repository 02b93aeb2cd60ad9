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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vecdial.indexer.errors import InvalidInput, first_problem

Ranked = tuple[np.ndarray, np.ndarray]  # rows (nq, m) int64 with -1 pads, scores (nq, m) with -inf pads

SIGNALS = ("dense", "lexical", "sparse")
# One setting for both judged sets, chosen in bench/hybrid_bench.py on half their queries:
# weighted z-score fusion over both lists' union, dense 0.7 + lexical 0.3. nDCG@10: demo 0.622
# (dense 0.598, BM25 0.461), WordNet 0.327 (dense 0.307, BM25 0.203); over the two top-100
# lists without completing them: 0.634 and 0.311. RRF only held up at lexical 0.1 (+0.001).
DEFAULT_WEIGHTS = {"dense": 0.7, "lexical": 0.3}
RANK_CONSTANT = 60  # RRF's c: Cormack et al.'s value, also Elasticsearch's and OpenSearch's default
SUM_TOLERANCE = 1e-9  # shares may sum to 1 + this (0.7 + 0.2 + 0.1 is not 1 in floats)


class HybridSpec(BaseModel):
    """How one query fuses its signals: a share of 1 per signal, and the method.

    Weights are shares: each in [0, 1], and the weights used (`weights`) sum to 1. A spec
    naming no signal gets DEFAULT_WEIGHTS. A spec naming some gives them their weight, and
    the unnamed default signals (dense, lexical) share what is left in the default's
    proportions: `{"lexical": 0.5}` is dense 0.5 + lexical 0.5, `{"sparse": 0.1}` is dense
    0.63 + lexical 0.27 + sparse 0.1, `{"lexical": 1}` is BM25 alone. `sparse` (a
    --sparse build) takes part only when named. Named weights summing below 1 with no
    unnamed default signal left (`{"dense": 0.4, "lexical": 0.1}`) are scaled to sum to 1:
    fusion ranks by their ratios alone. Named weights summing above 1 are refused.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dense: float | None = Field(None, ge=0, le=1, description="Share of the dense budget's results (0..1).")
    lexical: float | None = Field(None, ge=0, le=1, description="Share of BM25 over the stored texts (0..1).")
    sparse: float | None = Field(None, ge=0, le=1, description="Share of the learned sparse codes (0..1; needs a --sparse build).")
    method: Literal["rrf", "weighted"] = Field("weighted", description="rrf: by ranks; weighted: by normalised scores.")
    normalize: Literal["minmax", "zscore"] = Field("zscore", description="Score normalisation of `weighted`.")
    rank_constant: int = Field(RANK_CONSTANT, ge=1, description="RRF's c in w / (c + rank).")

    @field_validator("dense", "lexical", "sparse", mode="before")
    @classmethod
    def _a_share(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a weight is a number from 0 to 1, not true/false")
        if isinstance(value, (int, float)) and not 0 <= value <= 1:  # nan too
            raise ValueError(f'{value:g} is not a share: a weight is from 0 to 1, e.g. {{"dense": 0.7, "lexical": 0.3}}')
        return value

    @model_validator(mode="after")
    def _shares_of_one(self) -> HybridSpec:
        named = sum(weight for weight in self.named.values())
        if named > 1 + SUM_TOLERANCE:
            shown = ", ".join(f"{name} {weight:g}" for name, weight in self.named.items())
            raise ValueError(
                f"weights are shares of 1 and these sum to {named:g} ({shown}): "
                'give shares that sum to 1, e.g. {"dense": 0.7, "lexical": 0.3}'
            )
        if not self.weights:
            raise ValueError("give at least one signal a weight above 0 (dense, lexical, sparse)")
        return self

    @property
    def named(self) -> dict[str, float]:
        """The weights the spec names, as given (a spec naming none: DEFAULT_WEIGHTS)."""
        given = {name: getattr(self, name) for name in SIGNALS if getattr(self, name) is not None}
        return given if given else dict(DEFAULT_WEIGHTS)

    @property
    def weights(self) -> dict[str, float]:
        """Signal name -> the share it is fused with, for the signals above 0; they sum to 1.

        Shares below 1e-12 count as 0 (they could not change a ranking in float64)."""
        return _resolve(self.named)


def _resolve(named: Mapping[str, float]) -> dict[str, float]:
    """Named weights -> the shares used (see HybridSpec): the rest of 1 to the unnamed default signals."""
    shares = dict(named)
    rest = 1.0 - sum(shares.values())
    unnamed = {name: share for name, share in DEFAULT_WEIGHTS.items() if name not in shares}
    if rest > SUM_TOLERANCE and unnamed:
        total = sum(unnamed.values())
        shares.update({name: rest * share / total for name, share in unnamed.items()})
    total = sum(shares.values())
    if total <= 0:
        return {}
    used = {name: round(shares[name] / total, 12) for name in SIGNALS if name in shares}
    return {name: weight for name, weight in used.items() if weight > 0}


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
        spec = {key.strip(): _weight_or_text(key.strip(), value.strip()) for key, _, value in pairs}
    try:
        return HybridSpec.model_validate(spec)
    except ValidationError as exc:
        problem = first_problem(exc, "hybrid").replace("Value error, ", "")
        raise InvalidInput(f"invalid hybrid {spec!r}: {problem}") from None


def _weight_or_text(key: str, value: str) -> Any:
    """A weight of the string form as a float where it reads as one (so its range is checked as the JSON form's)."""
    try:
        return float(value) if key in SIGNALS else value
    except ValueError:
        return value


def rrf(lists: Sequence[Ranked], weights: Sequence[float], k: int, c: int = RANK_CONSTANT) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal rank fusion: a row scores sum_i weights[i] / (c + its 1-based rank in list i).

    lists: per signal, rows (nq, m_i) and scores (nq, m_i), best first (only the
    order is used). Returns rows (nq, k) int64, -1 padded, and fused scores
    (nq, k) float32, -inf padded; ties go to the lower row. Weights scaled together rank
    the same: weights above 1 are scaled down together so the largest is 1, so any finite
    weights fuse to finite scores.
    """
    weights = _check(lists, weights, k)
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
    missing from list i counts list i's lowest normalised score. Shapes and weights as `rrf`.
    """
    weights = _check(lists, weights, k)
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


def _check(lists: Sequence[Ranked], weights: Sequence[float], k: int) -> list[float]:
    """The lists' shapes and the weights checked -> the weights to fuse with: as given when
    none passes 1, else scaled together so the largest is 1 (the same ranking, finite
    scores: a weight of 1e308 times a z-score would overflow to inf, and inf - inf is nan)."""
    if not lists or len(lists) != len(weights):
        raise InvalidInput(f"give one weight per list: {len(lists)} lists, {len(weights)} weights")
    if k < 1:
        raise InvalidInput(f"k must be at least 1, got {k}")
    if any(not np.isfinite(w) or w < 0 for w in weights):
        raise InvalidInput(f"weights must be finite and >= 0, got {list(weights)}")
    nq = len(lists[0][0])
    for rows, scores in lists:
        if np.ndim(rows) != 2 or np.shape(rows) != np.shape(scores) or len(rows) != nq:
            raise InvalidInput(f"every list needs rows and scores of shape ({nq}, m), got {np.shape(rows)} and {np.shape(scores)}")
    largest = max(float(w) for w in weights)
    return [float(w) / largest if largest > 1 else float(w) for w in weights]


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
