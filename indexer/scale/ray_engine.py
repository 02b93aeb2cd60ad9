"""The Ray engine: a build's per-row passes as Ray tasks over shards, text encoding as an actor pool.

Each task gets where to read its rows (the input's path when it is a memory-mapped .npy,
else one object-store copy put by the driver) and which rows, reads them itself and
returns codes (`encode.encode_shard`); the driver writes them into the staged version in
shard order. Nothing is committed here: the driver's build writes the manifest and swaps
only after every shard came back, so a job that cannot finish leaves the old version
serving. A task whose worker dies is run again (`max_retries`); an error in the data
(a NaN row) is not retried and fails the job with the same message as in-process.

Plain tasks over file paths, not Ray Data: on this machine `ray.data.read_numpy` over
the same shard files was several times slower than tasks that `np.load` them
(bench/ray_bench.py measures both), and a build needs exact row positions, which tasks
over [start, stop) ranges give for free.

Hygiene: usage stats off (RAY_USAGE_STATS_ENABLED=0 unless set), a local cluster starts
without the dashboard, with the object store and CPUs from the settings and its files
under `temp_dir`; connecting to a cluster writes nothing on this machine but what Ray's
driver logs into that cluster's temp dir. A cluster with token auth (RAY_AUTH_MODE=token)
needs RAY_AUTH_TOKEN (or its token file) in this process's environment: Ray reads it.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

import numpy as np
import ray
from tqdm.auto import tqdm

from vecdial.indexer.errors import InvalidInput, VecdialError
from vecdial.indexer.scale.encode import ShardCodecs, assign_cells, encode_shard, read_rows, shard_ranges, write_shard
from vecdial.indexer.scale.settings import RaySettings


def _open(source: Any) -> Any:
    """A task's input: a path is memory-mapped here; an array came from the object store."""
    return np.load(source, mmap_mode="r") if isinstance(source, str) else source


def _cells_task(source: Any, start: int, stop: int, centroids: np.ndarray, batch_size: int) -> np.ndarray:
    return assign_cells(np.asarray(_open(source)[start:stop]), start, centroids, batch_size)


def _encode_task(source: Any, start: int, stop: int, wanted: np.ndarray | None, codecs: ShardCodecs) -> dict:
    vectors = _open(source)
    rows = read_rows(vectors, 0, stop - start, wanted) if wanted is not None else np.asarray(vectors[start:stop])
    return encode_shard(rows, start, codecs)


class _TextEncoder:
    """One process holding the bundled model; encodes the chunks it is handed."""

    def __init__(self) -> None:
        from vecdial.models.encoder import load_encoder

        load_encoder()  # loaded once per actor, not per chunk

    def ready(self) -> bool:
        return True

    def encode(self, texts: list[str]) -> np.ndarray:
        from vecdial.models.encoder import encode_texts

        return encode_texts(texts)


