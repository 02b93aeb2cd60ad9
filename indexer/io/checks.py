"""Checks on what comes in, before anything is written or acknowledged.

Writes (upsert, delete), builds (`Database.create`, the input readers, a
reindex's export: all through `readers.check_dataset`) and id listings use these,
so every value that would fail later (in the log, the segment, a reindex, a
build) is refused up front with InvalidInput naming the item and what to change:

- ids: integers within int64 ([-2**63, 2**63 - 1]), or non-empty strings of at
  most MAX_ID_CHARS characters, without NUL (numpy's fixed-width strings drop
  trailing NULs, so "a\\0" would become "a" at the next reindex) and without lone
  surrogates (no UTF-8 form, so no log line or file could hold them); each once;
- texts: strings (or None) without lone surrogates;
- vectors: finite, at most MAX_DIM dimensions, with a direction. Rows are
  normalised through a float64 norm (`vectors.normalize_rows`), so components of
  1e20 or 1e-30 keep their direction instead of overflowing the float32 norm to
  inf (and the row to zeros) or underflowing it to 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.vectors import check_finite, normalize_rows

MAX_ID_CHARS = 512  # characters in a string id
MAX_DIM = 8192  # dimensions of a collection's vectors (its PCA rotation alone is MAX_DIM**2 floats)
MAX_PAGE = 10_000  # ids in one `ids()` page
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_ids(ids: Sequence, id_kind: str, what: str = "ids") -> list:
    """Ids as plain Python values of the collection's kind, each once, or InvalidInput."""
    if len(ids) == 0:
        raise InvalidInput(f"no {what} given")
    out = [_id_value(value, f"{what}[{i}]", id_kind) for i, value in enumerate(ids)]
    if len(set(out)) != len(out):
        raise InvalidInput("an id appears twice in one request: send each id once")
    return out


def _id_value(value: Any, where: str, id_kind: str) -> Any:
    if id_kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InvalidInput(f"{where} is {_show(value)}: this collection has integer ids")
        number = int(value)
        if not INT64_MIN <= number <= INT64_MAX:
            raise InvalidInput(f"{where} is {number}: integer ids must fit in 64 bits (-2**63 to 2**63-1)")
        return number
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{where} is {_show(value)}: this collection has non-empty string ids")
    _check_string_id(value, where)
    return value


def _check_string_id(value: str, where: str) -> None:
    if len(value) > MAX_ID_CHARS:
        raise InvalidInput(f"{where} has {len(value)} characters: string ids hold at most {MAX_ID_CHARS}")
    if "\x00" in value:
        raise InvalidInput(f"{where} contains a NUL character (\\u0000): remove it from the id")
    _check_encodable(value, where)


def _check_encodable(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"{where} contains a lone surrogate (U+{ord(value[exc.start]):04X} at character {exc.start}), which has no UTF-8 form: "
            "send valid Unicode (pair the surrogate or drop it)"
        ) from None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_vectors(vectors: np.ndarray, count: int, dim: int) -> np.ndarray:
    """(count, dim) finite vectors with a direction -> float32 unit rows, or InvalidInput saying which row."""
    try:
        with np.errstate(over="ignore"):  # a value past float32's range becomes inf, refused below
            x = np.asarray(vectors, dtype=np.float32)
    except (ValueError, TypeError):
        raise InvalidInput("vectors must be a (n, dim) array of numbers, with rows of one length") from None
    if x.ndim == 1 and count == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] != count:
        raise InvalidInput(f"got {x.shape[0] if x.ndim else 0} vectors for {count} ids: send one vector per id")
    if x.shape[1] != dim:
        raise InvalidInput(f"vectors have {x.shape[1]} dimensions, the collection has {dim}")
    check_finite(x, "vector")
    return normalize_rows(x, "vector")


