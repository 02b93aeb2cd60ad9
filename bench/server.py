"""A real `vecdial serve` on a free loopback port, started and stopped by a bench or a test.

    with served(data_dir, workers=2, env={"VECDIAL_API_KEY": key}) as (url, process):
        httpx.get(url + "/readyz")

The server runs in its own session (so stopping it stops its workers too), logs at `warning`
into a file (a pipe nobody reads would fill and stall it), and counts as started once
`/readyz` answers 200. Stopping sends SIGTERM, which `vecdial serve` handles as a graceful
shutdown, and SIGKILLs the process group if it has not exited within the grace period.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    data_dir: Path,
    *,
    workers: int = 1,
    log: Path,
    env: Mapping[str, str] | None = None,
    ready_within: float = 120.0,
) -> tuple[subprocess.Popen, str]:
    """(process, base URL) of `vecdial serve` over `data_dir`, once `/readyz` says ready.

    log: where the server's stderr goes. env: added to this process's environment (a loaded
    machine wants a longer VECDIAL_REQUEST_TIMEOUT_S: the first text query loads the encoder).
    Raises RuntimeError, with the end of the log, if the server exits or is not ready within
    `ready_within` seconds."""
    port = free_port()
    command = [sys.executable, "-m", "vecdial.service.cli", "--data-dir", str(data_dir), "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            command,
            env={**os.environ, "VECDIAL_LOG_LEVEL": "warning", **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vecdial serve exited with {process.returncode}: {_tail(log)}")
        try:
            if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise RuntimeError(f"vecdial serve was not ready within {ready_within:.0f} s: {_tail(log)}")


def stop_server(process: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL to the whole process group after `grace` s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def served(
    data_dir: Path,
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    ready_within: float = 120.0,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`start_server` for the length of a `with` block; the server is stopped however it ends.
    Without a `log` path its stderr goes to a temporary file, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="vecdial-serve-") as scratch:
        process, url = start_server(data_dir, workers=workers, env=env, log=log or Path(scratch) / "serve.log", ready_within=ready_within)
        try:
            yield url, process
        finally:
            stop_server(process)


def _tail(log: Path, chars: int = 2000) -> str:
    return log.read_text(errors="replace")[-chars:]
