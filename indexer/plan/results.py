"""What a search returns: its hits (`Hits`) and how it spent its budget (`Explain`)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    built, for `auto` the calibration it was chosen on, and for a filter how it was applied
    (`strategy`: rows or mask, `matched_rows`: live rows it kept, `ms`)."""

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

    def to_dict(self) -> dict:
        """As dataclasses.asdict, written out: asdict deep-copies every field, ~0.1 ms a search."""
        return {
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
        }


@dataclass(frozen=True)
class Hits:
    """Best first, per query. ids: (nq, k) array of the collection's ids (int64, or object
    holding str), scores: (nq, k) float32; where a query found fewer than k hits the row
    is padded (score -inf). texts, payloads: per query, if asked for; features: per query, per
    hit, the sparse features it shares with the query (features/serve.py), if asked for."""

    ids: np.ndarray
    scores: np.ndarray
    found: np.ndarray
    texts: list[list[str | None]] | None
    explain: Explain
    payloads: list[list[dict]] | None = None
    features: list[list[list[dict]]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

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

    def to_dict(self) -> dict:
        """The JSON shape the CLI prints and the HTTP API returns for a batch."""
        return {"results": [self[q] for q in range(len(self))], "explain": self.explain.to_dict()}