def check_texts(texts: Sequence | None, count: int) -> list[str | None] | None:
    """One text (or None) per id, each valid Unicode, or InvalidInput."""
    if texts is None:
        return None
    if len(texts) != count:
        raise InvalidInput(f"got {len(texts)} texts for {count} ids: send one text (or null) per id")
    out = list(texts)
    check_text_values(out)
    return out


def check_text_values(texts: Sequence[str | None], what: str = "texts") -> None:
    """Every item a string (or None) with a UTF-8 form; one pass in C when they all have one."""
    strings = [t for t in texts if t is not None]
    if not all(isinstance(t, str) for t in strings):
        bad = next(i for i, t in enumerate(texts) if t is not None and not isinstance(t, str))
        raise InvalidInput(f"{what}[{bad}] is {_show(texts[bad])}: texts must be strings or null")
    try:
        "".join(strings).encode("utf-8")
    except UnicodeEncodeError:
        for i, text in enumerate(texts):
            if text is not None:
                _check_encodable(text, f"{what}[{i}]")


def check_page(after: Any, limit: int, id_kind: str) -> tuple[Any, int]:
    """An id listing's cursor (None or an id of the collection's kind) and page size (1..MAX_PAGE)."""
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit is {_show(limit)}: list between 1 and {MAX_PAGE} ids per page")
    return (None if after is None else _id_value(after, "after", id_kind)), int(limit)


def id_array(ids: Sequence | np.ndarray, what: str = "ids") -> np.ndarray:
    """Build ids as an int64 or str array, every value checked as a write's would be.

    A list is checked item by item before numpy sees it (numpy would drop a
    trailing NUL); an array is checked vectorised (`check_id_array`).
    """
    if isinstance(ids, np.ndarray):
        if ids.dtype.kind == "O":
            return id_array(ids.tolist(), what)
        return check_id_array(ids, what)
    values = list(ids)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        for i, v in enumerate(values):
            _id_value(v, f"{what}[{i}]", "int")
        return check_id_array(np.asarray(values, dtype=np.int64), what)
    if all(isinstance(v, str) for v in values):
        if "\x00" in "".join(values):
            bad = next(i for i, v in enumerate(values) if "\x00" in v)
            _check_string_id(values[bad], f"{what}[{bad}]")
        return check_id_array(np.asarray(values, dtype=str), what)
    raise InvalidInput(f"{what} must be all integers or all strings")


def check_id_array(ids: np.ndarray, what: str = "ids") -> np.ndarray:
    """An (N,) array of build ids -> int64 or str, or InvalidInput naming the first bad item."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise InvalidInput(f"{what} must be a flat list, got shape {ids.shape}")
    kind = ids.dtype.kind
    if kind == "i":
        return ids.astype(np.int64, copy=False)
    if kind == "u":
        over = np.flatnonzero(ids > INT64_MAX)
        if len(over):
            raise InvalidInput(f"{what}[{over[0]}] is {ids[over[0]]}: integer ids must fit in 64 bits (-2**63 to 2**63-1)")
        return ids.astype(np.int64)
    if kind != "U":
        raise InvalidInput(f"{what} must be all integers or all strings, got {ids.dtype}")
    if len(ids) == 0:
        return ids
    lengths = np.char.str_len(ids)
    codes = np.ascontiguousarray(ids).view(np.uint32).reshape(len(ids), -1)
    inside = np.arange(codes.shape[1])[None, :] < lengths[:, None]
    problems = [
        (lengths == 0, "is empty: string ids must be non-empty"),
        (lengths > MAX_ID_CHARS, f"is longer than {MAX_ID_CHARS} characters: shorten it"),
        (((codes == 0) & inside).any(axis=1), "contains a NUL character (\\u0000): remove it from the id"),
        (((codes >= 0xD800) & (codes <= 0xDFFF)).any(axis=1), "contains a lone surrogate, which has no UTF-8 form: send valid Unicode"),
    ]
    for bad, message in problems:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InvalidInput(f"{what}[{row}] {message}")
    return ids
