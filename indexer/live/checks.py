"""Checks on what a write brings in: ids of the collection's kind, each once; finite, non-zero vectors."""

from __future__ import annotations

import numpy as np

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.vectors import check_finite, normalize_rows


def check_ids(ids: list, id_kind: str) -> list:
    """Ids as plain Python values of the collection's kind, each once, or InvalidInput."""
    if len(ids) == 0:
        raise InvalidInput("no ids given")
    out: list = []
    for i, value in enumerate(ids):
        if id_kind == "int":
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise InvalidInput(f"ids[{i}] is {value!r}: this collection has integer ids")
            out.append(int(value))
        else:
            if not isinstance(value, str) or not value:
                raise InvalidInput(f"ids[{i}] is {value!r}: this collection has non-empty string ids")
            out.append(value)
    if len(set(out)) != len(out):
        raise InvalidInput("an id appears twice in one request: send each id once")
    return out


def check_vectors(vectors: np.ndarray, count: int, dim: int) -> np.ndarray:
    """(count, dim) finite, non-zero vectors -> float32 unit rows, or InvalidInput saying which row."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim == 1 and count == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] != count:
        raise InvalidInput(f"got {x.shape[0] if x.ndim else 0} vectors for {count} ids: send one vector per id")
    if x.shape[1] != dim:
        raise InvalidInput(f"vectors have {x.shape[1]} dimensions, the collection has {dim}")
    check_finite(x, "vector")
    return normalize_rows(x, "vector")


def check_texts(texts: list | None, count: int) -> list[str | None] | None:
    """One text (or None) per id, or InvalidInput."""
    if texts is None:
        return None
    if len(texts) != count:
        raise InvalidInput(f"got {len(texts)} texts for {count} ids: send one text (or null) per id")
    if any(t is not None and not isinstance(t, str) for t in texts):
        raise InvalidInput("texts must be strings or null")
    return list(texts)
