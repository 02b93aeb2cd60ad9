"""scripts/install_torch.sh: PyTorch's CPU wheel index when it answers, else pip's configured
index. Run for real with a stub python that records its pip calls (the probe is real, against
an index served on 127.0.0.1 or a closed port)."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install_torch.sh"


@pytest.fixture
def cpu_index(tmp_path):
    """The address of a simple index with a torch/ page, served on 127.0.0.1."""
    (tmp_path / "index" / "torch").mkdir(parents=True)
    (tmp_path / "index" / "torch" / "index.html").write_text("<html></html>")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "index"))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def install(tmp_path):
    """install(index, *args, pip_fails_on_index=False) -> (exit code, the stub's pip calls)."""
    stub = tmp_path / "python"
    stub.write_text(f"""#!/bin/sh
if [ "$1" = "-m" ]; then
    echo "$*" >> "{tmp_path / "pip.log"}"
    case "$*" in *--index-url*) [ -n "$FAIL_ON_INDEX" ] && exit 1 ;; esac
    exit 0
fi
exec "{sys.executable}" "$@"
""")
    stub.chmod(0o755)

    def run(index: str, *args: str, pip_fails_on_index: bool = False) -> tuple[int, list[str]]:
        env = {**os.environ, "VECDIAL_TORCH_INDEX": index, "FAIL_ON_INDEX": "1" if pip_fails_on_index else ""}
        done = subprocess.run(["bash", str(SCRIPT), str(stub), *args], env=env, capture_output=True, text=True, timeout=60)
        log = tmp_path / "pip.log"
        return done.returncode, log.read_text().splitlines() if log.exists() else []

    return run


def test_a_reachable_cpu_index_is_where_torch_comes_from(install, cpu_index):
    assert install(cpu_index) == (0, [f"-m pip install --quiet --index-url {cpu_index} torch==2.13.0"])


def test_an_unreachable_cpu_index_falls_back_to_pips_configured_index(install, closed_port_url):
    assert install(closed_port_url) == (0, ["-m pip install --quiet torch==2.13.0"])


def test_a_cpu_index_without_the_wanted_build_falls_back_too(install, cpu_index):
    code, calls = install(cpu_index, pip_fails_on_index=True)
    assert code == 0
    assert calls == [f"-m pip install --quiet --index-url {cpu_index} torch==2.13.0", "-m pip install --quiet torch==2.13.0"]


def test_an_empty_index_setting_skips_the_cpu_index(install):
    assert install("") == (0, ["-m pip install --quiet torch==2.13.0"])


def test_another_requirement_can_be_asked_for(install, closed_port_url):
    assert install(closed_port_url, "torch>=2.2,<3")[1] == ["-m pip install --quiet torch>=2.2,<3"]


def test_the_default_cpu_index_is_pytorchs_own():
    assert "${VECDIAL_TORCH_INDEX-https://download.pytorch.org/whl/cpu}" in SCRIPT.read_text()
