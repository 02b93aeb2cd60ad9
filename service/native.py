"""Native thread pools (BLAS, OpenMP) sized for a server that is already multi-threaded.

The service gets its parallelism from request threads. If every request thread
also starts a BLAS or OpenMP team, a 2-core machine runs dozens of spinning
threads and a 0.5 ms search takes 40 ms. BLAS pools are process-wide and set
once; OpenMP's thread count is a per-thread setting, kept by the library's own
per-thread record (`vecdial.indexer.native`), so the service and the searches it
runs never disagree about a thread's team size.
"""

from __future__ import annotations

from vecdial._internal import set_omp_threads


def limit_native_threads(count: int) -> None:
    """Process-wide: BLAS pools (via threadpoolctl, if installed) and this thread's OpenMP."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - OPENBLAS_NUM_THREADS etc. set by `vecdial serve` still apply
        pass
    else:
        threadpool_limits(count)
    ensure_thread_limits(count)


def ensure_thread_limits(count: int) -> None:
    """This thread's OpenMP team size (FAISS); cheap after the first call in a thread."""
    set_omp_threads(count)
