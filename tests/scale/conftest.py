"""One two-node Ray cluster on loopback for every Ray test here (started once: ~15 s), and no
usage stats from any Ray a test starts or joins."""

import hashlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    pytest.importorskip("ray")
    from bench.ray_cluster import LocalCluster

    with LocalCluster(tmp_path_factory.mktemp("ray"), nodes=2, cpus=1) as running:
        yield running


def digests(path: Path) -> dict[str, str]:
    """Every data file of a staged version, by relative path, as a digest (the manifest records a creation time).

    Digests rather than bytes: a mismatch then reads as the names of the files that differ, where
    pytest's diff of two megabyte byte strings runs for hours.
    """
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


@pytest.fixture
def version_digests():
    """`digests`, for the tests here (conftest modules are not importable under importlib mode)."""
    return digests
