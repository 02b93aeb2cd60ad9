"""Blocking work (searches, encodes) run in the thread pool under the request's deadline.

A thread cannot be killed, so at `request_timeout_s` the client is answered (504) and
the work is abandoned, not stopped: it keeps its thread-pool slot until it really
ends, so the pool never runs more than `threads` pieces of work at once, and
`vecdial_overrunning_work` counts those still running past their deadline. Waiting
for a slot counts against the same deadline: a request that gets none in time is a
503 (busy), so a saturated server answers instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from vecdial.service import metrics

T = TypeVar("T")


class Busy(Exception):
    """No worker thread came free before the deadline (503)."""


class TimedOut(Exception):
    """The work ran past the deadline (504); it may still finish in the background."""


_unbounded: anyio.CapacityLimiter | None = None


def _spawn_limiter() -> anyio.CapacityLimiter:
    """The slot is taken from the default limiter by hand (and held past an abandon), so the
    hop itself must not take a second one."""
    global _unbounded
    if _unbounded is None:
        _unbounded = anyio.CapacityLimiter(1 << 20)
    return _unbounded


async def run_within(seconds: float, func: Callable[[], T], what: str, after_timeout: str) -> T:
    """func() in the thread pool; Busy or TimedOut (with `after_timeout` said to the client) past `seconds`."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    holder = object()
    deadline = anyio.current_time() + seconds
    with anyio.move_on_after(seconds) as waiting:
        await limiter.acquire_on_behalf_of(holder)
    if waiting.cancelled_caught:
        metrics.TIMEOUTS.labels(what, "busy").inc()
        raise Busy(
            f"every worker thread of this server stayed busy for request_timeout_s={seconds:g} s: retry later, "
            "or send cheaper requests (a smaller k, a cheaper budget, fewer queries)"
        )
    loop = asyncio.get_running_loop()
    lock = threading.Lock()
    state = {"done": False, "abandoned": False}

    def work() -> T:
        try:
            return func()
        finally:
            with lock:
                state["done"] = True
                if state["abandoned"]:
                    metrics.OVERRUNNING.dec()
            try:
                loop.call_soon_threadsafe(limiter.release_on_behalf_of, holder)
            except RuntimeError:  # the loop closed meanwhile (shutdown): nothing left to release
                pass

    with anyio.move_on_after(max(deadline - anyio.current_time(), 0.0)):
        return await anyio.to_thread.run_sync(work, abandon_on_cancel=True, limiter=_spawn_limiter())
    with lock:
        if not state["done"]:
            state["abandoned"] = True
            metrics.OVERRUNNING.inc()
    metrics.TIMEOUTS.labels(what, "timeout").inc()
    raise TimedOut(f"this {what} took longer than this server's request_timeout_s={seconds:g} s: {after_timeout}")
