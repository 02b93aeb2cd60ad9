"""Native thread pools (OpenMP in FAISS, BLAS in numpy) for one search at a time.

A single small query gains nothing from a thread team and loses badly when the
machine is busy: a team of spinning threads waits for cores a neighbour holds
(measured: one `exact` query went from 0.25 ms to 16 ms beside a 2-thread torch
loop). So every search runs single-threaded unless its caller asks for
`threads`, which only batches should. OpenMP's team size is per thread (set once
per thread, then one attribute read); BLAS pools are per process and are limited
once, on the first search.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()
_blas_limited = False
_blas_lock = threading.Lock()


def set_omp_threads(count: int) -> None:
    """This thread's OpenMP team size (FAISS); cheap when it is already `count`."""
    if getattr(_local, "omp_threads", None) != count:
        import faiss

        faiss.omp_set_num_threads(count)
        _local.omp_threads = count


def limit_blas_threads(count: int = 1) -> None:
    """Process-wide BLAS pools (threadpoolctl), once per process."""
    global _blas_limited
    if _blas_limited:
        return
    with _blas_lock:
        if not _blas_limited:
            from threadpoolctl import threadpool_limits

            threadpool_limits(count, user_api="blas")
            _blas_limited = True


def single_threaded() -> None:
    """Make this thread's next search single-threaded: two attribute reads once set."""
    if not _blas_limited:
        limit_blas_threads(1)
    set_omp_threads(1)


@contextmanager
def search_threads(threads: int) -> Iterator[None]:
    """Run one batch search with `threads` native threads, then back to one."""
    from threadpoolctl import threadpool_limits

    limit_blas_threads(1)
    set_omp_threads(threads)
    try:
        with threadpool_limits(threads, user_api="blas"):
            yield
    finally:
        set_omp_threads(1)
