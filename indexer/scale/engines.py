"""Engines: who runs a build's per-row passes (cells, then codes) over the steps in `encode.py`.

The driver always fits the codecs on the sample, orders the rows cell by cell and commits
(manifest, fsync, the atomic swap): an engine only computes. `InProcess` is the reference
(one batch a shard, here, in order: the same files the plain build loop writes); the Ray
engine (`ray_engine.py`) runs the same shards as tasks and is loaded only when asked for,
so nothing imports Ray unless `ray=` is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.scale.encode import assign_cells, encode_in_loop


class Engine(Protocol):
    """Runs a build's per-row passes; each pass returns or writes exactly what the plain loop would."""

    def cells(self, vectors: Any, centroids: np.ndarray, batch_size: int, show_progress: bool) -> np.ndarray:
        """The nearest cell of every input row: (N,) int64. centroids: (P, dim) unit float32."""

    def encode(self, vectors: Any, order: np.ndarray | None, builders: dict[str, Any], batch_size: int, show_progress: bool) -> None:
        """Feed every mode's builder every row, in stored order (input row order[i] at position i)."""

    def encode_texts(self, texts: list[str], show_progress: bool) -> np.ndarray:
        """Texts -> (n, 384) float32 embeddings with the bundled model."""

    def close(self) -> None:
        """Let go of whatever the engine started."""


class InProcess:
    """The split steps run here, one batch a shard: the reference every other engine matches."""

    def cells(self, vectors: Any, centroids: np.ndarray, batch_size: int, show_progress: bool) -> np.ndarray:
        return assign_cells(vectors, 0, centroids, batch_size)

    def encode(self, vectors: Any, order: np.ndarray | None, builders: dict[str, Any], batch_size: int, show_progress: bool) -> None:
        with tqdm(total=len(vectors), desc="encoding", unit="vec", disable=not show_progress) as progress:
            encode_in_loop(vectors, order, builders, batch_size, progress.update)

    def encode_texts(self, texts: list[str], show_progress: bool) -> np.ndarray:
        from vecdial.models.encoder import encode_texts

        return encode_texts(texts, show_progress=show_progress)

    def close(self) -> None:
        pass


def engine_for(ray: str | None) -> Engine | None:
    """The engine a job's `ray` knob asks for: None (the plain in-process build) without one,
    else a connected Ray engine. InvalidInput if Ray is not installed or not reachable."""
    if ray is None:
        return None
    from vecdial.indexer.scale.settings import RaySettings

    settings = RaySettings.from_env(ray)
    try:
        from vecdial.indexer.scale.ray_engine import RayEngine
    except ImportError as exc:
        raise InvalidInput(f"ray={ray!r} needs Ray: pip install 'vecdial[ray]' ({exc})") from None
    return RayEngine(settings)


# The engine of the builds this thread starts inside `running_on`: a create or replace goes
# through several layers (live/, disk/) to build_version, and none of them needs to know.
_CURRENT: ContextVar[Engine | None] = ContextVar("vecdial_build_engine", default=None)


def current_engine() -> Engine | None:
    """The engine `running_on` set for this thread, or None."""
    return _CURRENT.get()


@contextmanager
def running_on(ray: str | None) -> Iterator[Engine | None]:
    """Builds started inside (in this thread) run on the engine `ray` asks for; without one,
    nothing changes. The engine is closed (a local cluster stopped) on the way out."""
    engine = engine_for(ray)
    token = _CURRENT.set(engine)
    try:
        yield engine
    finally:
        _CURRENT.reset(token)
        if engine is not None:
            engine.close()
