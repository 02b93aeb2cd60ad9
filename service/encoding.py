"""Text -> vectors for search and upsert requests: the one place the service calls
`Collection.encode`, so every text request is checked, bounded and timed the same way.

Encoding is the most expensive thing a client can ask for per byte sent (MiniLM on
CPU: ~2-5 ms per short text on the 2-core VM), so besides the per-text limit
(`max_text_chars`) a request's whole batch is capped (`max_encode_chars`).
"""

from __future__ import annotations

import time

import numpy as np

import vecdial
from vecdial import InvalidInput
from vecdial.service import metrics
from vecdial.service.settings import Settings


def check_texts(texts: list[str], settings: Settings, what: str = "text") -> list[str]:
    """Each text non-blank and within max_text_chars."""
    for i, text in enumerate(texts):
        if not text.strip():
            raise InvalidInput(f"{what} {i} is empty: send words to search for")
        if len(text) > settings.max_text_chars:
            raise InvalidInput(f"{what} {i} has {len(text)} characters, over this server's limit of {settings.max_text_chars}: shorten it")
    return texts


def check_encode_budget(texts: list[str], settings: Settings) -> list[str]:
    """The texts one request has encoded, within max_encode_chars in all."""
    total = sum(len(text) for text in texts)
    if total > settings.max_encode_chars:
        raise InvalidInput(
            f"the texts of this request have {total} characters in all, over this server's limit of {settings.max_encode_chars} "
            "per request: send fewer texts per request, or vectors"
        )
    return texts


def encode(collection: vecdial.Collection, texts: list[str], dim: int) -> np.ndarray:
    """(len(texts), dim) float32 from the bundled model, timed into /metrics.

    A collection whose manifest names the bundled model but whose dim is not the model's
    (built from other vectors, mislabelled) cannot take text: a 422, not a broadcast error.
    """
    started = time.perf_counter()
    vectors = collection.encode(texts)
    metrics.ENCODE_SECONDS.observe(time.perf_counter() - started)
    metrics.ENCODE_TEXTS.inc(len(texts))
    if vectors.shape[1] != dim:
        raise InvalidInput(
            f"collection {collection.name!r} has {dim} dims but its declared model encodes text to {vectors.shape[1]}: "
            "text queries and text-only items cannot work on it; send vectors instead"
        )
    return vectors
