"""The in-memory segment: vectors upserted since the serving version was built.

It is scored with the same stages as the version it sits on (`indexer.search`):
rotated with the version's rotation, binarized with its binary codec, sparse-coded
with its sparse encoder. Scores from the segment and the version are therefore
on one scale, and a merged top-k is the top-k of the union.

Rows are append-only: a `SegmentView` is the first `n` rows plus an `alive`
mask, and later appends never change what an existing view sees. Searches run on
views without locks; only the writer path (one thread at a time) calls `add` and
`remove`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from vecdial.indexer.plan.execute import Stage, keep_best
from vecdial.indexer.stores.sparse import unit_weights
from vecdial.indexer.stores.topk import topk
from vecdial.indexer.disk.version import Version

# Bounds the (queries, rows, code bytes) buffer of one Hamming chunk.
HAMMING_CHUNK_BYTES = 32 << 20


@dataclass(frozen=True)
class SegmentView:
    """An immutable snapshot of the first n segment rows.

    ids/texts: lists of at least n items (only the first n belong to the view);
    unit: (n, dim) float32 unit rows as written; rotated: (n, dim) float32 in the
    version's basis; codes: (n, dim/8) uint8 binary codes; alive: (n,) bool.
    """

    ids: list
    texts: list
    unit: np.ndarray
    rotated: np.ndarray
    codes: np.ndarray
    alive: np.ndarray
    segment: "Segment"

    @property
    def n(self) -> int:
        return int(self.alive.shape[0])

    @property
    def alive_count(self) -> int:
        return int(self.alive.sum())

    def alive_rows(self) -> np.ndarray:
        return np.flatnonzero(self.alive)


class Segment:
    """Append-only rows for one version; written by one thread at a time (the WAL writer)."""

    def __init__(self, version: Version):
        self.version = version
        dim = version.dim
        self._unit = np.empty((0, dim), dtype=np.float32)
        self._rotated = np.empty((0, dim), dtype=np.float32)
        self._codes = np.empty((0, version.binary.code_bytes), dtype=np.uint8)
        self._alive = np.empty(0, dtype=bool)
        self._n = 0
        self.ids: list = []
        self.texts: list[str | None] = []
        self.row_of: dict = {}
        self._sparse_lock = threading.Lock()
        self._sparse_units: np.ndarray | None = None
        self._sparse_weights: np.ndarray | None = None

    def view(self) -> SegmentView:
        n = self._n
        return SegmentView(
            self.ids, self.texts, self._unit[:n], self._rotated[:n], self._codes[:n], self._alive[:n], self
        )

    def add(self, ids: list, unit: np.ndarray, texts: list[str | None] | None) -> None:
        """Append rows; an id already in the segment has its old row killed (last write wins)."""
        old = [self.row_of[i] for i in ids if i in self.row_of]
        if old:
            self._kill(np.asarray(old))
        count = len(ids)
        self._reserve(self._n + count)
        start, stop = self._n, self._n + count
        rotated = self.version.rotation.apply(unit)
        # Round through the version's storage dtype so an upserted copy of a stored
        # vector scores exactly like the stored one.
        self._rotated[start:stop] = rotated.astype(self.version.dense.blocks.dtype).astype(np.float32)
        self._unit[start:stop] = unit
        self._codes[start:stop] = self.version.binary_codec.encode(unit)
        self._alive[start:stop] = True
        self.ids.extend(ids)
        self.texts.extend(texts if texts is not None else [None] * count)
        for offset, key in enumerate(ids):
            self.row_of[key] = start + offset
        self._n = stop

    def remove(self, ids: list) -> int:
        """Kill the rows of these ids; return how many were alive."""
        rows = [self.row_of.pop(i) for i in ids if i in self.row_of]
        if rows:
            self._kill(np.asarray(rows))
        return len(rows)

    def _kill(self, rows: np.ndarray) -> None:
        # Copy, never write in place: existing views keep their own alive masks.
        alive = self._alive.copy()
        alive[rows] = False
        self._alive = alive

    def _reserve(self, needed: int) -> None:
        capacity = self._alive.shape[0]
        if needed <= capacity:
            return
        capacity = max(needed, 2 * capacity, 64)
        # New arrays, old ones untouched: views made earlier keep reading theirs.
        for name in ("_unit", "_rotated", "_codes", "_alive"):
            old = getattr(self, name)
            grown = np.zeros((capacity,) + old.shape[1:], dtype=old.dtype)
            grown[: self._n] = old[: self._n]
            setattr(self, name, grown)

    def sparse_codes(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(units, weights), each (n, max_active), best first: the first n rows' sparse codes,
        made by the version's encoder once and cached (only sparse searches need them)."""
        with self._sparse_lock:
            done = 0 if self._sparse_units is None else len(self._sparse_units)
            if done < n:
                units, weights = self.version.sparse.encode(self._unit[done:n])
                parts = [] if self._sparse_units is None else [(self._sparse_units, self._sparse_weights)]
                parts.append((np.asarray(units, dtype=np.int32), np.asarray(weights, dtype=np.float32)))
                self._sparse_units = np.concatenate([u for u, _ in parts])
                self._sparse_weights = np.concatenate([w for _, w in parts])
            return self._sparse_units[:n], self._sparse_weights[:n]  # type: ignore[index]


