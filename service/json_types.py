"""JSON values as the HTTP API reads them, and the JSON Schema that says so.

JSON has one number type and no integers beyond what a double holds exactly; Python's
`True == 1`. So: a whole number written `5.0` is the integer 5 (as JSON Schema's
`integer` says) while it is exact; true/false are never numbers or ids; an id is a 64-bit
integer or a string; a collection name follows the library's rule. Each type carries the
schema the OpenAPI document shows, so the document describes what the server accepts.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainValidator, WithJsonSchema

NOT_NULL, _NULL = {"not": {"type": "null"}}, {"type": "null"}
EXACT_FLOAT = 2**53  # beyond it a float may be a rounded literal: orjson reads -2**63-1 as -2**63


def _whole_number(value: Any) -> Any:
    """JSON has one number type: `5.0` is the integer 5, as JSON Schema's `integer` says (so an int
    field takes it, up to 2**53, where floats stop being exact); `true` is not a number, and
    `5.5` or `"5"` are not integers."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_FLOAT else value


WholeNumber = BeforeValidator(_whole_number)
Integer = Annotated[int, WholeNumber]

NOT_BLANK = r"\S"  # a text has a character that is not whitespace

# The collection name rule of the library (`vecdial` checks it again): no '..' anywhere, in a
# pattern without look-ahead so that any JSON Schema tool can read it.
NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.[A-Za-z0-9_-])*\.?$"
NAME_DESCRIPTION = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit, without '..'"
CollectionName = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=64, description=NAME_DESCRIPTION)]

# The library's id limits (`vecdial` checks them again on every write): 64-bit integers, or strings.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_ID_CHARS = 512


def _id(value: Any) -> int | str:
    """An id as sent: an int within 64 bits or a string. JSON true/false are not ids (Python's
    `True == 1` would make `{"id": true}` overwrite id 1), and neither is a number with a fraction
    or beyond 64 bits (JSON reads those as floats)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is not an id: send an integer (-2**63 to 2**63-1) or a string")
    if isinstance(value, float):
        if not math.isfinite(value) or not INT64_MIN <= value < 2**63:
            raise ValueError(f"the number {value!r} is beyond 64 bits: integer ids are whole numbers from -2**63 to 2**63-1, or strings")
        if not value.is_integer():
            raise ValueError(f"the number {value!r} has a fraction: integer ids are whole numbers from -2**63 to 2**63-1, or strings")
        if abs(value) >= EXACT_FLOAT:
            raise ValueError(
                f"the number {value!r} reads as a float, so it may have been rounded (an integer literal beyond 64 bits, or one "
                "written with a point or an exponent): integer ids are -2**63 to 2**63-1, written as plain integers"
            )
        value = int(value)  # JSON's 5.0 is the integer 5
    if not isinstance(value, int):
        raise ValueError("send an integer (-2**63 to 2**63-1) or a string")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{value} does not fit in 64 bits: integer ids are -2**63 to 2**63-1")
    return value


_INT_ID = {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}
_STR_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}
ONE_ID_KIND = {"anyOf": [{"type": "array", "items": _INT_ID}, {"type": "array", "items": _STR_ID}, _NULL]}
Id = Annotated[
    int | str,
    PlainValidator(_id),
    WithJsonSchema({"anyOf": [_INT_ID, _STR_ID]}),
    Field(description="Item id: a 64-bit integer or a string, as the collection was built with (one kind per collection)."),
]


def _no_booleans(value: Any) -> Any:
    """A budget's or hybrid's JSON form holds numbers and names, never true/false (which the
    library's lax models would read as 1 and 0): refused, naming where."""
    pending = [((), value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, bool):
            raise ValueError(f"{'.'.join(map(str, where)) or 'it'} is {str(item).lower()}: knobs are numbers or names, not true/false")
        if isinstance(item, dict):
            pending.extend(((*where, key), inner) for key, inner in item.items())
        elif isinstance(item, list):
            pending.extend(((*where, i), inner) for i, inner in enumerate(item))
    return value


NoBooleans = BeforeValidator(_no_booleans)


def exactly_one_of(*groups: tuple[str, ...]) -> dict[str, Any]:
    """JSON Schema `oneOf` saying a body sends the fields of exactly one group (each non-null), the others absent or null."""
    fields = [field for group in groups for field in group]
    return {
        "oneOf": [
            {"required": list(group), "properties": {field: NOT_NULL if field in group else _NULL for field in fields}} for group in groups
        ]
    }


def one_form_of(*forms: tuple[tuple[str, ...], tuple[str, ...]]) -> dict[str, Any]:
    """JSON Schema `oneOf` over a body's forms, each (the fields it sends, non-null; the fields it
    must leave absent or null). Fields named in neither may come with any form."""
    return {
        "oneOf": [
            {"required": list(sent), "properties": {**{field: NOT_NULL for field in sent}, **{field: _NULL for field in left_out}}}
            for sent, left_out in forms
        ]
    }
