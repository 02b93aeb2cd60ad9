"""One two-node Ray cluster on loopback for every Ray test here (started once: ~15 s), and no
usage stats from any Ray a test starts or joins."""

import os

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    pytest.importorskip("ray")
    from bench.ray_cluster import LocalCluster

    with LocalCluster(tmp_path_factory.mktemp("ray"), nodes=2, cpus=1) as running:
        yield running