def codes_matrix(units: np.ndarray, weights: np.ndarray, width: int):
    """(n, a) units/weights -> (n, width) scipy CSR; non-positive weights dropped, as the index does."""
    from scipy import sparse as sp

    rows = np.repeat(np.arange(len(units)), units.shape[1])
    keep = weights.reshape(-1) > 0
    return sp.csr_matrix(
        (weights.reshape(-1)[keep], (rows[keep], units.reshape(-1)[keep])), shape=(len(units), width), dtype=np.float32
    )


def search_segment(
    view: SegmentView,
    plan: list[Stage],
    q_unit: np.ndarray,
    q_rotated: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Run a compiled plan over the segment's alive rows.

    q_unit/q_rotated: (nq, dim) float32; plan: compiled with the segment's own limit
    (each stage's `keep` is what it keeps per query).
    Returns rows (nq, k') int64 (-1 padding), scores (nq, k') float32 and the
    bytes of segment data read per query.
    """
    nq = len(q_unit)
    if view.alive_count == 0:
        empty = np.zeros((nq, 0))
        return empty.astype(np.int64), empty.astype(np.float32), 0
    rows = scores = None
    bytes_read = 0
    for stage in plan:
        if stage.kind == "dense" and stage.rescore:
            rows, scores = keep_best(rows, _prefix_cosine_rows(q_rotated, view.rotated, rows, stage.size), stage.keep)
            bytes_read += int((rows >= 0).sum() // nq) * stage.size * 4
            continue
        if stage.kind == "dense":
            all_scores = _prefix_cosine(q_rotated, view.rotated, stage.size)
            bytes_read += view.n * stage.size * 4
        elif stage.kind == "binary":
            distances = _hamming(view.segment.version.binary_codec.encode(q_unit), view.codes)
            all_scores = 1.0 - 2.0 * distances.astype(np.float32) / stage.size
            bytes_read += view.n * view.codes.shape[1]
        else:
            all_scores = _sparse_scores(view, q_unit, stage.size)
            bytes_read += view.n * stage.size * 8
        all_scores[:, ~view.alive] = -np.inf
        rows, scores = topk(all_scores, stage.keep)
        rows = np.where(np.isfinite(scores), rows, -1)
    return rows, scores.astype(np.float32), bytes_read


def _unit_prefix(x: np.ndarray, dim: int) -> np.ndarray:
    prefix = np.asarray(x[:, :dim], dtype=np.float32)
    return prefix / np.maximum(np.linalg.norm(prefix, axis=1, keepdims=True), 1e-12)


def _prefix_cosine(q: np.ndarray, x: np.ndarray, dim: int) -> np.ndarray:
    """(nq, n) cosine over the first dim dims, like BlockStore.scan."""
    return _unit_prefix(q, dim) @ _unit_prefix(x, dim).T


def _prefix_cosine_rows(q: np.ndarray, x: np.ndarray, rows: np.ndarray, dim: int) -> np.ndarray:
    """(nq, c) cosine over the first dim dims for candidate rows, -inf at -1 padding."""
    qp = _unit_prefix(q, dim)
    picked = _unit_prefix(x[np.where(rows >= 0, rows, 0).reshape(-1)], dim).reshape(rows.shape + (dim,))
    scores = np.einsum("qd,qcd->qc", qp, picked)
    scores[rows < 0] = -np.inf
    return scores


def _hamming(q_codes: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(nq, n) Hamming distances between packed codes, in chunks of queries."""
    per_query = max(codes.shape[0] * codes.shape[1], 1)
    chunk = max(1, HAMMING_CHUNK_BYTES // per_query)
    out = np.empty((len(q_codes), len(codes)), dtype=np.int32)
    for start in range(0, len(q_codes), chunk):
        xor = q_codes[start : start + chunk, None, :] ^ codes[None, :, :]
        out[start : start + chunk] = np.bitwise_count(xor).sum(axis=2, dtype=np.int32)
    return out


def _sparse_scores(view: SegmentView, q_unit: np.ndarray, active: int) -> np.ndarray:
    """(nq, n) cosine of codes at budget `active`: the query's top-`active` units against
    each row's top-`active` units, which is what the version's inverted index scores."""
    q_units, q_weights = view.segment.version.sparse.encode(q_unit, active)
    d_units, d_weights = view.segment.sparse_codes(view.n)
    d_units, d_weights = d_units[:, :active], d_weights[:, :active]
    q_weights, d_weights = unit_weights(np.maximum(q_weights, 0)), unit_weights(np.maximum(d_weights, 0))
    width = 1 + int(max(q_units.max(initial=0), d_units.max(initial=0)))
    product = codes_matrix(q_units, q_weights, width) @ codes_matrix(d_units, d_weights, width).T
    return np.asarray(product.todense(), dtype=np.float32)
