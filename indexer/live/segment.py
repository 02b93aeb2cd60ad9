"""The write segment: vectors upserted since the serving version was built, kept by every
registered mode exactly as the version's build keeps them.

Each mode (indexer/modes) encodes new rows with the version's own codecs (its
rotation and block dtype, its binary thresholds, its sparse encoder) and serves
them through the same store classes, so a `SegmentView` is searched by the same
stage code as the version and scores from both are on one scale: a merged
top-k is the top-k of the union.

Payloads are kept as canonical dicts (filters/values.py), one per row, with the type of
every field (the version's, and those first written since); a view makes them a payload
table, the shape filters read, when a search first needs it.

Rows are append-only: a view is the first `n` rows plus a dead mask, and later
appends never change what an existing view sees (arrays grow by copying, masks
are copied on write). Searches run on views without locks; only the writer path
(one thread at a time) calls `add` and `remove`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.filters.table import PayloadTable
from vecdial.indexer.modes import MODES
from vecdial.indexer.stores.alive import AliveRows


class SegmentView:
    """An immutable snapshot of the first n segment rows, with each mode's store made on demand.

    ids/texts/payloads: lists of at least n items (only the first n belong to the view);
    unit: (n, dim) float32 unit rows as written; dead: (n,) bool; payload_types: field -> type.
    """

    def __init__(self, segment: Segment, n: int, dead: np.ndarray):
        self.segment = segment
        self.size = n
        self.ids = segment.ids
        self.texts = segment.texts
        self.payloads = segment.payloads
        self.payload_types = dict(segment.types)
        self.unit = segment._unit[:n]
        self.dead = dead
        self.live = int(n - np.count_nonzero(dead))
        self._stores: dict[str, Any] = {}

    def store(self, mode: str) -> Any:
        """That mode's store over this view's rows (made once per view, when first searched)."""
        found = self._stores.get(mode)
        if found is None:
            rows = self.segment.rows.get(mode)
            if rows is None:
                return None
            found = self._stores[mode] = rows.store(self.size)
        return found

    @cached_property
    def payload_table(self) -> PayloadTable:
        """This view's payloads as columns (made once per view, when a filter or a hit first needs them)."""
        return PayloadTable.from_rows(self.payloads[: self.size], self.payload_types)

    @cached_property
    def alive(self) -> AliveRows | None:
        return AliveRows(self.dead) if self.live < self.size else None

    def alive_rows(self) -> np.ndarray:
        return np.flatnonzero(~self.dead)

    @cached_property
    def sorted_live_ids(self) -> np.ndarray:
        """The live rows' ids, sorted (int64 or str): what id listings merge with the version's."""
        ids = [self.ids[r] for r in self.alive_rows()]
        kind = self.segment.version.manifest.id_kind
        return np.sort(np.asarray(ids, dtype=np.int64 if kind == "int" else str))


class Segment:
    """Append-only rows for one version; written by one thread at a time (the WAL writer)."""

    def __init__(self, version: Any):
        self.version = version
        self.rows = {name: rows for name, mode in MODES.items() if (rows := mode.segment_rows(version)) is not None}
        self._unit = np.zeros((0, version.dim), dtype=np.float32)
        self._dead = np.zeros(0, dtype=bool)
        self._n = 0
        self.ids: list = []
        self.texts: list[str | None] = []
        self.payloads: list[dict | None] = []
        self.types: dict[str, str] = dict(version.payloads.types)
        self.row_of: dict = {}

    def view(self) -> SegmentView:
        return SegmentView(self, self._n, self._dead[: self._n])

    def refused(self, writes: list[dict[str, str] | None]) -> list[InvalidInput | None]:
        """Per write, in order (its payload fields: field -> type), InvalidInput if a field's type
        disagrees with the collection's or an earlier write's in the list, else None."""
        held = dict(self.types)
        out: list[InvalidInput | None] = []
        for types in writes:
            wrong = next(((f, held[f], kind) for f, kind in (types or {}).items() if held.get(f, kind) != kind), None)
            if wrong is not None:
                out.append(
                    InvalidInput(
                        f"payload field {wrong[0]!r} holds {wrong[1]} values in this collection, not {wrong[2]}: send {wrong[1]} values"
                    )
                )
                continue
            held.update(types or {})
            out.append(None)
        return out

    def add(
        self, ids: list, unit: np.ndarray, texts: list[str | None] | None, payloads: list | None = None, types: dict | None = None
    ) -> None:
        """Append rows encoded exactly as a build encodes them; an id already in the segment
        has its old row killed (last write wins). Payloads are canonical, typed by `types`
        (checked against the collection's by `refused` before the write was logged)."""
        old = [self.row_of[i] for i in ids if i in self.row_of]
        if old:
            self._kill(np.asarray(old))
        start, stop = self._n, self._n + len(ids)
        self._reserve(stop)
        self._unit[start:stop] = unit
        for rows in self.rows.values():
            rows.add(start, unit)
        self.ids.extend(ids)
        self.texts.extend(texts if texts is not None else [None] * len(ids))
        self.payloads.extend(self._typed(payloads, types) if payloads is not None else [None] * len(ids))
        for offset, key in enumerate(ids):
            self.row_of[key] = start + offset
        self._n = stop

    def _typed(self, payloads: list, types: dict | None) -> list:
        """Payloads with the types recorded; a field whose type disagrees is dropped (checked before
        logging, so only a log written by hand gets here)."""
        types = types or {}
        wrong = {f for f, kind in types.items() if self.types.setdefault(f, kind) != kind}
        if not wrong:
            return payloads
        return [None if p is None else {f: v for f, v in p.items() if f not in wrong} for p in payloads]

    def remove(self, ids: list) -> int:
        """Kill the rows of these ids; return how many were alive."""
        rows = [self.row_of.pop(i) for i in ids if i in self.row_of]
        if rows:
            self._kill(np.asarray(rows))
        return len(rows)

    def _kill(self, rows: np.ndarray) -> None:
        # Copy, never write in place: existing views keep their own masks.
        dead = self._dead.copy()
        dead[rows] = True
        self._dead = dead

    def _reserve(self, needed: int) -> None:
        capacity = len(self._dead)
        if needed <= capacity:
            return
        capacity = max(needed, 2 * capacity, 64)
        # New arrays, old ones untouched: views made earlier keep reading theirs.
        unit = np.zeros((capacity, self._unit.shape[1]), dtype=np.float32)
        dead = np.zeros(capacity, dtype=bool)
        unit[: self._n], dead[: self._n] = self._unit[: self._n], self._dead[: self._n]
        self._unit, self._dead = unit, dead
