"""Hybrid search: the dense budget's candidates fused with BM25 over the stored texts.

A hybrid search runs its budget for `depth` candidates per part (the version's
rows, the rows written since), asks the version's lexical index (indexer/lexical)
for its own `depth` best live rows, and fuses the two lists with plan/fusion.py.
`weighted` fusion first completes both lists over their union (exact cosine of
the lexical finds, BM25 of the dense finds), so no row is scored as missing;
`rrf` fuses the ranks as they are. Both respect deletions and filters: the
lexical index searches the same live rows the budget did. A `sparse` weight adds
the collection's learned sparse codes (a `--sparse` build) as a third list, fused
as it comes (a row it did not return takes its list's lowest normalised score).

Rows written since the version was built have no lexical index yet (a reindex
builds one): they take part with their dense score and a BM25 score of 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecdial.indexer.errors import BudgetError, InvalidInput
from vecdial.indexer.modes import MODES
from vecdial.indexer.plan.fusion import HybridSpec, fuse, parse_hybrid, union_rows
from vecdial.indexer.plan.rows import Found, RowSpace

# Candidates each signal brings, at least: the depth the default fusion was measured at
# (bench/hybrid_bench.py, top 100 of each signal).
DEPTH = 100


@dataclass(frozen=True)
class Hybrid:
    """One search's fusion: the spec and the query texts the lexical signal reads (nq)."""

    spec: HybridSpec
    texts: tuple[str, ...] | None

    @classmethod
    def of(cls, spec: Any, texts: Sequence[str] | None) -> Hybrid:
        """parse_hybrid(spec) with the texts checked: a lexical weight needs the query as text."""
        parsed = parse_hybrid(spec)
        lexical = parsed.weights.get("lexical", 0.0)
        if lexical > 0 and texts is None:
            if parsed.lexical is None:  # its share came from the rest of 1
                raise InvalidInput(
                    f"hybrid gives lexical (BM25) the share its weights leave ({lexical:g}), and BM25 needs the query as text: "
                    'send text, or give a vector query shares that sum to 1 without it, e.g. {"dense": 0.7, "sparse": 0.3}'
                )
            raise InvalidInput("hybrid with a lexical weight needs the query as text (send text, not a vector)")
        return cls(parsed, tuple(texts) if texts is not None else None)

    @property
    def weights(self) -> dict[str, float]:
        """The share each signal is fused with (signals above 0; they sum to 1)."""
        return self.spec.weights

    def depth(self, k: int) -> int:
        return max(k, DEPTH)

    def describe(self) -> str:
        weights = ",".join(f"{name}={weight:g}" for name, weight in self.weights.items())
        return f"hybrid:{self.spec.method}({weights})"

    def report(self) -> dict:
        """What explain shows: the method and the weights used, e.g. {"method": "rrf", "weights": {"dense": 0.5, "lexical": 0.5}}."""
        return {"method": self.spec.method, "weights": dict(self.weights)}


def fuse_parts(space: RowSpace, query: Any, found: list[Found], hybrid: Hybrid, k: int) -> tuple[list[Found], int]:
    """The parts' dense candidates `found` ((rows, scores) per part of `space`) fused with the
    lexical (and sparse) signal -> per part the fused (rows (nq, k), scores (nq, k)), and the
    candidates fused per query.

    space: the search's row space (plan/rows.py RowSpace), its parts with deletions and any
    filter in `alive` (filters/select.py `masked_parts`); signals are fused over its global rows.
    """
    dense_rows, dense_scores = space.join(found)
    signals = {"dense": (dense_rows, dense_scores)}
    if "lexical" in hybrid.weights:
        lexical = space.version.lexical()
        if lexical is None:
            raise BudgetError(
                "hybrid: this collection has no lexical index (built without texts, or with lexical=false, or before lexical indexes); reindex it with texts"
            )
        texts = list(hybrid.texts or ())
        lex_rows, lex_scores = lexical.search(texts, hybrid.depth(k), alive=space.parts[0].alive)
        if hybrid.spec.method == "weighted":
            union = union_rows(dense_rows, lex_rows)
            in_version = space.split(union)[0]  # segment rows have no lexical index yet: BM25 0
            bm25 = np.where(in_version >= 0, lexical.scores_for(texts, in_version), 0.0).astype(np.float32)
            bm25[union < 0] = -np.inf
            signals = {"dense": (union, _cosines(space, query, union)), "lexical": (union, bm25)}
        else:
            signals["lexical"] = (lex_rows, lex_scores)
    if "sparse" in hybrid.weights:
        signals["sparse"] = _sparse(space, query, hybrid.depth(k))
    rows, scores = fuse(signals, hybrid.spec, k)
    # Candidates per query: weighted scores one union with both signals, rrf ranks each list.
    lists = [signals["dense"]] if hybrid.spec.method == "weighted" else list(signals.values())
    listed = sum(int(np.count_nonzero(listed_rows >= 0)) for listed_rows, _ in lists)
    return space.split_found(rows, scores), listed // max(len(rows), 1)


def _sparse(space: RowSpace, query: Any, depth: int) -> Found:
    """The learned sparse codes' own `depth` best live rows over every part of `space`, as
    global rows (nq, m) and scores, at the collection's full `max_active`: the in-service sparse signal."""
    sparse = MODES["sparse"]
    size = sparse.max_size(space.version)  # BudgetError without sparse codes
    found = []
    for part in space.parts:
        keep = min(depth, part.live)
        if keep == 0:
            found.append((np.full((len(query.unit), 0), -1, dtype=np.int64), np.zeros((len(query.unit), 0), dtype=np.float32)))
            continue
        rows, scores, _ = sparse.candidates(part, query, size, keep)
        found.append((rows, scores))
    return space.join(found)


def _cosines(space: RowSpace, query: Any, rows: np.ndarray) -> np.ndarray:
    """Exact cosine of given global rows (nq, m) of `space` (-1 pads; -inf there) -> (nq, m) float32."""
    dim = space.version.dim
    out = np.full(rows.shape, -np.inf, dtype=np.float32)
    for store, local in zip(space.stores, space.split(rows)):
        if (local >= 0).any():
            scored = store.store("dense").blocks.score_rows(query.rotated, local, dim)
            out = np.where(local >= 0, scored, out)
    return out
