"""The split per-shard steps write exactly what the plain build loop writes."""

import pytest

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.jobs.build import build_version
from vecdial.indexer.modes.settings import BuildSettings
from vecdial.indexer.scale.encode import shard_ranges
from vecdial.indexer.scale.engines import InProcess, engine_for
from vecdial.indexer.scale.settings import RaySettings

# Partitions (so rows are stored cell by cell) and small batches (so shards hold several).
SETTINGS = BuildSettings(partitions=8, batch_size=256)


def test_shards_are_whole_batches_covering_every_row():
    ranges = shard_ranges(1000, 64, 300)
    assert ranges[0] == (0, 256) and ranges[-1] == (768, 1000)
    assert all(a % 64 == 0 for a, _ in ranges) and [b for _, b in ranges[:-1]] == [a for a, _ in ranges[1:]]


def test_in_process_engine_writes_the_same_files_as_the_plain_loop(tmp_path, demo_dataset, version_digests):
    with build_version(demo_dataset, tmp_path / "a", SETTINGS, show_progress=False) as plain:
        with build_version(demo_dataset, tmp_path / "b", SETTINGS, show_progress=False, engine=InProcess()) as split:
            expected, got = version_digests(plain.path), version_digests(split.path)
    assert got.keys() == expected.keys()
    assert [name for name in expected if got[name] != expected[name]] == []


def test_no_ray_knob_means_the_plain_build():
    assert engine_for(None) is None


def test_ray_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("VECDIAL_RAY_SHARD_ROWS", "4096")
    monkeypatch.setenv("VECDIAL_RAY_OBJECT_STORE_MEMORY", "100000000")
    settings = RaySettings.from_env("auto")
    assert (settings.shard_rows, settings.object_store_memory) == (4096, 100_000_000)
    monkeypatch.setenv("VECDIAL_RAY_SHARD_ROWS", "0")
    with pytest.raises(InvalidInput, match="VECDIAL_RAY_"):
        RaySettings.from_env("auto")
