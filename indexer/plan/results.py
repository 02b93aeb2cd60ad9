"""What a search returns: its hits (`Hits`) and how it spent its budget (`Explain`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class StageReport:
    stage: str
    candidates: int
    bytes_read: int
    ms: float


@dataclass
class Explain:
    """How a search spent its budget: the budget as run (`auto -> chosen`), the version that
    answered, per stage the candidates kept, bytes read per query and time; the live rows
    searched in the version and in the write segment, the version rows deleted since it was
    built, for `auto` the calibration it was chosen on, for a filter how it was applied
    (`strategy`: rows or mask, `matched_rows`: live rows it kept, `ms`), for a hybrid search
    the fusion used (`method`, `weights`: each signal's share), for a steered search each
    steer key as resolved (`key`, `feature`, `label`, `weight`), for `auto` chosen per query,
    per query what it spent and why (`budget`, difficulty `bin` and `margin`, `expected_recall`).
    Over a sharded collection, `shards` holds each shard's own explain and `partial` says
    whether a shard was missing."""

    budget: str
    version: str
    stages: list[StageReport] = field(default_factory=list)
    bytes_scanned: int = 0
    total_ms: float = 0.0
    version_rows: int = 0
    segment_rows: int = 0
    deleted_rows: int = 0
    calibration: str | None = None
    filter: dict | None = None
    hybrid: dict | None = None
    steer: list[dict] | None = None
    per_query: list[dict] | None = None
    shards: list[dict] | None = None  # a sharded collection's: per shard {shard, ms, explain} or {shard, missing}
    partial: bool | None = None  # a sharded collection's: some shard did not answer (named in `shards`)

    def to_dict(self) -> dict:
        """As dataclasses.asdict, written out: asdict deep-copies every field, ~0.1 ms a search."""
        out = {
            "budget": self.budget,
            "version": self.version,
            "stages": [{"stage": s.stage, "candidates": s.candidates, "bytes_read": s.bytes_read, "ms": s.ms} for s in self.stages],
            "bytes_scanned": self.bytes_scanned,
            "total_ms": self.total_ms,
            "version_rows": self.version_rows,
            "segment_rows": self.segment_rows,
            "deleted_rows": self.deleted_rows,
            "calibration": self.calibration,
            "filter": self.filter,
            "hybrid": self.hybrid,
            "steer": self.steer,
            "per_query": self.per_query,
        }
        if self.shards is not None:
            out["shards"], out["partial"] = self.shards, bool(self.partial)
        return out


@dataclass(frozen=True)
class Hits:
    """Best first, per query. ids: (nq, k) array of the collection's ids (int64, or object
    holding str), scores: (nq, k) float32; where a query found fewer than k hits the row
    is padded (score -inf). explain_of: the `explain` (or a function that builds it). texts, payloads: per query, if asked for; features: per query, per
    hit, the sparse features it shares with the query (features/serve.py), if asked for.

    `ids, scores = hits` unpacks the two arrays, as bm25s' results do; `hits[q]` is query q's
    hits as dicts, `len(hits)` the number of queries.

    Equal scores go to the lower row (the version's rows in stored order, then the write
    segment's), both at the k-th place and in the order listed, in every exact kernel (dense
    scans and rescoring, Hamming, sparse postings). Two differ: RaBitQ's codes and the graph walk
    are searched by FAISS, and which of equally estimated rows reaches the shortlist is FAISS's
    choice (a rescored shortlist is then ordered by the policy above)."""

    ids: np.ndarray
    scores: np.ndarray
    found: np.ndarray
    texts: list[list[str | None]] | None
    explain_of: Explain | Callable[[], Explain] = field(repr=False)
    payloads: list[list[dict]] | None = None
    features: list[list[list[dict]]] | None = None

    @property
    def explain(self) -> Explain:
        """How the search spent its budget. A search may hand over what it measured as a function
        that builds the Explain on first read: a one-query search is cheaper without building
        what nobody reads, and the figures are the same ones, taken during the search."""
        explain = self.explain_of
        if not isinstance(explain, Explain):
            explain = explain()
            object.__setattr__(self, "explain_of", explain)
        return explain

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[np.ndarray]:
        """The arrays (ids, scores), for `ids, scores = hits`.

        Examples
        --------
        >>> hits = Hits(np.array([[3, 1]]), np.array([[0.75, 0.5]], np.float32), np.array([2]), None, Explain("exact", "v000001"))
        >>> ids, scores = hits
        >>> ids.tolist(), scores.tolist()
        ([[3, 1]], [[0.75, 0.5]])
        """
        return iter((self.ids, self.scores))

    def __getitem__(self, query: int) -> list[dict]:
        """Query `query`'s hits as dicts of id, score (and text, payload)."""
        n = int(self.found[query])
        ids, scores = self.ids[query, :n].tolist(), self.scores[query, :n].tolist()
        hits = [{"id": i, "score": s} for i, s in zip(ids, scores)]
        for name, values in (("text", self.texts), ("payload", self.payloads), ("features", self.features)):
            if values is not None:
                for hit, value in zip(hits, values[query]):
                    hit[name] = value
        return hits

    def id_lists(self) -> list[list]:
        """Per query, the ids found (no padding), as Python values."""
        return [self.ids[q, : int(n)].tolist() for q, n in enumerate(self.found)]

    def to_list(self) -> list[list[dict]]:
        """Returns per query its hits best first as plain values, without padding: {"id", "score"},
        and "text", "payload", "features" when the search asked for them.

        Examples
        --------
        >>> hits = Hits(np.array([["a", "b"]], dtype=object), np.array([[0.75, -np.inf]], np.float32), np.array([1]), None, Explain("exact", "v000001"))
        >>> hits.to_list()
        [[{'id': 'a', 'score': 0.75}]]
        """
        return [self[q] for q in range(len(self))]

    def to_arrow(self) -> Any:
        """Returns a pyarrow Table, one row per hit: query (its index), rank (0 = best), id, score,
        and text, payload, features when asked for. ImportError without pyarrow (`parquet` extra).

        Examples
        --------
        >>> hits = Hits(np.array([[3, 1], [1, -1]]), np.array([[0.75, 0.5], [0.25, -np.inf]], np.float32), np.array([2, 1]), None, Explain("exact", "v000001"))
        >>> hits.to_arrow().to_pydict()
        {'query': [0, 0, 1], 'rank': [0, 1, 0], 'id': [3, 1, 1], 'score': [0.75, 0.5, 0.25]}
        """
        try:
            import pyarrow as pa
        except ImportError:
            raise ImportError("Hits.to_arrow needs pyarrow: pip install pyarrow (or vecdial[parquet])") from None
        real = np.arange(self.ids.shape[1]) < np.asarray(self.found)[:, None]  # (nq, k): not padding
        columns: dict[str, Any] = {
            "query": pa.array(np.nonzero(real)[0].astype(np.int32)),
            "rank": pa.array(np.nonzero(real)[1].astype(np.int32)),
            "id": pa.array(self.ids[real].tolist()),
            "score": pa.array(self.scores[real]),
        }
        for name, values in (("text", self.texts), ("payload", self.payloads), ("features", self.features)):
            if values is not None:
                columns[name] = pa.array([value for per_query in values for value in per_query])
        return pa.table(columns)

    def to_dict(self) -> dict:
        """The JSON shape the CLI prints and the HTTP API returns for a batch."""
        return {"results": self.to_list(), "explain": self.explain.to_dict()}
