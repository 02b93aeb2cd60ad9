"""A Ray cluster of N local nodes on 127.0.0.1, started and stopped by a test or a bench.

`ray start --node-ip-address=127.0.0.1` swaps 127.0.0.1 (and "localhost") for the machine's
outside address, so other machines could join; any other loopback address is kept as given.
The nodes therefore take 127.0.0.2 (`NODE_IP`): the GCS, the raylets and the driver talk over
loopback only. (Ray's GCS and raylets still listen on every interface: Ray has no knob for
that; RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 would bind loopback but refuses a second node.)

Each node is one `ray start --block` in its own session (dashboard off, usage stats off,
its sockets, logs and spilled objects under `temp_dir`), so stopping is by process group,
never a machine-wide `ray stop`: every process of this cluster and none of anyone else's.
A last sweep kills, by pid, any process still naming `temp_dir` on its command line.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.server import free_port

RAY = str(Path(sys.executable).with_name("ray"))
NODE_IP = "127.0.0.2"
# Ray 2.5x turns on token authentication by default; a cluster of local processes on the
# loopback address, started and ended by its test, runs without it (its nodes and the
# driver must agree, so the driver's environment gets the same setting in start()).
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


class LocalCluster:
    """nodes: how many `ray start` processes; cpus: CPUs each one offers; object_store: bytes each."""

    def __init__(self, temp_dir: Path, nodes: int = 2, cpus: int = 1, object_store: int = 100_000_000):
        self.temp_dir = Path(temp_dir)
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self.nodes, self.cpus, self.object_store = nodes, cpus, object_store
        self.port = free_port()
        self.address = f"{NODE_IP}:{self.port}"
        self.env = dict(os.environ, **QUIET_ENV)
        self._procs: list[subprocess.Popen] = []

    def _start(self, *args: str) -> None:
        common = [
            "--block",
            f"--node-ip-address={NODE_IP}",
            f"--num-cpus={self.cpus}",
            f"--object-store-memory={self.object_store}",
            f"--temp-dir={self.temp_dir}",
        ]
        log = open(self.temp_dir / f"node{len(self._procs)}.log", "wb")
        self._procs.append(
            subprocess.Popen([RAY, "start", *args, *common], env=self.env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        )

    def start(self, timeout: float = 90) -> LocalCluster:
        """Start the head, then the other nodes; return once every node is alive."""
        import ray

        os.environ.setdefault("RAY_AUTH_MODE", QUIET_ENV["RAY_AUTH_MODE"])  # the driver, as the nodes
        # A free Ray Client port: the default 10001 collides with any other cluster on the machine.
        self._start(
            "--head", f"--port={self.port}", "--include-dashboard=false", "--disable-usage-stats", f"--ray-client-server-port={free_port()}"
        )
        for _ in range(self.nodes - 1):
            self._start(f"--address={self.address}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((NODE_IP, self.port), timeout=1).close()
                ray.init(address=self.address, configure_logging=False, log_to_driver=False)
                alive = sum(node["Alive"] for node in ray.nodes())
                ray.shutdown()
                if alive == self.nodes:
                    return self
            except (OSError, RuntimeError):
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._procs):
                self.stop()
                raise RuntimeError(f"local Ray cluster did not start: see {self.temp_dir}/node*.log")
            time.sleep(1)

    def stop(self) -> None:
        """End every process of this cluster: SIGTERM to each node's group, SIGKILL after 3 s
        (a head node drains for 30 s otherwise; nothing of a test cluster needs keeping)."""
        for proc in reversed(self._procs):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for proc in self._procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        for pid in _pids_naming(str(self.temp_dir)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._procs = []

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _pids_naming(text: str) -> list[int]:
    """Pids of processes whose command line contains text (this process excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found
