"""The container's entrypoint (scripts/docker_entrypoint.py), run for real with a stub `vecdial`
on PATH that records how it was called: the demo only into an empty data directory, no
unauthenticated server beyond loopback unless the operator opts out, arguments to serve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "scripts" / "docker_entrypoint.py"
STUB = """#!/bin/sh
echo "$*" >> "$STUB_LOG"
case "$*" in *build*) exit "${STUB_BUILD_EXIT:-0}" ;; esac
exit 0
"""


@pytest.fixture
def run_entrypoint(tmp_path):
    """run_entrypoint(data_dir, *args, **env) -> (exit code, stderr, the stub's calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vecdial").write_text(STUB)
    (bin_dir / "vecdial").chmod(0o755)
    log = tmp_path / "calls.log"

    def run(data_dir: Path, *args: str, **env: str) -> tuple[int, str, list[str]]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("VECDIAL_")}
        # the image's defaults (Dockerfile ENV), then the test's
        base.update(
            PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", STUB_LOG=str(log), VECDIAL_DATA_DIR=str(data_dir), VECDIAL_HOST="0.0.0.0"
        )
        done = subprocess.run([sys.executable, str(ENTRYPOINT), *args], env={**base, **env}, capture_output=True, text=True, timeout=120)
        calls = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return done.returncode, done.stderr, calls

    return run


def test_an_empty_data_directory_gets_the_demo_then_is_served(run_entrypoint, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    code, _, calls = run_entrypoint(data, VECDIAL_API_KEY="k")
    assert code == 0
    assert calls == [f"--data-dir {data} build --demo --quiet", "serve"]


def test_a_missing_data_directory_counts_as_empty(run_entrypoint, tmp_path):
    code, _, calls = run_entrypoint(tmp_path / "new", VECDIAL_API_KEY="k")
    assert code == 0 and calls[0].endswith("build --demo --quiet")


def test_a_data_directory_with_the_users_collections_is_served_as_it_is(run_entrypoint, tmp_path):
    data = tmp_path / "data"
    (data / "products" / "versions").mkdir(parents=True)  # no 'demo' collection among them
    code, err, calls = run_entrypoint(data, VECDIAL_API_KEY="k")
    assert code == 0
    assert calls == ["serve"]
    assert "already in" in err


def test_a_data_directory_holding_only_a_hidden_file_gets_no_demo(run_entrypoint, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / ".keep").write_text("")
    assert run_entrypoint(data, VECDIAL_API_KEY="k")[2] == ["serve"]


def test_no_api_key_beyond_loopback_is_refused_before_anything_runs(run_entrypoint, tmp_path):
    code, err, calls = run_entrypoint(tmp_path / "data")
    assert code == 2
    assert "VECDIAL_API_KEY" in err and "VECDIAL_ALLOW_NO_API_KEY=1" in err
    assert calls == []  # no demo built, no server started
    assert not (tmp_path / "data").exists()


def test_the_operator_can_serve_without_a_key_by_saying_so(run_entrypoint, tmp_path):
    code, _, calls = run_entrypoint(tmp_path / "data", VECDIAL_ALLOW_NO_API_KEY="1")
    assert code == 0 and calls[-1] == "serve"


def test_no_api_key_is_needed_on_loopback(run_entrypoint, tmp_path):
    code, _, calls = run_entrypoint(tmp_path / "data", VECDIAL_HOST="127.0.0.1")
    assert code == 0 and calls[-1] == "serve"


def test_arguments_go_to_vecdial_serve(run_entrypoint, tmp_path):
    (tmp_path / "data" / "docs").mkdir(parents=True)
    assert run_entrypoint(tmp_path / "data", "--workers", "2", VECDIAL_API_KEY="k")[2] == ["serve --workers 2"]


def test_a_failed_demo_build_serves_nothing(run_entrypoint, tmp_path):
    code, err, calls = run_entrypoint(tmp_path / "data", VECDIAL_API_KEY="k", STUB_BUILD_EXIT="3")
    assert code == 3
    assert "building the demo failed" in err
    assert [call for call in calls if call.startswith("serve")] == []


def test_invalid_settings_are_one_line_and_exit_2(run_entrypoint, tmp_path):
    code, err, calls = run_entrypoint(tmp_path / "data", VECDIAL_API_KEY="k", VECDIAL_PORT="not-a-port")
    assert code == 2 and err.startswith("vecdial: error:") and calls == []
