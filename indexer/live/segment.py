"""The write segment: vectors upserted since the serving version was built, in the
version's own store classes.

Rows are rotated with the version's rotation, stored in column blocks of the
version's dtype, binarized with its codec and sparse-coded with its encoder, so
a `SegmentView` is searched by the same stage code as the version (`indexer.modes`)
and scores from both are on one scale: a merged top-k is the top-k of the union.

Rows are append-only: a view is the first `n` rows plus an alive mask, and later
appends never change what an existing view sees (arrays grow by copying, masks
are copied on write). Searches run on views without locks; only the writer path
(one thread at a time) calls `add` and `remove`.
"""

from __future__ import annotations

import threading
from functools import cached_property

import numpy as np

from vecdial.indexer.stores.alive import AliveRows
from vecdial.indexer.stores.binary import BinaryStore
from vecdial.indexer.stores.blocks import BlockStore, prefix_sq_norms, split_blocks
from vecdial.indexer.stores.sparse import SparseIndex


class SegmentView:
    """An immutable snapshot of the first n segment rows, with the stores a search scans.

    ids/texts: lists of at least n items (only the first n belong to the view);
    unit: (n, dim) float32 unit rows as written; dead: (n,) bool.
    """

    def __init__(self, segment: "Segment", n: int, dead: np.ndarray):
        self.segment = segment
        self.size = n
        self.ids = segment.ids
        self.texts = segment.texts
        self.unit = segment._unit[:n]
        self.dead = dead
        self.dense = BlockStore(segment._blocks[:, :n], segment._prefix_sq[:, :n], segment.version.dim)
        self._codes = segment._codes[:n]
        self.live = int(n - np.count_nonzero(dead))

    @cached_property
    def alive(self) -> AliveRows | None:
        return AliveRows(self.dead) if self.live < self.size else None

    @cached_property
    def binary(self) -> BinaryStore:
        return BinaryStore.from_codes(self._codes)

    @cached_property
    def sparse_index(self) -> SparseIndex | None:
        sparse = self.segment.version.sparse
        if sparse is None:
            return None
        units, weights = self.segment.sparse_codes(self.size)
        return SparseIndex.from_codes(units, weights, int(sparse.model.hidden))

    def alive_rows(self) -> np.ndarray:
        return np.flatnonzero(~self.dead)


class Segment:
    """Append-only rows for one version; written by one thread at a time (the WAL writer)."""

    def __init__(self, version):
        self.version = version
        dense = version.dense
        self._blocks = np.zeros((dense.blocks.shape[0], 0, dense.block), dtype=dense.blocks.dtype)
        self._prefix_sq = np.zeros((dense.blocks.shape[0], 0), dtype=np.float32)
        self._unit = np.zeros((0, version.dim), dtype=np.float32)
        self._codes = np.zeros((0, version.binary.code_bytes), dtype=np.uint8)
        self._dead = np.zeros(0, dtype=bool)
        self._n = 0
        self.ids: list = []
        self.texts: list[str | None] = []
        self.row_of: dict = {}
        self._sparse_lock = threading.Lock()
        self._sparse_units: np.ndarray | None = None
        self._sparse_weights: np.ndarray | None = None

    def view(self) -> SegmentView:
        return SegmentView(self, self._n, self._dead[: self._n])

    def add(self, ids: list, unit: np.ndarray, texts: list[str | None] | None) -> None:
        """Append rows encoded exactly as a build encodes them; an id already in the segment
        has its old row killed (last write wins)."""
        old = [self.row_of[i] for i in ids if i in self.row_of]
        if old:
            self._kill(np.asarray(old))
        count = len(ids)
        self._reserve(self._n + count)
        start, stop = self._n, self._n + count
        rotated = self.version.rotation.apply(unit)
        block = self.version.dense.block
        self._blocks[:, start:stop, :] = split_blocks(rotated, block)
        self._prefix_sq[:, start:stop] = prefix_sq_norms(rotated, block)
        self._unit[start:stop] = unit
        self._codes[start:stop] = self.version.binary_codec.encode(unit)
        self.ids.extend(ids)
        self.texts.extend(texts if texts is not None else [None] * count)
        for offset, key in enumerate(ids):
            self.row_of[key] = start + offset
        self._n = stop

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
        capacity = self._dead.shape[0]
        if needed <= capacity:
            return
        capacity = max(needed, 2 * capacity, 64)
        # New arrays, old ones untouched: views made earlier keep reading theirs.
        for name, axis in (("_blocks", 1), ("_prefix_sq", 1), ("_unit", 0), ("_codes", 0), ("_dead", 0)):
            old = getattr(self, name)
            shape = list(old.shape)
            shape[axis] = capacity
            grown = np.zeros(shape, dtype=old.dtype)
            index = (slice(None),) * axis + (slice(0, self._n),)
            grown[index] = old[index]
            setattr(self, name, grown)

    def sparse_codes(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(units, weights), each (n, max_active), best first: the first n rows' sparse codes,
        made by the version's encoder once and cached (only sparse searches need them)."""
        with self._sparse_lock:
            done = 0 if self._sparse_units is None else len(self._sparse_units)
            if done < n:
                units, weights = self.version.sparse.encode(self._unit[done:n])
                parts = [] if self._sparse_units is None else [(self._sparse_units, self._sparse_weights)]
                parts.append((np.asarray(units, dtype=np.int32), np.asarray(weights, dtype=np.float32)))
                self._sparse_units = np.concatenate([u for u, _ in parts])
                self._sparse_weights = np.concatenate([w for _, w in parts])
            return self._sparse_units[:n], self._sparse_weights[:n]  # type: ignore[index]
