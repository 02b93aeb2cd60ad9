"""A filter tree checked against a schema, then evaluated over a payload table to the rows it keeps.

Rows travel as a `RowSet`: a sorted row list while conditions are selective (a keyword's
postings slice, a numeric window's slice of the sorted index: O(matches), no full scan)
and a boolean mask once a full-width operation needs one (`not`, or an `or` with a mask).
`and` intersects lists, or tests a list against a mask, so a selective condition keeps
the whole filter selective. Rows past LIST_SHARE of a part go straight into a mask:
sorting 35k window rows into a list cost more than the search they filter (WordNet).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.filters.columns import NumberColumn
from vecdial.indexer.filters.table import PayloadTable
from vecdial.indexer.filters.tree import And, Match, Node, Not, Or, Window
from vecdial.indexer.filters.values import NUMERIC, check_keyword, to_micros

LIST_SHARE = 1 / 32  # at most this share of a part's rows is kept as a sorted list, more as a mask


class RowSet:
    """Rows of a part of `size` rows: `rows` (m,) ascending int64, or `mask` (size,) bool."""

    def __init__(self, size: int, rows: np.ndarray | None = None, mask: np.ndarray | None = None):
        self.size, self.rows, self.mask = size, rows, mask

    @property
    def count(self) -> int:
        return len(self.rows) if self.rows is not None else int(np.count_nonzero(self.as_mask()))

    def as_mask(self) -> np.ndarray:
        if self.mask is None:
            self.mask = np.zeros(self.size, dtype=bool)
            self.mask[self.rows] = True
        return self.mask

    def as_rows(self) -> np.ndarray:
        if self.rows is None:
            self.rows = np.flatnonzero(self.as_mask()).astype(np.int64)
        return self.rows

    def without(self, dead: np.ndarray | None) -> RowSet:
        """These rows minus the dead ones (dead: (size,) bool or None)."""
        if dead is None:
            return self
        if self.rows is not None:
            return RowSet(self.size, rows=self.rows[~dead[self.rows]])
        return RowSet(self.size, mask=self.mask & ~dead)


def check_filter(node: Node, types: dict[str, str]) -> Node:
    """The tree with every field known and every value in its field's canonical form
    (datetimes as microseconds); InvalidInput naming the field otherwise."""
    if isinstance(node, (And, Or)):
        return replace(node, children=tuple(check_filter(c, types) for c in node.children))
    if isinstance(node, Not):
        return Not(check_filter(node.child, types))
    kind = types.get(node.field)
    if kind is None:
        known = ", ".join(sorted(types)) or "none: this collection holds no payloads"
        raise InvalidInput(f"filter: unknown payload field {node.field!r} (fields: {known})")
    where = f"filter.{node.field}"
    if isinstance(node, Match):
        return replace(node, values=tuple(_value(v, kind, where) for v in node.values))
    if kind not in NUMERIC:
        raise InvalidInput(f"{where}: range needs a number or datetime field; {node.field!r} holds {kind} values (use eq or in)")
    bounds = {b: _value(getattr(node, b), kind, f"{where}.range.{b}") for b in ("gte", "gt", "lte", "lt") if getattr(node, b) is not None}
    return Window(node.field, **bounds)


def _value(value: Any, kind: str, where: str) -> Any:
    if kind in ("keyword", "keywords"):
        if not isinstance(value, str):
            raise InvalidInput(
                f"{where} is {value!r}: the field holds {'keywords' if kind == 'keyword' else 'lists of keywords'}, compare with a string"
            )
        return check_keyword(value, where)
    if kind == "datetime":
        return to_micros(value, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{where} is {value!r}: the field holds {kind} values, compare with a number")
    return value


def evaluate(node: Node, table: PayloadTable) -> RowSet:
    """The rows of `table` a checked filter keeps."""
    size = table.size
    if isinstance(node, (Match, Window)):
        column = table.columns.get(node.field)
        if column is None:
            return RowSet(size, rows=np.zeros(0, dtype=np.int64))
        if isinstance(node, Match):
            return _collect(size, column.equal(list(node.values)), column.ascending)
        assert isinstance(column, NumberColumn)
        low, low_open = (node.gt, True) if node.gt is not None else (node.gte, False)
        high, high_open = (node.lt, True) if node.lt is not None else (node.lte, False)
        return _collect(size, column.window(low, low_open, high, high_open), column.ascending)
    if isinstance(node, Not):
        return RowSet(size, mask=~evaluate(node.child, table).as_mask())
    parts = [evaluate(child, table) for child in node.children]
    if isinstance(node, And):
        return _intersect(parts, size)
    lists = [p.rows for p in parts if p.rows is not None]
    if len(lists) == len(parts):
        return _collect(size, lists, True)
    mask = np.zeros(size, dtype=bool)
    for p in parts:
        mask |= p.as_mask()
    return RowSet(size, mask=mask)


def _collect(size: int, pieces: list[np.ndarray], ascending: bool) -> RowSet:
    """The union of row pieces: a sorted list while it is short, else a mask (no sort)."""
    total = sum(len(p) for p in pieces)
    if total > LIST_SHARE * size:
        mask = np.zeros(size, dtype=bool)
        for piece in pieces:
            mask[piece] = True
        return RowSet(size, mask=mask)
    if len(pieces) == 1:  # one piece holds each row once
        return RowSet(size, rows=np.asarray(pieces[0] if ascending else np.sort(pieces[0]), dtype=np.int64))
    if not pieces:
        return RowSet(size, rows=np.zeros(0, dtype=np.int64))
    return RowSet(size, rows=np.unique(np.concatenate(pieces)).astype(np.int64))


def _intersect(parts: list[RowSet], size: int) -> RowSet:
    lists = sorted((p.rows for p in parts if p.rows is not None), key=len)
    masks = [p.as_mask() for p in parts if p.rows is None]
    if not lists:
        mask = masks[0].copy()
        for m in masks[1:]:
            mask &= m
        return RowSet(size, mask=mask)
    rows = lists[0]
    for other in lists[1:]:
        rows = np.intersect1d(rows, other, assume_unique=True)
    for m in masks:
        rows = rows[m[rows]]
    return RowSet(size, rows=rows)
