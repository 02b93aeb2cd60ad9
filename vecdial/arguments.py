"""The front door's argument checks: a value of the wrong type is InvalidInput naming the
argument and what to pass, never a bare TypeError from deep inside numpy or a tokenizer.

Values of the right type are checked further where they are used (ids against the
collection's id kind, vectors against its dim, budgets by the budget parser).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.io.checks import check_text_values


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def whole(value: Any, name: str, low: int, high: int | None = None) -> int:
    """An int (a numpy integer too, never a bool) in low..high -> int, or InvalidInput."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise InvalidInput(f"{name} is {_show(value)}: use a whole number {span}")
    return int(value)


def number(value: Any, name: str, low: float, high: float) -> float:
    """A finite int or float (never a bool) in low..high -> float, or InvalidInput."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise InvalidInput(f"{name} is {_show(value)}: use a number from {low:g} to {high:g}")
    return float(value)


def listed(value: Any, name: str, example: str) -> list:
    """A list, tuple or 1-d array of values -> list; InvalidInput for anything else, a lone
    string above all (a string is a sequence of characters: "abc" would be three ids)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple, np.ndarray, range)) or np.ndim(value) != 1:
        raise InvalidInput(f"{name} is {_show(value)}: pass a list, e.g. {example}")
    return list(value)


def texts(value: Any, name: str) -> list[str]:
    """A list of strings, each with a UTF-8 form (no lone surrogates) -> list, or InvalidInput."""
    values = listed(value, name, '["parse a date string"]')
    check_text_values(values, name)
    if any(t is None for t in values):
        raise InvalidInput(f"{name}[{values.index(None)}] is None: send a string for every query")
    return values


def text(value: Any, name: str) -> str:
    """One string with a UTF-8 form, or InvalidInput."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} is {_show(value)}: pass a string")
    check_text_values([value], name)
    return value


def path(value: Any, name: str) -> Any:
    """A str or os.PathLike, or InvalidInput."""
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidInput(f"{name} is {_show(value)}: pass a path (a str or pathlib.Path)")
    return value


def name(value: Any, what: str = "name") -> str:
    """A collection's name as a str (its pattern is checked by disk/collection.validate_name)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} is {_show(value)}: a collection's name is a string, e.g. 'docs'")
    return value


def one_of(value: Any, name: str, kinds: tuple[type, ...], expected: str) -> Any:
    """`value` if it is an instance of `kinds` (or None), else InvalidInput saying what is `expected`."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
        raise InvalidInput(f"{name} is {_show(value)}: pass {expected}")
    return value
