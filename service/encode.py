"""Query and item texts -> vectors, with the bundled model, for collections built with it.

A collection built from another model's vectors cannot be searched by text:
the bundled model's vectors would live in a different space and every score
would be meaningless, so that is refused with a message saying to send vectors.
"""

from __future__ import annotations

import numpy as np

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.live.snapshot import LiveSnapshot


def encode_for(snapshot: LiveSnapshot, texts: list[str]) -> np.ndarray:
    """(len(texts), dim) float32 unit vectors for a collection built with the bundled model."""
    from vecdial.models.encoder import MODEL_NAME, encode_texts

    source = snapshot.version.manifest.source_model
    if source != MODEL_NAME:
        raise InvalidInput(
            f"collection {snapshot.name!r} holds vectors from {source or 'an unknown model'}, not the bundled "
            f"{MODEL_NAME}, so it cannot encode text: send `vector` instead of `text`"
        )
    return encode_texts(texts)


def text_queries_supported(snapshot: LiveSnapshot) -> bool:
    from vecdial.models.encoder import MODEL_NAME

    return snapshot.version.manifest.source_model == MODEL_NAME
