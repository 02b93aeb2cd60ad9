"""The row space of one search: the version's rows, then the rows written since, numbered as one.

A search sees two stores (plan/execute.py's View): the serving version and the live write
segment, each numbering its own rows 0..size-1 and each searched by the same stage code.
Between stages and in what a search returns, a row has one global number: version row r
is r, segment row r is `version.size + r`. `RowSpace` is the one owner of that numbering:
the offsets, joining per-part results into global rows, splitting global rows back into
(part, local row), and each part's deleted rows (`Part.alive`). Nothing else adds or
subtracts `version.size`.

Shapes: a part's result is (rows (nq, m) int64 local rows, scores (nq, m) float32); -1 pads
a row that is not there (its score is -inf, or whatever the stage left there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from vecdial.indexer.filters.table import PayloadTable
from vecdial.indexer.modes.base import Part

Found = tuple[np.ndarray, np.ndarray]  # one part's (rows (nq, m) local, scores (nq, m))


@dataclass(frozen=True)
class RowSpace:
    """The rows one search sees. Never modified: share it between threads.

    version: the serving Version, its rows global rows 0..version.size-1; segment: the
    write segment's view (live/segment.py SegmentView), its row r global row
    version.size + r, or None; parts: what a stage scans, in that order: the version's
    rows, then the segment's when it has live ones, each with its dead rows (deleted,
    overwritten, or cut by a filter: `masked`) in `Part.alive`.
    """

    version: Any
    segment: Any
    parts: tuple[Part, ...]

    @classmethod
    def of(cls, version: Any, alive: Any = None, segment: Any = None) -> RowSpace:
        """The space of `version` minus the rows dead in `alive` (AliveRows, None: all live),
        followed by `segment`'s rows (its own deletions in `segment.alive`)."""
        parts = [Part(version, alive)]
        if segment is not None and segment.live:
            parts.append(Part(segment, segment.alive))
        return cls(version, segment, tuple(parts))

    def masked(self, parts: Sequence[Part]) -> RowSpace:
        """The same space whose parts are `parts` (one per part, in order: e.g. with a filter in `alive`)."""
        if len(parts) != len(self.parts):
            raise ValueError(f"{len(parts)} parts for a space of {len(self.parts)}")
        return replace(self, parts=tuple(parts))

    # -- numbering -----------------------------------------------------------------------------

    @property
    def stores(self) -> tuple[Any, ...]:
        """What holds the rows, in global order: (version,) or (version, segment)."""
        return (self.version,) if self.segment is None else (self.version, self.segment)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Per store, the global number of its row 0: (0,) or (0, version.size)."""
        return (0,) if self.segment is None else (0, self.version.size)

    @property
    def size(self) -> int:
        """Global rows, live or dead: version.size plus the segment's rows."""
        return self.version.size + (0 if self.segment is None else self.segment.size)

    @property
    def single(self) -> bool:
        """Whether the version alone holds the rows a stage scans (no live segment rows)."""
        return len(self.parts) == 1

    def indexed(self, part: Part) -> bool:
        """Whether `part` is the version's: only its rows are in the partitions' cells and in the graph."""
        return part.stores is self.version

    def all_in_version(self, rows: np.ndarray) -> bool:
        """Whether every one of these global rows (any shape) is a version row, with no pads: the common case."""
        return bool(rows.size) and rows.min() >= 0 and (self.segment is None or rows.max() < self.version.size)

    def join(self, found: Sequence[Found]) -> Found:
        """Per part (rows (nq, m_i) local, scores (nq, m_i)) -> (rows (nq, sum m_i) global, scores),
        the parts side by side in order; -1 pads stay -1."""
        rows, scores = found[0]
        if len(found) == 1:
            return rows, scores
        rows = np.hstack([rows, *(np.where(r >= 0, r + offset, -1) for (r, _), offset in zip(found[1:], self.offsets[1:]))])
        return rows, np.hstack([s for _, s in found])

    def split(self, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        """Global rows (any shape, -1 pads) -> per store the local rows (same shape, int64), -1
        where the row is another store's or a pad."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.segment is None:
            return (np.where(rows >= 0, rows, -1),)
        size = self.version.size
        return np.where((rows >= 0) & (rows < size), rows, -1), np.where(rows >= size, rows - size, -1)

    def split_found(self, rows: np.ndarray, scores: np.ndarray) -> list[Found]:
        """Global (rows (nq, m), scores (nq, m)) -> per part (rows (nq, m) local, scores (nq, m)
        float32), -1 / -inf where the row is another part's or a pad: the inverse of `join`."""
        out = []
        for local in self.split(rows)[: len(self.parts)]:
            out.append((local, np.where(local >= 0, scores, -np.inf).astype(np.float32)))
        return out

    def locate(self, row: int) -> tuple[int, int]:
        """One global row -> (store: 0 the version, 1 the segment; its local row)."""
        size = self.version.size
        return (0, row) if row < size else (1, row - size)

    # -- what the parts hold -------------------------------------------------------------------

    @property
    def version_live(self) -> int:
        """Version rows a stage scans (not deleted; not filtered out, once `masked`)."""
        return self.parts[0].live

    @property
    def segment_live(self) -> int:
        """Segment rows a stage scans."""
        return self.parts[1].live if len(self.parts) > 1 else 0

    @property
    def version_dead(self) -> int:
        """Version rows a stage skips: deleted or overwritten since the build (and filtered out, once `masked`)."""
        return self.version.size - self.parts[0].live

    @property
    def live(self) -> int:
        """Rows a stage scans over every part."""
        return sum(part.live for part in self.parts)

    def payload_table(self, store: int) -> PayloadTable:
        """Store `store`'s payloads as columns (a version built without payloads: an empty table of its size)."""
        if store:
            return self.segment.payload_table
        table = self.version.payloads
        return table if table.size == self.version.size else PayloadTable(self.version.size)

    def payload_tables(self) -> list[PayloadTable]:
        """One payload table per part, in order (for filters/select.py)."""
        return [self.payload_table(i) for i in range(len(self.parts))]
