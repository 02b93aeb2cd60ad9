"""A real `vecdial serve` on 127.0.0.1: writes survive kill -9 and reach the CLI, workers see each other's swaps."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import httpx
import numpy as np
import pytest

import vecdial
from bench.server import served
from vecdial.service import server
from vecdial.service.cli import main as vecdial_cli
from vecdial.service.settings import Settings


@contextmanager
def vecdial_serve(data_dir: Path, workers: int = 1, log: Path | None = None) -> Iterator[tuple[httpx.Client, subprocess.Popen]]:
    """Start `vecdial serve` (its stderr into `log`), wait until /readyz says ready, stop it (SIGKILL if it hangs) after."""
    # The first text search loads the encoder: on a loaded machine that alone can pass the default
    # request_timeout_s (30 s). These tests are about behaviour, not deadlines (test_api_limits has those).
    env = {"VECDIAL_REQUEST_TIMEOUT_S": os.environ.get("VECDIAL_REQUEST_TIMEOUT_S", "600")}
    with served(data_dir, workers=workers, env=env, log=log, ready_within=300) as (url, process):
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client, process


def wait_until(condition, timeout: float = 30.0) -> None:
    """Poll `condition()` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{condition.__name__} did not hold within {timeout} s")
        time.sleep(0.05)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def top_hit(client: httpx.Client, vector: list[float], budget: str = "exact") -> dict:
    response = client.post("/v1/collections/tiny/search", json={"vector": vector, "k": 1, "budget": budget})
    assert response.status_code == 200, response.text
    return response.json()


def test_every_accepted_connection_gets_tcp_nodelay(monkeypatch):
    """With --workers > 1 uvicorn hands workers the listening socket as a bare descriptor and
    asyncio leaves Nagle on; without TCP_NODELAY each response waits ~40 ms for a delayed ACK."""
    monkeypatch.setattr(server.HTTPProtocol, "connection_made", lambda self, transport: None)  # only ours runs
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.socket(fileno=os.dup(listener.fileno())) as rebuilt, socket.create_connection(listener.getsockname()):
            accepted, _ = rebuilt.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
                transport = SimpleNamespace(get_extra_info=lambda name: accepted if name == "socket" else None)
                server.NoDelayProtocol.__new__(server.NoDelayProtocol).connection_made(transport)
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_serve_runs_uvicorn_with_the_nodelay_protocol(monkeypatch, tmp_path):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    with mock.patch.dict(os.environ, {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}):
        server.run(Settings(data_dir=tmp_path, workers=2))
    assert [options["http"] for options in calls] == ["vecdial.service.server:NoDelayProtocol"]


def test_workers_get_a_minute_to_answer_uvicorns_health_ping(monkeypatch, tmp_path):
    """uvicorn replaces a worker that misses its ping (default 5 s): on a loaded machine that
    killed every worker while it was still importing, so a multi-worker server never started."""
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    with mock.patch.dict(os.environ, {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}):
        server.run(Settings(data_dir=tmp_path, workers=2))
    assert calls[0]["timeout_worker_healthcheck"] >= 60


def test_acknowledged_writes_survive_kill_9_and_restart(tiny_data_dir, inside, outside, demo_dataset):
    with vecdial_serve(tiny_data_dir) as (client, process):
        assert top_hit(client, inside[0])["hits"][0]["id"] == demo_dataset.ids[0]
        written = client.post("/v1/collections/tiny/vectors/upsert", json={"items": [{"id": "durable", "vector": outside[0]}]})
        assert written.status_code == 200
        client.post("/v1/collections/tiny/vectors/delete", json={"ids": [demo_dataset.ids[0]]})
        assert top_hit(client, outside[0], "binary:rescore=10")["hits"][0]["id"] == "durable"
        os.killpg(process.pid, signal.SIGKILL)  # no shutdown, no flush: only what was fsynced survives
        process.wait()
    with vecdial_serve(tiny_data_dir) as (client, _):
        assert top_hit(client, outside[0], "dense:dim=64")["hits"][0]["id"] == "durable"
        assert top_hit(client, inside[0])["hits"][0]["id"] != demo_dataset.ids[0]
        assert 'vecdial_collection_vectors{collection="tiny"} 300.0' in client.get("/metrics").text


