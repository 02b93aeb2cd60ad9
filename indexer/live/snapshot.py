"""What one search of a live collection sees: a version, its deletions, the write segment.

A `LiveSnapshot` is never modified: writers build the next one and swap one
reference, so a search keeps the version and segment it started with even if a
write, a reindex or a swap lands meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vecdial.indexer.live.segment import SegmentView
from vecdial.indexer.plan.execute import Hits, View, search


@dataclass(frozen=True)
class LiveSnapshot:
    """name: the collection's; view: what the executor scans; dead_rows: sorted int64 version
    rows deleted or overwritten; wal_end: bytes of the version's log replayed into it."""

    name: str
    view: View
    wal_end: int
    dead_rows: np.ndarray

    @property
    def version(self) -> Any:
        return self.view.version

    @property
    def version_name(self) -> str:
        return self.view.name

    @property
    def segment(self) -> SegmentView:
        return self.view.segment

    @property
    def size(self) -> int:
        """Live items: version rows not deleted, plus live segment rows."""
        return self.version.size - len(self.dead_rows) + self.segment.live

    def alive_version_rows(self) -> np.ndarray:
        """Version rows still served, ascending."""
        return np.setdiff1d(np.arange(self.version.size), self.dead_rows, assume_unique=True)

    def search(self, queries: np.ndarray, k: int = 10, budget: Any = "exact", *, with_text: bool = False, threads: int | None = None) -> Hits:
        """queries: (dim,) or (nq, dim) float; the best k live items per query under the budget."""
        return search(self.view, queries, k, budget, with_text=with_text, threads=threads)
