"""Payload columns: one field's values for every row, with the index a filter resolves through.

Stored as plain arrays (numpy files in a version directory, memory-mapped when opened;
the same classes hold the write segment's rows in RAM):

- numbers and datetimes (`NumberColumn`): values (n,) int64/float64 and a present mask
  (n,) bool; the index is the present rows sorted by value, `order` (m,), with the values
  in that order, `sorted` (m,). A window is two binary searches and a slice of `order`:
  O(log n + matches) rows read, whatever n is.
- keywords (`KeywordColumn`): dictionary-encoded, codes (n,) int32 (-1 null) into `Terms`
  (sorted distinct strings); the index is postings, rows grouped by code (`postings`,
  `starts`): one keyword's rows are one slice.
- keyword lists (`KeywordsColumn`): codes of every list, concatenated, with `offsets`
  (n+1,); postings as for keywords, each row once per distinct keyword.

A column answers a condition with pieces of rows that meet it (int64 arrays: slices of
its index, read in place), and says whether each piece is ascending; filters/match.py
turns them into a row list or a mask, whichever is cheaper.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecdial.indexer.filters.values import from_micros

_EMPTY = np.zeros(0, dtype=np.int64)


class Terms:
    """Distinct keywords in code point order, as one UTF-8 blob (B,) uint8 and offsets (T+1,) int64."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self.blob, self.offsets = blob, offsets

    @classmethod
    def from_strings(cls, strings: list[str]) -> Terms:
        """strings: sorted and distinct."""
        encoded = [s.encode("utf-8") for s in strings]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _bytes(self, code: int) -> bytes:
        return self.blob[int(self.offsets[code]) : int(self.offsets[code + 1])].tobytes()

    def __getitem__(self, code: int) -> str:
        return self._bytes(code).decode("utf-8")

    def strings(self) -> list[str]:
        data = self.blob.tobytes()
        return [data[a:b].decode("utf-8") for a, b in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist())]

    def find(self, value: str) -> int:
        """The code of `value`, -1 if no row holds it: a binary search, O(log T) terms read."""
        key = value.encode("utf-8")
        at = bisect.bisect_left(_Keys(self), key)
        return at if at < len(self) and self._bytes(at) == key else -1


class _Keys:
    def __init__(self, terms: Terms):
        self.terms = terms

    def __len__(self) -> int:
        return len(self.terms)

    def __getitem__(self, i: int) -> bytes:
        return self.terms._bytes(i)


def encode_terms(values: list[str]) -> tuple[Terms, np.ndarray]:
    """Strings -> (their sorted distinct Terms, codes (len(values),) int32)."""
    distinct = sorted(set(values))
    code_of = {s: i for i, s in enumerate(distinct)}
    return Terms.from_strings(distinct), np.fromiter((code_of[v] for v in values), dtype=np.int32, count=len(values))


def postings(codes: np.ndarray, rows: np.ndarray, terms: int) -> tuple[np.ndarray, np.ndarray]:
    """(code, row) entries -> rows grouped by code, each row once per code, ascending within
    a code (m,) int64, and where each code's rows start (terms + 1,) int64."""
    keep = codes >= 0
    pairs = np.unique(codes[keep].astype(np.int64) * (1 << 40) + rows[keep])  # rows < 2**40
    by_code = pairs >> 40
    starts = np.searchsorted(by_code, np.arange(terms + 1), side="left").astype(np.int64)
    return (pairs & ((1 << 40) - 1)).astype(np.int64), starts


