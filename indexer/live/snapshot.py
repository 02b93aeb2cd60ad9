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
        return self.view.rows.live

    def alive_version_rows(self) -> np.ndarray:
        """Version rows still served, ascending."""
        return np.setdiff1d(np.arange(self.version.size), self.dead_rows, assume_unique=True)

    def search(self, queries: np.ndarray, k: int = 10, budget: Any = "exact", **options: Any) -> Hits:
        """queries: (dim,) or (nq, dim) float; the best k live items per query under the budget.
        options: SearchOptions' fields past k and budget (with_text, threads, filter, with_payload, hybrid,
        steer, explain_features; see plan/options.py)."""
        return search(self.view, queries, k, budget, **options)


class IdIndex:
    """A version's ids sorted once: user id -> version row by binary search (no per-id Python
    objects), and the sorted order id listings page through. order: (n,) rows by id; sorted: (n,) ids."""

    def __init__(self, ids: np.ndarray):
        ids = np.asarray(ids)
        self.order = np.argsort(ids, kind="stable")
        self.sorted = ids[self.order]

    def rows(self, keys: list) -> np.ndarray:
        """Version rows of keys, -1 where a key is not in the version."""
        if len(self.sorted) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        wanted = np.asarray(keys)
        pos = np.minimum(np.searchsorted(self.sorted, wanted), len(self.sorted) - 1)
        found = self.sorted[pos] == wanted
        return np.where(found, self.order[pos], -1).astype(np.int64)


def page_ids(index: IdIndex, dead_rows: np.ndarray, segment: SegmentView, after: Any, limit: int) -> tuple[list, Any]:
    """One page of a snapshot's live ids: version rows not deleted and live segment rows.

    Sorted order (numeric for integer ids, by code point for string ids), not write
    order: a cursor is the last id of a page, so paging stays exact across writes
    made between pages (an id written meanwhile appears iff it sorts after the
    cursor; no id is listed twice). Returns (up to `limit` ids greater than `after`,
    the cursor for the next page or None when none is left). O(limit) per page
    over the version, plus a sort of the live segment ids once per snapshot.
    """
    want = limit + 1  # one more than a page tells whether another page follows
    start = 0 if after is None else int(np.searchsorted(index.sorted, after, side="right"))
    picked: list[np.ndarray] = []
    found = 0
    while found < want and start < len(index.sorted):
        stop = min(start + max(2 * want, 1024), len(index.sorted))
        alive = ~np.isin(index.order[start:stop], dead_rows)
        chunk = index.sorted[start:stop][alive]
        picked.append(chunk)
        found += len(chunk)
        start = stop
    from_segment = segment.sorted_live_ids
    if after is not None:
        from_segment = from_segment[int(np.searchsorted(from_segment, after, side="right")) :]
    merged = np.concatenate([*picked, from_segment[:want]]) if picked else from_segment[:want]
    merged = np.sort(merged, kind="stable")[:want]
    page = merged[:limit].tolist()
    return page, (page[-1] if len(merged) > limit else None)
