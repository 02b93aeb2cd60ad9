"""What a search returns beside scores, for rows of a view (plan/execute.py's View): ids,
stored texts, payloads.

rows: (nq, k) int, version rows first, then write-segment rows from `version.size` on; -1 pads.
Split from plan/execute.py, which calls these once a search has its rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def ids_of(view: Any, rows: np.ndarray) -> np.ndarray:
    """rows (nq, k): version rows, then segment rows from version.size on; -1 pads."""
    version = view.version
    int_ids = version.manifest.id_kind == "int"
    in_segment = rows >= version.size
    if not in_segment.any() and rows.size and rows.min() >= 0:  # the common case: all found in the version
        picked = version.ids[rows]
        return np.asarray(picked, dtype=np.int64) if int_ids else picked.astype(object)
    out = np.full(rows.shape, -1 if int_ids else None, dtype=np.int64 if int_ids else object)
    in_version = (rows >= 0) & ~in_segment
    if in_version.any():
        picked = np.asarray(version.ids[rows[in_version]])
        out[in_version] = picked if int_ids else picked.astype(object)
    if in_segment.any():
        seg_ids = view.segment.ids
        out[in_segment] = [seg_ids[r] for r in (rows[in_segment] - version.size).tolist()]
    return out


def texts_of(view: Any, rows: np.ndarray, counts: np.ndarray) -> list[list[str | None]]:
    """Per query, each hit's stored text (None for an item stored without one)."""
    version = view.version
    out = []
    for q_rows, n in zip(rows, counts):
        q_rows = q_rows[:n].tolist()
        stored = iter(version.texts([row for row in q_rows if row < version.size]))  # the version's only: one read each
        out.append([next(stored) if row < version.size else view.segment.texts[row - version.size] for row in q_rows])
    return out


def payloads_of(view: Any, rows: np.ndarray, counts: np.ndarray) -> list[list[dict]]:
    """Per query, each hit's payload (JSON-ready; {} for an item without one)."""
    size, table = view.version.size, view.version_payloads()
    segment = view.segment.payload_table if view.segment is not None and (rows >= size).any() else None
    # rows past `size` exist only with a segment
    return [
        [table.payload(r) if r < size else segment.payload(r - size) for r in q_rows[:n].tolist()]  # type: ignore[union-attr]
        for q_rows, n in zip(rows, counts)
    ]