class RayEngine:
    """Connects to (or starts) a cluster on first use; `close()` disconnects (stops a local one)."""

    def __init__(self, settings: RaySettings):
        self.settings = settings
        self._started = False
        self.encoders_started_s = 0.0  # how long the last encode_texts waited for its encoders to load

    def connect(self) -> None:
        if ray.is_initialized():
            return
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        s = self.settings
        try:
            if s.address == "local":
                temp = None if s.temp_dir is None else str(s.temp_dir)
                ray.init(
                    num_cpus=s.num_cpus,
                    object_store_memory=s.object_store_memory,
                    include_dashboard=False,
                    _temp_dir=temp,
                    configure_logging=False,
                )
            else:
                _reachable(s.address)
                ray.init(address=s.address, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InvalidInput(f"ray={s.address!r}: cannot reach a Ray cluster there ({exc}); start one with `ray start --head`") from None
        self._started = True

    def close(self) -> None:
        if self._started:
            ray.shutdown()
            self._started = False

    def _window(self) -> int:
        """Tasks kept in flight: enough to keep every CPU busy while the driver writes."""
        return 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))

    def _ordered(self, calls: Iterable[Callable[[], Any]]) -> Iterator[Any]:
        """Submit calls at most a window ahead; yield their results in submission order."""
        pending: deque = deque()
        window = self._window()
        for call in calls:
            pending.append(call())
            if len(pending) >= window:
                yield _get(pending.popleft())
        while pending:
            yield _get(pending.popleft())

    def _source(self, vectors: Any) -> Any:
        """The input as tasks read it: a path every worker memory-maps, or one object-store copy."""
        array = getattr(vectors, "array", vectors)  # a reindex's progress wrapper
        filename = getattr(array, "filename", None)
        if isinstance(array, np.memmap) and filename and str(filename).endswith(".npy"):
            mapped = np.load(filename, mmap_mode="r")
            if mapped.shape == array.shape and mapped.dtype == array.dtype and mapped.offset == array.offset:
                return str(filename)
        return ray.put(np.ascontiguousarray(array))

    def cells(self, vectors: Any, centroids: np.ndarray, batch_size: int, show_progress: bool) -> np.ndarray:
        self.connect()
        source, task = self._source(vectors), ray.remote(_cells_task).options(num_cpus=1, max_retries=self.settings.max_retries)
        ranges = shard_ranges(len(vectors), batch_size, self.settings.shard_rows)
        centroids_ref = ray.put(centroids)
        parts = []
        with tqdm(total=len(vectors), desc="partitioning", unit="vec", disable=not show_progress) as progress:
            for (start, stop), cells in zip(
                ranges, self._ordered(partial(task.remote, source, a, b, centroids_ref, batch_size) for a, b in ranges)
            ):
                parts.append(cells)
                progress.update(stop - start)
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def encode(self, vectors: Any, order: np.ndarray | None, builders: dict[str, Any], batch_size: int, show_progress: bool) -> None:
        self.connect()
        codecs = ShardCodecs.of(builders, batch_size)
        source, codecs_ref = self._source(vectors), ray.put(codecs)
        task = ray.remote(_encode_task).options(num_cpus=1, max_retries=self.settings.max_retries)
        ranges = shard_ranges(len(vectors), batch_size, self.settings.shard_rows)

        def call(start: int, stop: int) -> Callable[[], Any]:
            return lambda: task.remote(source, start, stop, None if order is None else order[start:stop], codecs_ref)

        with tqdm(total=len(vectors), desc="encoding", unit="vec", disable=not show_progress) as progress:
            for (start, stop), codes in zip(ranges, self._ordered(call(a, b) for a, b in ranges)):
                write_shard(builders, codecs, start, codes)
                progress.update(stop - start)

    def encode_texts(self, texts: list[str], show_progress: bool) -> np.ndarray:
        from ray.util import ActorPool

        self.connect()
        s = self.settings
        chunks = [texts[i : i + s.text_chunk] for i in range(0, len(texts), s.text_chunk)]
        count = max(1, min(s.encoders or int(ray.cluster_resources().get("CPU", 1)), len(chunks)))
        actor = ray.remote(_TextEncoder).options(num_cpus=1, max_restarts=s.max_retries, max_task_retries=s.max_retries)
        # Each encoder holds a CPU while it lives: they go when the texts are done, so the
        # build's tasks that follow get every CPU.
        encoders = [actor.remote() for _ in range(count)]
        try:
            start = time.perf_counter()
            ray.get([encoder.ready.remote() for encoder in encoders])
            self.encoders_started_s = time.perf_counter() - start
            pool = ActorPool(encoders)
            out = []
            with tqdm(total=len(texts), desc="encoding texts", unit="text", disable=not show_progress) as progress:
                for vectors in pool.map(lambda a, chunk: a.encode.remote(chunk), chunks):
                    out.append(vectors)
                    progress.update(len(vectors))
        except ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None
        finally:
            for encoder in encoders:
                ray.kill(encoder)
        return np.concatenate(out) if out else np.empty((0, 384), dtype=np.float32)


def _reachable(address: str) -> None:
    """Fail in seconds, not after Ray's minutes of reconnecting, when nothing listens at host:port."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {host}:{port}: {exc}") from None


def _get(ref: Any) -> Any:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        raise _cause(exc) from None


def _cause(exc: Exception) -> Exception:
    """The library error a task raised (so the CLI and HTTP map it as in-process), else the Ray error."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, VecdialError) else exc