def test_the_cli_sees_every_write_the_server_acknowledged(tiny_data_dir, inside, outside, demo_dataset, tmp_path, capsys):
    deleted = demo_dataset.ids[6]
    np.save(tmp_path / "q.npy", np.asarray([outside[4], inside[6]], dtype=np.float32))  # the new item's vector, the deleted one's
    with vecdial_serve(tiny_data_dir) as (client, _):
        assert (
            client.post("/v1/collections/tiny/vectors/upsert", json={"items": [{"id": "fresh", "vector": outside[4]}]}).status_code == 200
        )
        assert client.post("/v1/collections/tiny/vectors/delete", json={"ids": [deleted]}).json()["deleted"] == 1
        for budget in ("exact", "binary:rescore=10", "dense:dim=64", "funnel:binary*20>128*4>full"):  # the server still runs
            code = vecdial_cli(
                [
                    "--data-dir",
                    str(tiny_data_dir),
                    "search",
                    "-c",
                    "tiny",
                    "--vector",
                    str(tmp_path / "q.npy"),
                    "-b",
                    budget,
                    "-k",
                    "20",
                    "--json",
                ]
            )
            printed = json.loads(capsys.readouterr().out)
            assert code == 0
            found = [[hit["id"] for hit in hits] for hits in printed["results"]]
            assert found[0][0] == "fresh", budget
            assert all(deleted not in ids for ids in found), budget
            assert (printed["explain"]["segment_rows"], printed["explain"]["deleted_rows"]) == (1, 1)


def test_cli_reindex_under_load_swaps_in_every_worker_without_errors(tiny_data_dir, inside, outside, demo_dataset):
    with vecdial_serve(tiny_data_dir, workers=2) as (client, _):
        client.post("/v1/collections/tiny/vectors/upsert", json={"items": [{"id": "before", "vector": outside[1]}]})
        failures, versions, done = [], set(), threading.Event()

        def search_until_done() -> None:
            with httpx.Client(base_url=client.base_url, timeout=30) as own:
                while not done.is_set():
                    response = own.post("/v1/collections/tiny/search", json={"vector": inside[2], "k": 1, "budget": "dense:dim=128"})
                    if response.status_code != 200 or response.json()["hits"][0]["id"] != demo_dataset.ids[2]:
                        failures.append(response.text)
                    else:
                        versions.add(response.json()["explain"]["version"])

        searchers = [threading.Thread(target=search_until_done) for _ in range(4)]
        for thread in searchers:
            thread.start()
        try:
            command = [
                sys.executable,
                "-m",
                "vecdial.service.cli",
                "--data-dir",
                str(tiny_data_dir),
                "reindex",
                "-c",
                "tiny",
                "--dtype",
                "float16",
                "--quiet",
            ]
            reindex = subprocess.run(command, capture_output=True, text=True, timeout=120)
            time.sleep(0.5)
        finally:
            done.set()
            for thread in searchers:
                thread.join()
        assert reindex.returncode == 0, reindex.stderr
        assert "v000001 -> v000002" in reindex.stdout
        assert failures == [] and versions == {"v000001", "v000002"}
        for _ in range(6):  # requests land on both workers; each must serve the new version with the write
            body = top_hit(client, outside[1])
            assert body["hits"][0]["id"] == "before" and body["explain"]["version"] == "v000002"
        metrics = client.get("/metrics").text  # summed over both workers
        assert 'vecdial_search_queries_total{mode="dense"}' in metrics
        assert 'vecdial_collection_version_info{collection="tiny",version="v000002"} 1.0' in metrics


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_lets_the_in_flight_write_finish_then_exits_0(tiny_data_dir, outside, stop, tmp_path):
    body = json.dumps({"items": [{"id": "in-flight", "vector": outside[3]}]}).encode()
    head = (
        "POST /v1/collections/tiny/vectors/upsert HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    with vecdial_serve(tiny_data_dir, log=tmp_path / "serve.log") as (client, process):
        port = client.base_url.port
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(head)
            # uvicorn answers 100 Continue when the route first reads the body: the request is in flight
            assert read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 100 Continue")
            process.send_signal(stop)
            wait_until(lambda: refuses_connections(port))  # shutting down: no new connections
            sock.sendall(body)
            response = read_until(sock, b"}")
        assert response.startswith(b"HTTP/1.1 200 OK"), response
        assert b"connection: close" in response.lower()
        assert process.wait(30) == 0, (tmp_path / "serve.log").read_text()[-2000:]
    collection = vecdial.connect(tiny_data_dir).open("tiny")
    assert collection.search(np.asarray([outside[3]], dtype=np.float32), k=1).ids[0][0] == "in-flight"


def test_sigterm_stops_every_worker_of_a_multi_worker_server_and_exits_0(tiny_data_dir, inside, demo_dataset, tmp_path):
    with vecdial_serve(tiny_data_dir, workers=2, log=tmp_path / "serve.log") as (client, process):
        assert top_hit(client, inside[0])["hits"][0]["id"] == demo_dataset.ids[0]
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, (tmp_path / "serve.log").read_text()[-2000:]
