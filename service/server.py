"""Running the app under uvicorn: what `vecdial serve` does once settings are resolved.

Settings reach worker processes through the environment (each worker builds its
app with `service.app:create_app_from_env`), so everything here happens before
uvicorn starts them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from vecdial import InvalidInput
from vecdial.service.settings import Settings

try:  # httptools parses HTTP in C: 0.13-0.17 ms less per search request than h11 (measured, one keep-alive client)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as HTTPProtocol
except ImportError:  # pragma: no cover - httptools is a dependency; h11 is uvicorn's own fallback
    from uvicorn.protocols.http.h11_impl import H11Protocol as HTTPProtocol  # type: ignore[assignment]


class NoDelayProtocol(HTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP/1.1 protocol (httptools, else h11) with TCP_NODELAY on every connection.

    With `--workers > 1` uvicorn hands the listening socket to the workers as a
    bare descriptor; the socket object rebuilt from it reports protocol 0, so
    asyncio does not set TCP_NODELAY on accepted connections. Nagle's algorithm
    then holds a response's body until the client's delayed ACK (~40 ms) and
    every request takes 40 ms more (measured: 0.3 ms -> 44 ms for /healthz).
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach: localhost, 127.0.0.0/8, ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # another host name, or "" (every interface)
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse to listen beyond loopback without an API key, unless the operator opted out.

    Without a key every client can write and drop collections: on 127.0.0.1 that is this
    machine's users; on 0.0.0.0 it is anyone who can reach the port.
    """
    if settings.api_key is None and not is_loopback(settings.host) and not settings.allow_no_api_key:
        raise InvalidInput(
            f"refusing to serve on {settings.host or 'every interface'} without an API key: anyone who reaches the port could "
            "write and drop collections. Set VECDIAL_API_KEY (api_key in the settings file), bind to 127.0.0.1, or set "
            "VECDIAL_ALLOW_NO_API_KEY=1 if a proxy or the network authenticates clients"
        )


WORKER_HEALTHCHECK_S = 60
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_signals_exit_zero() -> Iterator[None]:
    """SIGTERM and SIGINT stop the server gracefully, and the process then exits with status 0.

    uvicorn catches both: it stops accepting connections, lets in-flight requests finish
    (up to `timeout_graceful_shutdown`), runs the app's shutdown (jobs cancelled and
    joined), then raises the signal again for the handler that was there before it. The
    default handlers would end the process with -15 or a KeyboardInterrupt traceback,
    which an orchestrator reports as a crash. This handler ends it with 0, and also
    stops a server that is still starting (before uvicorn has taken the signals over).
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
        yield
        return
    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(settings: Settings) -> None:
    """Serve until stopped (SIGTERM or SIGINT: gracefully, then exit 0); settings exported
    for the workers, native threads capped."""
    import uvicorn

    check_exposure(settings)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(settings.native_threads))
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Counters and histograms of all workers are summed at scrape time from here.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="vecdial-metrics-")
    with stop_signals_exit_zero():
        uvicorn.run(
            "vecdial.service.app:create_app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            http=f"{__name__}:NoDelayProtocol",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
            # With --workers > 1 uvicorn pings each worker every 0.5 s and replaces one that has not
            # answered within this: its default, 5 s, killed workers still importing on a loaded
            # machine, again and again, and the server never became ready (seen at load 20 on 2 cores).
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        )
