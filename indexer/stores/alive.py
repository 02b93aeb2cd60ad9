"""Which rows of a store a search may return: every store masks deletions inside its scan.

A version never changes on disk; rows deleted or overwritten since it was built
are dead. Masking them inside each stage (rather than over-fetching and
filtering afterwards) returns k live hits whenever k exist, whatever the number
of deletions.
"""

from __future__ import annotations

import faiss
import numpy as np


class AliveRows:
    """Rows of a store that searches may return, as a dead mask and as a FAISS selector.

    dead: (N,) bool, True for rows deleted or overwritten since the store was written.
    """

    def __init__(self, dead: np.ndarray):
        self.dead = dead
        self.count = int(dead.size - np.count_nonzero(dead))
        self._bitmap = np.packbits(~dead, bitorder="little")  # kept alive for the selector
        self.selector = faiss.IDSelectorBitmap(dead.size, faiss.swig_ptr(self._bitmap))
        self.params = faiss.SearchParameters()  # the selector as search parameters, made once
        self.params.sel = self.selector
        self._per_cell: tuple[np.ndarray, np.ndarray] | None = None  # (offsets, live rows per cell)

    def live_per_cell(self, offsets: np.ndarray) -> np.ndarray:
        """Live rows in each cell of a partitioning (offsets: (P + 1,) row bounds) -> (P,) int64,
        counted once for the partitioning these rows are stored in."""
        cached = self._per_cell
        if cached is None or cached[0] is not offsets:
            cumulative = np.concatenate([[0], np.cumsum(~self.dead, dtype=np.int64)])
            cached = self._per_cell = (offsets, cumulative[offsets[1:]] - cumulative[offsets[:-1]])
        return cached[1]
