"""The filter language: a JSON object parsed into a small typed tree (pure: no data, no I/O).

```
{"module": "os"}                                  shorthand for eq
{"module": {"eq": "os"}}                          equal (for a keyword list: holds it)
{"module": {"in": ["os", "sys"]}}                 any of
{"chars": {"range": {"gte": 100, "lt": 300}}}     numbers and ISO datetimes; gte/gt/lte/lt
{"and": [...]}, {"or": [...]}, {"not": {...}}     combine filters
{"module": "os", "chars": {"range": {"lt": 300}}} several keys: all must hold
```

`parse_filter` checks the shape only; `check_filter` (filters/match.py) checks fields
and value types against a collection's payload schema. Both raise InvalidInput saying
what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vecdial.indexer.errors import InvalidInput

MAX_NODES = 1024
MAX_DEPTH = 32
MAX_IN = 10_000
BOUNDS = ("gte", "gt", "lte", "lt")
SYNTAX = (
    'a filter is an object: {"field": value}, {"field": {"eq": v}}, {"field": {"in": [...]}}, '
    '{"field": {"range": {"gte": a, "lt": b}}}, {"and": [...]}, {"or": [...]} or {"not": {...}}'
)


@dataclass(frozen=True)
class Match:
    """field equals one of `values` (eq is one value; for a keyword list: holds one of them)."""

    field: str
    values: tuple
    op: str = "eq"


@dataclass(frozen=True)
class Window:
    """field within the bounds (None: unbounded on that side)."""

    field: str
    gte: Any = None
    gt: Any = None
    lte: Any = None
    lt: Any = None


@dataclass(frozen=True)
class And:
    children: tuple


@dataclass(frozen=True)
class Or:
    children: tuple


@dataclass(frozen=True)
class Not:
    child: Any


Node = Match | Window | And | Or | Not


def parse_filter(spec: Any) -> Node:
    """A filter object -> its tree; InvalidInput naming the part that is wrong."""
    counter = [0]
    return _parse(spec, "filter", 0, counter)


def _parse(spec: Any, where: str, depth: int, counter: list[int]) -> Node:
    counter[0] += 1
    if counter[0] > MAX_NODES or depth > MAX_DEPTH:
        raise InvalidInput(f"{where}: the filter is too large (at most {MAX_NODES} conditions, {MAX_DEPTH} levels deep)")
    if not isinstance(spec, dict) or not spec:
        raise InvalidInput(f"{where} is {_show(spec)}: {SYNTAX}")
    nodes = [_clause(key, value, f"{where}.{key}", depth, counter) for key, value in spec.items()]
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


def _clause(key: Any, value: Any, where: str, depth: int, counter: list[int]) -> Node:
    if key in ("and", "or"):
        if not isinstance(value, list) or not value:
            raise InvalidInput(f"{where} must be a non-empty list of filters")
        children = tuple(_parse(v, f"{where}[{i}]", depth + 1, counter) for i, v in enumerate(value))
        return And(children) if key == "and" else Or(children)
    if key == "not":
        return Not(_parse(value, where, depth + 1, counter))
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"{where}: field names are non-empty strings")
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise InvalidInput(f'{where} is a list: to match any of several values send {{"{key}": {{"in": [...]}}}}')
        return Match(key, (_scalar(value, where),))
    if not value:
        raise InvalidInput(f"{where} is an empty object: use eq, in or range")
    nodes = [_condition(key, op, operand, f"{where}.{op}") for op, operand in value.items()]
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


def _condition(field: str, op: str, operand: Any, where: str) -> Node:
    if op == "eq":
        return Match(field, (_scalar(operand, where),))
    if op == "in":
        if not isinstance(operand, list) or not operand:
            raise InvalidInput(f"{where} must be a non-empty list of values")
        if len(operand) > MAX_IN:
            raise InvalidInput(f"{where} holds {len(operand)} values: at most {MAX_IN}")
        return Match(field, tuple(_scalar(v, f"{where}[{i}]") for i, v in enumerate(operand)), "in")
    if op == "range":
        if not isinstance(operand, dict) or not operand or set(operand) - set(BOUNDS):
            raise InvalidInput(f"{where} must be an object of bounds: {', '.join(BOUNDS)}")
        if ("gte" in operand and "gt" in operand) or ("lte" in operand and "lt" in operand):
            raise InvalidInput(f"{where}: give at most one lower bound (gte or gt) and one upper bound (lte or lt)")
        return Window(field, **{bound: _scalar(v, f"{where}.{bound}") for bound, v in operand.items()})
    raise InvalidInput(f"{where}: unknown operator {_show(op)}: use eq, in or range")


def _scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (dict, list, tuple, set)):
        raise InvalidInput(f"{where} is {_show(value)}: compare with a string, a number or an ISO 8601 datetime")
    return value


def fields_of(node: Node) -> list[str]:
    """Every field a filter names, in order."""
    if isinstance(node, (Match, Window)):
        return [node.field]
    children = (node.child,) if isinstance(node, Not) else node.children
    return [f for child in children for f in fields_of(child)]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
