"""Vectors in request bodies -> float32 arrays, checked once on the array.

A JSON list becomes an array in one `np.asarray` call: validating 384 floats one
by one is what made a search body expensive. `vector_b64` / `vectors_b64` carry
the raw little-endian float32 bytes, base64-encoded (4/3 of the binary size, no
float parsing at all). Either way the checks run on the array: numbers only,
one dimension, finite. A string that is not base64 raises the `base64_invalid`
error, which the error map turns into a 400 like malformed JSON.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import numpy as np
from pydantic import PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from vecdial import InvalidInput

FLOAT32_LE = np.dtype("<f4")
# base64 of a whole number of 4-byte values: 16 characters per 3 values, then 8 (one value) or 12 (two)
BASE64_FLOAT32 = r"^(?:[A-Za-z0-9+/]{16})*(?:[A-Za-z0-9+/]{6}==|[A-Za-z0-9+/]{11}=)?$"


def array_from_list(value: Any) -> np.ndarray:
    """A JSON list of numbers -> (n,) float32; ValueError saying what to send otherwise."""
    if isinstance(value, np.ndarray):
        array = value
    else:
        if not isinstance(value, list):
            raise ValueError("send a list of numbers")
        try:
            array = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            raise ValueError("send a flat list of numbers (no strings or nested lists)") from None
        if array.ndim == 1 and not np.isfinite(array).all():  # numpy reads null as NaN: name it
            first = int(np.flatnonzero(~np.isfinite(array))[0])
            if value[first] is None:
                raise ValueError(f"holds null at index {first}: send numbers only")
    return _checked(array)


def array_from_b64(value: Any) -> np.ndarray:
    """base64 of little-endian float32 bytes -> (n,) float32."""
    if not isinstance(value, str):
        raise ValueError("send a base64 string of little-endian float32 bytes")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PydanticCustomError(
            "base64_invalid", "is not valid base64 ({reason}): send little-endian float32 bytes, base64-encoded", {"reason": str(exc)}
        ) from None
    if len(raw) % 4:
        raise ValueError(f"decodes to {len(raw)} bytes, not a whole number of float32 values (4 bytes each)")
    return _checked(np.frombuffer(raw, dtype=FLOAT32_LE).astype(np.float32, copy=False))


def _checked(array: np.ndarray) -> np.ndarray:
    if array.ndim != 1:
        raise ValueError(f"send one flat list of numbers, got shape {array.shape}")
    if array.size == 0:
        raise ValueError("is empty: send the collection's dim of numbers")
    if not np.isfinite(array).all():
        raise ValueError(
            f"contains NaN or infinite values (first at index {int(np.flatnonzero(~np.isfinite(array))[0])}): send finite numbers"
        )
    return array


def matrix_from_b64(value: np.ndarray, dim: int, collection_dim: int) -> np.ndarray:
    """`vectors_b64` with its `dim` -> (n, dim) float32."""
    if dim != collection_dim:
        raise InvalidInput(f"dim={dim}, the collection has {collection_dim} dims: send {collection_dim}-dim vectors")
    if len(value) % dim:
        raise InvalidInput(f"vectors_b64 holds {len(value)} numbers, not a whole number of {dim}-dim vectors: send n * {dim}")
    return value.reshape(-1, dim)


FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINY = 1.5e-45  # just above half the smallest float32 subnormal: smaller numbers become 0
Vector = Annotated[
    np.ndarray,
    PlainValidator(array_from_list),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX},
            "minItems": 1,
            "contains": {"anyOf": [{"minimum": FLOAT32_TINY}, {"maximum": -FLOAT32_TINY}]},  # a direction: not all zeros as float32
            "description": "Embedding: its length must equal the collection's dim.",
        }
    ),
]
VectorB64 = Annotated[
    np.ndarray,
    PlainValidator(array_from_b64),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": BASE64_FLOAT32,
            "minLength": 1,
            "description": "The same embedding as base64 of little-endian float32 bytes (dim * 4 bytes): no float parsing.",
        }
    ),
]