@dataclass
class NumberColumn:
    """kind: int | float | datetime (microseconds since 1970 UTC); values (n,) int64 or
    float64, 0 where null; present (n,) bool; order/sorted: the index (see the module)."""

    kind: str
    values: np.ndarray
    present: np.ndarray
    order: np.ndarray | None = None
    sorted: np.ndarray | None = None

    FILES = ("values", "present", "order", "sorted")

    @classmethod
    def from_values(cls, kind: str, values: list) -> NumberColumn:
        """Canonical values (None: null)."""
        present = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
        dtype = np.float64 if kind == "float" else np.int64
        return cls(kind, np.fromiter((0 if v is None else v for v in values), dtype=dtype, count=len(values)), present)

    def index(self) -> tuple[np.ndarray, np.ndarray]:
        """(order, sorted), made on first use."""
        if self.order is None or self.sorted is None:
            rows = np.flatnonzero(self.present)
            self.order = rows[np.argsort(self.values[rows], kind="stable")].astype(np.int64)
            self.sorted = np.ascontiguousarray(self.values[self.order])
        return self.order, self.sorted

    ascending = False  # pieces are in value order

    def window(self, low: float | None, low_open: bool, high: float | None, high_open: bool) -> list[np.ndarray]:
        """The rows whose value is within the bounds (None: unbounded): one slice of `order`,
        found by two binary searches."""
        order, by_value = self.index()
        start = 0 if low is None else int(np.searchsorted(by_value, low, side="right" if low_open else "left"))
        stop = len(by_value) if high is None else int(np.searchsorted(by_value, high, side="left" if high_open else "right"))
        return [order[start:stop] if stop > start else _EMPTY]

    def equal(self, values: list) -> list[np.ndarray]:
        return [piece for v in values for piece in self.window(v, False, v, False)]

    def value(self, row: int) -> Any:
        if not self.present[row]:
            return None
        value = self.values[row]
        return from_micros(int(value)) if self.kind == "datetime" else (float(value) if self.kind == "float" else int(value))

    def take(self, rows: np.ndarray) -> NumberColumn:
        return NumberColumn(self.kind, np.asarray(self.values[rows]), np.asarray(self.present[rows]))

    def arrays(self) -> dict[str, np.ndarray]:
        order, by_value = self.index()
        return {"values": self.values, "present": self.present, "order": order, "sorted": by_value}

    @classmethod
    def from_arrays(cls, kind: str, arrays: dict[str, np.ndarray]) -> NumberColumn:
        return cls(kind, arrays["values"], arrays["present"], arrays["order"], arrays["sorted"])

    def concat(self, other: NumberColumn) -> NumberColumn:
        return NumberColumn(self.kind, np.concatenate([self.values, other.values]), np.concatenate([self.present, other.present]))


class _Postings:
    """The index of keywords and of keyword lists: `postings`, rows grouped by code, and
    `starts`, where each code's rows start (see the module)."""

    terms: Terms
    codes: np.ndarray
    postings: np.ndarray | None
    starts: np.ndarray | None

    ascending = True  # each postings slice is

    def _entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(code, row) of every keyword held."""
        raise NotImplementedError

    def index(self) -> tuple[np.ndarray, np.ndarray]:
        """(postings, starts), made on first use."""
        if self.postings is None or self.starts is None:
            self.postings, self.starts = postings(*self._entries(), len(self.terms))
        return self.postings, self.starts

    def equal(self, values: list[str]) -> list[np.ndarray]:
        """Rows holding any of the keywords: one postings slice each."""
        rows, starts = self.index()
        codes = sorted({c for c in (self.terms.find(v) for v in values) if c >= 0})
        return [rows[int(starts[c]) : int(starts[c + 1])] for c in codes]

    def _remapped(self, terms: Terms, code_of: dict[str, int]) -> np.ndarray:
        mapping = np.asarray([code_of[s] for s in self.terms.strings()] + [-1], dtype=np.int32)
        return mapping[self.codes]  # -1 indexes the trailing -1


@dataclass
class KeywordColumn(_Postings):
    """codes (n,) int32 into terms, -1 where null; postings/starts: the index (see the module)."""

    terms: Terms
    codes: np.ndarray
    postings: np.ndarray | None = None
    starts: np.ndarray | None = None

    kind = "keyword"
    FILES = ("blob", "offsets", "codes", "postings", "starts")

    @classmethod
    def from_values(cls, kind: str, values: list) -> KeywordColumn:
        given = [v for v in values if v is not None]
        terms, codes = encode_terms(given)
        out = np.full(len(values), -1, dtype=np.int32)
        out[[i for i, v in enumerate(values) if v is not None]] = codes
        return cls(terms, out)

    def _entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(code, row) of every keyword held: one per row here."""
        return self.codes, np.arange(len(self.codes), dtype=np.int64)

    def value(self, row: int) -> Any:
        code = int(self.codes[row])
        return None if code < 0 else self.terms[code]

    def take(self, rows: np.ndarray) -> KeywordColumn:
        return KeywordColumn(self.terms, np.asarray(self.codes[rows]))

    def arrays(self) -> dict[str, np.ndarray]:
        rows, starts = self.index()
        return {"blob": self.terms.blob, "offsets": self.terms.offsets, "codes": self.codes, "postings": rows, "starts": starts}

    @classmethod
    def from_arrays(cls, kind: str, arrays: dict[str, np.ndarray]) -> KeywordColumn:
        return cls(Terms(arrays["blob"], arrays["offsets"]), arrays["codes"], arrays["postings"], arrays["starts"])

    def concat(self, other: KeywordColumn) -> KeywordColumn:
        terms, code_of = _merged_terms(self.terms, other.terms)
        return KeywordColumn(terms, np.concatenate([self._remapped(terms, code_of), other._remapped(terms, code_of)]))


