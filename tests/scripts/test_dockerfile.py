"""What the image promises, read from the Dockerfile (no Docker daemon needed): an
unprivileged user, a health check on /readyz, the tested entrypoint, CPU-only torch."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_server_runs_as_an_unprivileged_user():
    users = [args for name, args in instructions() if name == "USER"]
    assert users and users[-1] not in {"root", "0"}
    names = [name for name, _ in instructions()]
    assert names.index("USER") < names.index("ENTRYPOINT")


def test_the_health_check_asks_readyz():
    [check] = [args for name, args in instructions() if name == "HEALTHCHECK"]
    command = json.loads(check[check.index("CMD") + 3 :])
    assert "/readyz" in " ".join(command)


def test_the_entrypoint_is_the_tested_script_and_its_files_are_copied():
    [entrypoint] = [json.loads(args) for name, args in instructions() if name == "ENTRYPOINT"]
    assert entrypoint[-1] == "/app/scripts/docker_entrypoint.py"
    for name, args in instructions():
        if name == "COPY":
            *sources, _ = args.split()
            assert all((ROOT / source).exists() for source in sources), args


def test_torch_is_installed_by_the_cpu_only_script_before_the_extras():
    runs = [args for name, args in instructions() if name == "RUN"]
    torch = next(i for i, run in enumerate(runs) if "install_torch.sh" in run)
    extras = next(i for i, run in enumerate(runs) if "[all]" in run)
    assert torch < extras
    assert not any("torch==" in run for run in runs)
