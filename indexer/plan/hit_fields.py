"""What a search returns beside scores, for rows of a search's row space (plan/rows.py
RowSpace): ids, stored texts, payloads.

rows: (nq, k) int global rows (the version's, then the write segment's), -1 pads; counts:
(nq,) hits found per query. Split from plan/execute.py, which calls these once a search has its rows.
"""

from __future__ import annotations

import numpy as np

from vecdial.indexer.filters.table import PayloadTable
from vecdial.indexer.plan.rows import RowSpace


def ids_of(space: RowSpace, rows: np.ndarray) -> np.ndarray:
    """rows (nq, k) global, -1 pads -> (nq, k) ids: int64 (-1 pads) or object (None pads)."""
    version = space.version
    int_ids = version.manifest.id_kind == "int"
    if space.all_in_version(rows):  # the common case
        picked = version.ids[rows]
        return np.asarray(picked, dtype=np.int64) if int_ids else picked.astype(object)
    out = np.full(rows.shape, -1 if int_ids else None, dtype=np.int64 if int_ids else object)
    for store, local in enumerate(space.split(rows)):
        there = local >= 0
        if not there.any():
            continue
        if store:
            seg_ids = space.segment.ids
            out[there] = [seg_ids[r] for r in local[there].tolist()]
        else:
            picked = np.asarray(version.ids[local[there]])
            out[there] = picked if int_ids else picked.astype(object)
    return out


def texts_of(space: RowSpace, rows: np.ndarray, counts: np.ndarray) -> list[list[str | None]]:
    """Per query, each hit's stored text (None for an item stored without one)."""
    out = []
    for q_rows, n in zip(rows, counts):
        located = [space.locate(row) for row in q_rows[:n].tolist()]
        stored = iter(space.version.texts([row for store, row in located if store == 0]))  # the version's only: one read each
        out.append([next(stored) if store == 0 else space.segment.texts[row] for store, row in located])
    return out


def payloads_of(space: RowSpace, rows: np.ndarray, counts: np.ndarray) -> list[list[dict]]:
    """Per query, each hit's payload (JSON-ready; {} for an item without one)."""
    tables: dict[int, PayloadTable] = {}

    def payload(store: int, row: int) -> dict:
        table = tables.get(store)
        if table is None:
            table = tables[store] = space.payload_table(store)  # the segment's is made when a hit first needs it
        return table.payload(row)

    return [[payload(*space.locate(r)) for r in q_rows[:n].tolist()] for q_rows, n in zip(rows, counts)]
