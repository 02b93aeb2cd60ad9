"""The shards of a sharded collection as this process holds them: opened on first use, taken
out of service when one fails (tried again after RETRY_DOWN_S), and called at once on a small
thread pool (vecdial/sharded.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from vecdial.collection import Collection
from vecdial.indexer.disk.layout import shard_name
from vecdial.indexer.errors import Unavailable, VecdialError

if TYPE_CHECKING:
    from vecdial.api import Database

log = logging.getLogger("vecdial.sharded")

RETRY_DOWN_S = 5.0  # a shard that failed to open is tried again after this long, not on every request
# One-query searches whose shards answer in under this run the shards in turn on the calling
# thread: handing a query to a pool thread and back cost 0.4-0.5 ms of GIL handoffs on a loaded
# 2-core VM (measured on the demo set in 2 shards: p50 0.53-0.81 ms in turn, 0.95-0.98 ms at
# once), more than a short shard search gains from running beside the others. Longer ones
# (their kernels release the GIL) run at once on the pool.
SERIAL_MS = 2.0
PROBE_EVERY = 16
T = TypeVar("T")


class ShardHandles:
    """Shard i of collection `name` is `db.open(shard_name(i))`; `handles[i]` is None while it is down."""

    def __init__(self, name: str, db: Database, count: int):
        self.name, self.db, self.count = name, db, count
        self.names = [shard_name(i) for i in range(count)]
        self.handles: list[Collection | None] = [None] * count
        self.down: dict[int, tuple[float, str]] = {}  # shard -> (when it failed, why)
        self._lock = threading.Lock()
        # one thread fewer than shards: the calling thread runs the first shard itself
        self._pool = ThreadPoolExecutor(max_workers=max(count - 1, 1), thread_name_prefix=f"vecdial-shards-{name}")
        for shard in range(count):
            try:
                self.handle(shard)
            except Unavailable as exc:
                log.error("%s", exc)

    def damaged(self) -> str | None:
        """Which shards are down, and what is damaged in a live shard's log; or None."""
        notes = [f"shard {self.names[i]}: {why}" for i, (_, why) in sorted(self.down.items())]
        notes += [f"shard {h.name}: {h.damaged}" for h in self.handles if h is not None and h.damaged]
        return "; ".join(notes) or None

    def version(self) -> str:
        """The shards' serving versions joined with '+' (a shard down: '?')."""
        return "+".join(h._live.snapshot().version_name if h is not None else "?" for h in self.handles)

    def every(self) -> list[Collection]:
        """Every shard's handle; Unavailable if one is down (what changes every shard needs all)."""
        return [self.handle(shard) for shard in range(self.count)]

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def handle(self, shard: int) -> Collection:
        """Shard `shard`'s handle, opened on first use; Unavailable if it cannot be opened
        (tried again after RETRY_DOWN_S)."""
        handle = self.handles[shard]
        if handle is not None:
            return handle
        with self._lock:
            down = self.down.get(shard)
            if down is not None and time.monotonic() - down[0] < RETRY_DOWN_S:
                raise Unavailable(down[1])
            try:
                handle = self.handles[shard] = self.db.open(self.names[shard])
            except (VecdialError, OSError) as exc:
                why = f"shard {self.names[shard]} of {self.name!r} is unavailable ({exc})"
                self.down[shard] = (time.monotonic(), why)
                raise Unavailable(why) from None
            self.down.pop(shard, None)
            return handle

    def fail(self, shard: int, exc: BaseException) -> str:
        """Take a shard that failed out of service until it opens again; why, for explain."""
        why = f"shard {self.names[shard]} of {self.name!r} failed ({type(exc).__name__}: {exc})"
        log.error("%s", why, exc_info=not isinstance(exc, VecdialError))
        with self._lock:
            self.handles[shard] = None
            self.down[shard] = (time.monotonic(), why)
        self.db.forget(self.names[shard])
        return why

    def live(self) -> list[Collection]:
        """The handles of the shards up now; Unavailable if none is."""
        handles = []
        for shard in range(self.count):
            try:
                handles.append(self.handle(shard))
            except Unavailable:
                continue
        if not handles:
            raise Unavailable(f"no shard of {self.name!r} is available: {self.damaged()}")
        return handles

    def each(self, shards: Sequence[int], call: Callable[[int], T], *, serial: bool = False) -> list[T]:
        """call(shard) for every shard given, at once: the first on this thread, the others on
        the pool (or all in turn on this thread, if `serial`). The first exception raised is
        raised once all are done."""
        if serial:
            return [call(shard) for shard in shards]
        futures = [self._pool.submit(call, shard) for shard in shards[1:]]
        results, error = [], None
        try:
            results.append(call(shards[0]))
        except BaseException as exc:  # noqa: BLE001 - raised below, after the others finish
            error = exc
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:  # noqa: BLE001
                error = error or exc
        if error is not None:
            raise error
        return results
