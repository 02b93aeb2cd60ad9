"""Torch thread counts chosen by the caller and restored afterwards.

torch's intra-op thread count is process state: under the OpenMP backend
each OS thread keeps its own, and threads that start using torch later begin
from the last value set anywhere. A library call that set it would leave the
caller's later torch ops running with its choice, so training and encoding
set it only inside :func:`torch_threads`, which puts the previous value back.

Without an explicit count, ``OMP_NUM_THREADS`` is respected when set (the
server exports it; torch reads it only once, at start-up), else torch's
current setting is left alone.

Encoding a handful of queries is far too little work to share: a thread team
costs more to wake and join than the product it splits, and on a loaded
machine its spinning threads steal the cores other requests need. Batches of
fewer than :data:`SMALL_BATCH` rows run on one thread.

Cost (torch 2.13, OpenMP + MKL, 2 cores): ``torch.get_num_threads()`` 0.04 us,
``torch.set_num_threads`` 0.14 us, a set-to-1-and-restore pair 0.3-0.5 us, all
of :func:`torch_threads` 0.8-1.3 us; encoding one query (384 -> 3072 units)
takes ~400 us on one thread and 1.4-2.7 ms on two when the cores are busy.
"""

from __future__ import annotations

import os

import torch

SMALL_BATCH = 64  # fewer rows than this encode on one thread


def env_threads() -> int | None:
    """The first count in ``OMP_NUM_THREADS`` ("4" or "4,2"), or None if unset or invalid."""
    raw = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    try:
        count = int(raw)
    except ValueError:
        return None
    return count if count > 0 else None


def resolve_threads(threads: int | None) -> int | None:
    """``threads`` if given, else ``OMP_NUM_THREADS`` if set, else None (keep torch's)."""
    if threads is not None:
        if threads <= 0:
            raise ValueError(f"threads must be positive, got {threads}")
        return int(threads)
    return env_threads()


class torch_threads:  # noqa: N801 - used like a function: ``with torch_threads(n):``
    """Run the block with ``threads`` torch threads (None: see :func:`resolve_threads`).

    ``with`` yields the count in effect. The previous count is restored on
    exit; when it already matches, torch is not touched at all. A class (as
    ``torch.no_grad`` is) rather than a generator: entering and leaving costs
    0.8-1.3 us instead of 1.5-1.8 us, on a path where every microsecond shows.
    """

    __slots__ = ("threads", "previous")

    def __init__(self, threads: int | None) -> None:
        self.threads = threads
        self.previous: int | None = None

    def __enter__(self) -> int:
        current = torch.get_num_threads()
        wanted = resolve_threads(self.threads)
        if wanted is None or wanted == current:
            return current
        torch.set_num_threads(wanted)
        self.previous = current
        return wanted

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            torch.set_num_threads(self.previous)
            self.previous = None


def encoding_threads(n_rows: int, threads: int | None) -> int | None:
    """Threads for encoding ``n_rows`` rows: ``threads`` if given, 1 for a small batch."""
    if threads is None and n_rows < SMALL_BATCH:
        return 1
    return threads