@dataclass
class KeywordsColumn(_Postings):
    """Lists of keywords: codes (total,) int32 into terms, row i's list codes[offsets[i]:offsets[i+1]];
    present (n,) bool (False: null, not an empty list); postings/starts as for keywords."""

    terms: Terms
    offsets: np.ndarray
    codes: np.ndarray
    present: np.ndarray
    postings: np.ndarray | None = None
    starts: np.ndarray | None = None

    kind = "keywords"
    FILES = ("blob", "term_offsets", "offsets", "codes", "present", "postings", "starts")

    @classmethod
    def from_values(cls, kind: str, values: list) -> KeywordsColumn:
        lists = [v or [] for v in values]
        terms, codes = encode_terms([s for items in lists for s in items])
        offsets = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum([len(items) for items in lists], out=offsets[1:])
        present = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
        return cls(terms, offsets, codes, present)

    def _entries(self) -> tuple[np.ndarray, np.ndarray]:
        return self.codes, np.repeat(np.arange(len(self.present), dtype=np.int64), np.diff(self.offsets))

    def value(self, row: int) -> Any:
        if not self.present[row]:
            return None
        return [self.terms[int(c)] for c in self.codes[int(self.offsets[row]) : int(self.offsets[row + 1])]]

    def take(self, rows: np.ndarray) -> KeywordsColumn:
        rows = np.asarray(rows, dtype=np.int64)
        lengths = np.diff(self.offsets)[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        picks = np.repeat(self.offsets[rows] - offsets[:-1], lengths) + np.arange(offsets[-1])  # each kept list's codes
        return KeywordsColumn(self.terms, offsets, np.asarray(self.codes[picks]), np.asarray(self.present[rows]))

    def arrays(self) -> dict[str, np.ndarray]:
        rows, starts = self.index()
        return {
            "blob": self.terms.blob,
            "term_offsets": self.terms.offsets,
            "offsets": self.offsets,
            "codes": self.codes,
            "present": self.present,
            "postings": rows,
            "starts": starts,
        }

    @classmethod
    def from_arrays(cls, kind: str, arrays: dict[str, np.ndarray]) -> KeywordsColumn:
        terms = Terms(arrays["blob"], arrays["term_offsets"])
        return cls(terms, arrays["offsets"], arrays["codes"], arrays["present"], arrays["postings"], arrays["starts"])

    def concat(self, other: KeywordsColumn) -> KeywordsColumn:
        terms, code_of = _merged_terms(self.terms, other.terms)
        offsets = np.concatenate([self.offsets, other.offsets[1:] + self.offsets[-1]])
        codes = np.concatenate([self._remapped(terms, code_of), other._remapped(terms, code_of)])
        return KeywordsColumn(terms, offsets, codes, np.concatenate([self.present, other.present]))


def _merged_terms(a: Terms, b: Terms) -> tuple[Terms, dict[str, int]]:
    distinct = sorted(set(a.strings()) | set(b.strings()))
    return Terms.from_strings(distinct), {s: i for i, s in enumerate(distinct)}


Column = NumberColumn | KeywordColumn | KeywordsColumn
COLUMN_OF: dict[str, type[NumberColumn] | type[KeywordColumn] | type[KeywordsColumn]] = {
    "int": NumberColumn,
    "float": NumberColumn,
    "datetime": NumberColumn,
    "keyword": KeywordColumn,
    "keywords": KeywordsColumn,
}


def concat(first: Column, then: Column) -> Column:
    """first's rows, then then's: two columns of one kind."""
    if isinstance(first, NumberColumn) and isinstance(then, NumberColumn):
        return first.concat(then)
    if isinstance(first, KeywordColumn) and isinstance(then, KeywordColumn):
        return first.concat(then)
    if isinstance(first, KeywordsColumn) and isinstance(then, KeywordsColumn):
        return first.concat(then)
    raise TypeError(f"a {first.kind} column cannot be joined to a {then.kind} column")
