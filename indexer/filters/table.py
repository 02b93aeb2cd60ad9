"""A payload table: every payload field of a set of rows, as columns, and how it is stored.

In a version directory a table is `payload_schema.json` (the fields, in order, with their
types and the row count) and `payload_<i>_<array>.npy` per field i (see columns.py),
memory-mapped when opened: a filter reads the index slices it needs, a hit's payload
reads its row. The write segment holds its rows' payloads as canonical dicts and makes
a table of them when a search first needs one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vecdial.indexer.errors import CorruptIndex, InvalidInput
from vecdial.indexer.filters.columns import COLUMN_OF, Column, concat
from vecdial.indexer.filters.values import MAX_FIELDS, canonical, check_field_name, infer_type

SCHEMA_FILE = "payload_schema.json"


class PayloadTable:
    """types: field -> type (values.TYPES); columns: field -> its column over `size` rows.
    A field the table does not hold is null in every row."""

    def __init__(self, size: int, types: dict[str, str] | None = None, columns: dict[str, Column] | None = None):
        self.size = size
        self.types = dict(types or {})
        self.columns = dict(columns or {})

    # -- making one ------------------------------------------------------------------------

    @classmethod
    def from_dicts(cls, payloads: list | None, size: int, known: dict[str, str] | None = None) -> PayloadTable:
        """One dict (or None) per row, checked and typed (InvalidInput naming the item)."""
        types, rows = check_payloads(payloads, size, known or {})
        return cls.from_rows(rows, types)

    @classmethod
    def from_columns(cls, columns: dict[str, list], size: int) -> PayloadTable:
        """Field -> one value per row (None: null), as the Parquet and JSONL readers give them."""
        rows: list[dict] = [{} for _ in range(size)]
        for field, values in columns.items():
            for row, value in zip(rows, values):
                if value is not None:
                    row[field] = value
        return cls.from_dicts(rows, size)

    @classmethod
    def from_rows(cls, rows: list[dict | None], types: dict[str, str]) -> PayloadTable:
        """Canonical rows (already checked) -> columns of the given types."""
        columns = {}
        for field, kind in types.items():
            values = [None if row is None else row.get(field) for row in rows]
            if any(v is not None for v in values):
                columns[field] = COLUMN_OF[kind].from_values(kind, values)
        return cls(len(rows), types, columns)

    def take(self, rows: np.ndarray) -> PayloadTable:
        """The table of the given rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return PayloadTable(len(rows), self.types, {f: c.take(rows) for f, c in self.columns.items()})

    def concat(self, other: PayloadTable) -> PayloadTable:
        """This table's rows, then other's (a field missing on one side is null there)."""
        types = {**self.types, **other.types}
        columns = {}
        for field, kind in types.items():
            mine, theirs = self.column_or_null(field, kind), other.column_or_null(field, kind)
            columns[field] = concat(mine, theirs)
        return PayloadTable(self.size + other.size, types, columns)

    def column_or_null(self, field: str, kind: str) -> Column:
        found = self.columns.get(field)
        return found if found is not None else COLUMN_OF[kind].from_values(kind, [None] * self.size)

    # -- reading ---------------------------------------------------------------------------

    def payload(self, row: int) -> dict[str, Any]:
        """Row's payload as JSON-ready values (datetimes as ISO 8601 strings); nulls left out."""
        out = {}
        for field, column in self.columns.items():
            value = column.value(row)
            if value is not None:
                out[field] = value
        return out

    # -- disk ------------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the schema and every column's arrays (with their indexes) into `directory`."""
        if not self.columns:
            return
        fields = []
        for i, (field, column) in enumerate(self.columns.items()):
            fields.append({"name": field, "type": self.types[field]})
            for name, array in column.arrays().items():
                np.save(directory / f"payload_{i}_{name}.npy", np.ascontiguousarray(array))
        (directory / SCHEMA_FILE).write_text(json.dumps({"count": self.size, "fields": fields}, indent=1), encoding="utf-8")

    @classmethod
    def open(cls, directory: Path, count: int) -> PayloadTable:
        """The table of a version (memory-mapped); an empty one if it was built without payloads.
        CorruptIndex naming the file if the arrays do not match the schema."""
        path = directory / SCHEMA_FILE
        if not path.is_file():
            return cls(count)
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
            fields = [(f["name"], f["type"]) for f in schema["fields"]]
            if schema["count"] != count or any(kind not in COLUMN_OF for _, kind in fields):
                raise ValueError(f"{schema['count']} rows or types {[k for _, k in fields]} do not fit a version of {count} rows")
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptIndex(f"{directory}: file {SCHEMA_FILE} cannot be read ({exc}); rebuild the index") from None
        columns = {}
        for i, (field, kind) in enumerate(fields):
            kind_class = COLUMN_OF[kind]
            arrays = {
                name: np.asarray(np.load(directory / f"payload_{i}_{name}.npy", mmap_mode="r", allow_pickle=False))
                for name in kind_class.FILES
            }
            rows = arrays["present"] if "present" in arrays else arrays["codes"]
            if len(rows) != count:
                raise CorruptIndex(f"{directory}: payload field {field!r} holds {len(rows)} rows, the version {count}; rebuild the index")
            columns[field] = kind_class.from_arrays(kind, arrays)
        return cls(count, dict(fields), columns)


def check_payloads(payloads: list | None, count: int, known: dict[str, str]) -> tuple[dict[str, str], list[dict | None]]:
    """Payloads of `count` items (one dict or None each) -> (field -> type of every field they
    hold, the payloads in canonical form). A field in `known` keeps its type; a new one takes
    the type its values give it. InvalidInput naming the item for anything else."""
    if payloads is None:
        return {}, [None] * count
    if isinstance(payloads, dict) or len(payloads) != count:
        raise InvalidInput(
            f"got {1 if isinstance(payloads, dict) else len(payloads)} payloads for {count} items: send one payload (or null) per item"
        )
    fields: dict[str, list] = {}
    for i, payload in enumerate(payloads):
        if payload is None:
            continue
        if not isinstance(payload, dict):
            raise InvalidInput(f"payloads[{i}] is {type(payload).__name__}: send an object of field -> value")
        for field in payload:
            if field not in fields:
                fields[field] = [None] * count
                check_field_name(field, f"payloads[{i}]")
            fields[field][i] = payload[field]
    types = {}
    for field, values in fields.items():
        kind = known.get(field) or infer_type(values, field)
        if kind is None:
            continue
        types[field] = kind
        fields[field] = [canonical(v, kind, f"payloads[{i}].{field}") for i, v in enumerate(values)]
    if len({**known, **types}) > MAX_FIELDS:
        raise InvalidInput(f"a collection holds at most {MAX_FIELDS} payload fields")
    rows = [None if p is None else {f: fields[f][i] for f in types if fields[f][i] is not None} for i, p in enumerate(payloads)]
    return types, rows


def write_payloads(directory: Path, table: PayloadTable | None, order: np.ndarray | None) -> None:
    """A build's payload files: the input's rows in stored order (`order`: the input row at each
    stored position, None: as given). Nothing for an input without payloads."""
    if table is not None:
        (table if order is None else table.take(order)).save(directory)
