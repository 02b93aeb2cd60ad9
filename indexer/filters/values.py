"""Payload values: the five field types, how a type is inferred, and how a value is checked.

A payload is a dict of field -> value per item. Every value is checked here (at create,
upsert and in filters) and turned into its canonical form, so the WAL, the write segment,
a build and a filter all hold the same thing:

| type | accepts | canonical |
|---|---|---|
| `keyword` | a string | str |
| `int` | an integer within int64 (or an integral float) | int |
| `float` | a finite number | float |
| `datetime` | a `datetime`/`date`, or an ISO 8601 string starting `YYYY-MM-DD` | int, microseconds since 1970 UTC |
| `keywords` | a list of strings | list[str] |

A field keeps one type per collection: the type is inferred from the values a field
first arrives with (all integers -> int, any float -> float, strings that are all ISO
dates -> datetime, other strings -> keyword, lists -> keywords) and later values must
fit it. None (or a missing key) is null. Anything else is InvalidInput naming the item.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import numpy as np

from vecdial.indexer.errors import InvalidInput

TYPES = ("keyword", "int", "float", "datetime", "keywords")
NUMERIC = ("int", "float", "datetime")
MAX_FIELDS = 256  # fields per collection
MAX_KEYWORD_CHARS = 1024
MAX_LIST = 1024  # keywords in one list value
RESERVED = ("and", "or", "not")
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ].*)?$")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def check_field_name(name: Any, where: str = "payload") -> str:
    if not isinstance(name, str) or not FIELD_NAME.fullmatch(name) or name in RESERVED:
        raise InvalidInput(
            f"{where}: field name {_show(name)} is not allowed: use 1-64 letters, digits, '_', '.' or '-', "
            f"starting with a letter or '_', and not {', '.join(RESERVED)}"
        )
    return name


def infer_type(values: list, field: str) -> str | None:
    """The type a field's first values give it (None: all null)."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    if any(isinstance(v, (list, tuple)) for v in present):
        return "keywords"
    if all(_is_int(v) for v in present):
        return "int"
    if all(_is_number(v) for v in present):
        return "float"
    if all(isinstance(v, (dt.date, np.datetime64)) or (isinstance(v, str) and ISO_DATE.match(v)) for v in present):
        return "datetime"
    if all(isinstance(v, str) for v in present):
        return "keyword"
    kinds = [(i, _kind(v)) for i, v in enumerate(values) if v is not None]
    bad = next((i for i, kind in kinds if kind == "other"), None)
    if bad is not None:
        raise InvalidInput(f"payloads[{bad}].{field} is {_show(values[bad])}: {_TYPES_HINT}")
    first = kinds[0][1]
    odd = next(i for i, kind in kinds if kind != first)
    raise InvalidInput(f"payloads[{odd}].{field} is {_show(values[odd])}, earlier values are {first}s: a field keeps one type")


def canonical(value: Any, kind: str, where: str) -> Any:
    """`value` checked against the field's type, in canonical form (None stays None)."""
    if value is None:
        return None
    if kind == "keyword":
        return check_keyword(value, where)
    if kind == "int":
        if _is_int(value):
            number = int(value)
        elif _is_number(value) and math.isfinite(float(value)) and float(value).is_integer():
            number = int(float(value))
        else:
            raise InvalidInput(f"{where} is {_show(value)}: the field holds integers")
        if not INT64_MIN <= number <= INT64_MAX:
            raise InvalidInput(f"{where} is {number}: integers must fit in 64 bits")
        return number
    if kind == "float":
        if not _is_number(value) or not math.isfinite(float(value)):
            raise InvalidInput(f"{where} is {_show(value)}: the field holds finite numbers")
        return float(value)
    if kind == "datetime":
        return to_micros(value, where)
    if kind == "keywords":
        if not isinstance(value, (list, tuple)):
            raise InvalidInput(f'{where} is {_show(value)}: the field holds lists of keywords (send ["a", "b"])')
        if len(value) > MAX_LIST:
            raise InvalidInput(f"{where} holds {len(value)} keywords: at most {MAX_LIST}")
        return [check_keyword(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise InvalidInput(f"{where}: unknown field type {kind!r}")


def check_keyword(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{where} is {_show(value)}: the field holds keywords (strings)")
    if len(value) > MAX_KEYWORD_CHARS:
        raise InvalidInput(f"{where} has {len(value)} characters: keywords hold at most {MAX_KEYWORD_CHARS}")
    if "\x00" in value:
        raise InvalidInput(f"{where} contains a NUL character (\\u0000): remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{where} contains a lone surrogate, which has no UTF-8 form: send valid Unicode") from None
    return value


def to_micros(value: Any, where: str) -> int:
    """A datetime, date, numpy datetime64 or ISO 8601 string -> microseconds since 1970 UTC
    (a time without a zone is taken as UTC)."""
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[us]").astype(np.int64))
    if isinstance(value, str):
        if not ISO_DATE.match(value):
            raise InvalidInput(f"{where} is {_show(value)}: send an ISO 8601 date or time, e.g. 2024-05-01 or 2024-05-01T12:00:00Z")
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"{where} is {_show(value)}: not a valid ISO 8601 date or time") from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"{where} is {_show(value)}: the field holds datetimes (ISO 8601 strings)")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> str:
    """Microseconds since 1970 UTC -> an ISO 8601 string with its zone, as hits return it."""
    return (EPOCH + dt.timedelta(microseconds=int(micros))).isoformat()


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return _is_int(value) or isinstance(value, (float, np.floating))


def _kind(value: Any) -> str:
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (dt.date, np.datetime64)):
        return "datetime"
    return "other"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPES_HINT = "payload values are strings (keywords), integers, finite numbers, ISO 8601 datetimes or lists of strings"
