"""A collection on disk: atomic builds, validated opens, clear errors for bad files."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from vecdial.indexer.disk.collection import Collection, list_collections
from vecdial.indexer.disk.manifest import MANIFEST_FILE
from vecdial.indexer.disk.version import open_version
from vecdial.indexer.errors import CorruptIndex, InvalidInput, NotFound, UnsupportedFormat
from vecdial.indexer.eval.metrics import recall_at_k
from vecdial.indexer.io.readers import Dataset
from vecdial.indexer.jobs.build import build_version, remove_stale_builds
from vecdial.indexer.jobs.create import build_collection
from vecdial.indexer.modes.settings import BuildSettings


def build(tmp_path, dataset, name="c", **settings) -> Collection:
    collection = Collection(tmp_path, name)
    build_collection(collection, dataset, BuildSettings(**settings), show_progress=False)
    return collection


def test_built_collection_opens_with_manifest_describing_it(tmp_path, tiny_dataset):
    collection = build(tmp_path, tiny_dataset)
    version = collection.open()
    assert version.size == 300 and version.dim == 384
    assert version.manifest.id_kind == "str" and version.manifest.codecs["dense"]["rotation"] == "pca"
    assert set(version.manifest.files) >= {"dense_blocks.npy", "binary_codes.npy", "ids.npy", "codecs.npz"}
    assert list_collections(tmp_path) == ["c"]


def test_search_returns_ids_and_texts_as_given(tmp_path, tiny_dataset, handle):
    collection = build(tmp_path, tiny_dataset)
    result = handle(collection).search(np.asarray(tiny_dataset.vectors[42]), k=3, with_text=True)
    assert result.ids[0][0] == tiny_dataset.ids[42]
    assert result.texts[0][:1] == [tiny_dataset.texts[42]]


def test_rebuild_swaps_versions_and_keeps_two(tmp_path, tiny_dataset):
    collection = build(tmp_path, tiny_dataset)
    for _ in range(3):
        build_collection(collection, tiny_dataset, show_progress=False)
    assert collection.current_version_name() == "v000004"
    assert sorted(p.name for p in collection.versions_dir.iterdir()) == ["v000003", "v000004"]


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 65, "a..b"])
def test_collection_names_cannot_escape_the_data_dir(tmp_path, name):
    with pytest.raises(InvalidInput, match="invalid collection name"):
        Collection(tmp_path, name)


def test_unknown_collection_is_not_found(tmp_path):
    with pytest.raises(NotFound, match="does not exist"):
        Collection(tmp_path, "nope").open()


def test_missing_file_is_named(tmp_path, tiny_dataset):
    version = build(tmp_path, tiny_dataset).open()
    (version.path / "binary_codes.npy").unlink()
    with pytest.raises(CorruptIndex, match="binary_codes.npy .*missing"):
        Collection(tmp_path, "c").open()


def test_truncated_file_is_detected_without_reading_it_all(tmp_path, tiny_dataset):
    version = build(tmp_path, tiny_dataset).open()
    with open(version.path / "dense_blocks.npy", "r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(CorruptIndex, match="dense_blocks.npy has 1000 bytes"):
        Collection(tmp_path, "c").open(verify_checksums=False)


def test_flipped_byte_fails_the_checksum(tmp_path, tiny_dataset):
    version = build(tmp_path, tiny_dataset).open()
    path = version.path / "dense_blocks.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptIndex, match="checksum"):
        Collection(tmp_path, "c").open()


def test_newer_format_asks_for_an_upgrade(tmp_path, tiny_dataset):
    version = build(tmp_path, tiny_dataset).open()
    manifest = json.loads((version.path / MANIFEST_FILE).read_text())
    manifest["format_version"] = 99
    (version.path / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(UnsupportedFormat, match="upgrade vecdial"):
        Collection(tmp_path, "c").open()


def test_an_edited_manifest_fails_its_own_checksum(tmp_path, tiny_dataset):
    version = build(tmp_path, tiny_dataset).open()
    manifest = json.loads((version.path / MANIFEST_FILE).read_text())
    manifest["codecs"]["dense"]["block"] += 1
    (version.path / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(CorruptIndex, match="manifest.json fails its checksum"):
        Collection(tmp_path, "c").open(verify_checksums=False)


def test_manifest_with_wrong_dims_is_rejected(tmp_path, tiny_dataset):
    """A manifest from before manifests had a checksum still has its shapes checked."""
    version = build(tmp_path, tiny_dataset).open()
    manifest = json.loads((version.path / MANIFEST_FILE).read_text())
    manifest["dim"] = 768
    del manifest["checksum"]
    (version.path / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(CorruptIndex, match="expected"):
        Collection(tmp_path, "c").open(verify_checksums=False)


def test_garbage_manifest_is_rejected(tmp_path, tiny_dataset):
    version = build(tmp_path, tiny_dataset).open()
    (version.path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(CorruptIndex, match="not valid JSON"):
        Collection(tmp_path, "c").open()


def test_bad_vectors_abort_the_build_and_leave_the_old_version_serving(tmp_path, tiny_dataset):
    collection = build(tmp_path, tiny_dataset)
    bad = np.array(tiny_dataset.vectors, copy=True)
    bad[250, 3] = np.nan
    with pytest.raises(InvalidInput, match="row 250 contains NaN"):
        build_collection(collection, Dataset(tiny_dataset.ids, bad), show_progress=False)
    assert collection.current_version_name() == "v000001"
    assert [p.name for p in collection.versions_dir.iterdir()] == ["v000001"]
    assert collection.open().size == 300


def test_killed_build_leaves_the_previous_version_serving(tmp_path, demo_dataset):
    """SIGKILL a build mid-way: the old version still opens and the next build cleans up."""
    np.save(tmp_path / "big.npy", np.tile(np.asarray(demo_dataset.vectors[:2000]), (40, 1)))
    collection = build(tmp_path, Dataset(np.arange(100), np.asarray(demo_dataset.vectors[:100])))
    script = textwrap.dedent(
        f"""
        import numpy as np
        from pathlib import Path
        from vecdial.indexer.modes.settings import BuildSettings
        from vecdial.indexer.disk.collection import Collection
        from vecdial.indexer.io.readers import read_input
        from vecdial.indexer.jobs.create import build_collection
        build_collection(Collection(Path({str(tmp_path)!r}), "c"), read_input(Path({str(tmp_path / "big.npy")!r})), BuildSettings(batch_size=2000), show_progress=False)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    versions = collection.versions_dir
    deadline = time.monotonic() + 60
    while process.poll() is None and not any(p.name.startswith(".tmp-") for p in versions.iterdir()):
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.01)
    assert process.poll() is None, "the build finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert collection.current_version_name() == "v000001"
    assert collection.open().size == 100
    build_collection(collection, Dataset(np.arange(50), np.asarray(demo_dataset.vectors[:50])), show_progress=False)
    assert not any(p.name.startswith(".tmp-") for p in versions.iterdir())
    assert collection.open().size == 50


def test_hnsw_binary_index_and_float16_store_keep_quality(tmp_path, demo_dataset, demo_vectors, handle):
    """The options trade a little accuracy for speed or bytes; rescored results stay near exact."""
    queries = demo_vectors[1][:200]
    default = handle(build(tmp_path, demo_dataset, "default"))
    compact = handle(build(tmp_path, demo_dataset, "compact", binary_index="hnsw", dtype="float16"))
    assert compact.info().settings["binary_index"] == "hnsw"
    assert compact._live.snapshot().version.dense.blocks.dtype == np.float16
    exact = default.search(queries, 10, "exact").id_lists()
    assert recall_at_k(compact.search(queries, 10, "exact").id_lists(), exact, 10) > 0.99
    assert recall_at_k(compact.search(queries, 10, "binary:rescore=10").id_lists(), exact, 10) > 0.93


def test_a_version_written_in_format_1_still_opens_and_searches(tmp_path, tiny_dataset):
    """Format 1 kept each mode's parameters in fields of their own; format 2 keys them by mode."""
    import json

    collection = build(tmp_path, tiny_dataset)
    path = collection.versions_dir / collection.current_version_name() / "manifest.json"
    raw = json.loads(path.read_text())
    codecs = raw.pop("codecs")
    for field in ("checksum", "partitions", "lexical"):  # format 1 had none of these
        raw.pop(field)
    raw.update(format_version=1, rotation=codecs["dense"].pop("rotation"), dense=codecs["dense"], binary=codecs["binary"])
    path.write_text(json.dumps(raw))
    version = collection.open(verify_checksums=True)
    assert version.manifest.format_version == 2 and version.manifest.codecs["dense"]["rotation"] == "pca"
    assert version.dense.blocks.shape[1] == 300 and version.store("binary").store.size == 300


def test_a_manifest_edited_to_claim_format_1_still_fails_its_own_checksum(tmp_path, tiny_dataset):
    collection = build(tmp_path, tiny_dataset)
    path = collection.versions_dir / collection.current_version_name() / "manifest.json"
    raw = json.loads(path.read_text())
    raw.update(format_version=1, count=raw["count"] + 1)  # the edit it would otherwise hide
    path.write_text(json.dumps(raw))
    with pytest.raises(CorruptIndex, match="fails its checksum"):
        collection.open(verify_checksums=True)


@pytest.mark.parametrize("edit", ["drop the checksum", "recompute the checksum"])
def test_a_manifest_claiming_format_1_with_fields_format_1_never_wrote_is_corrupt(tmp_path, tiny_dataset, edit):
    """Format 1 had no checksum and no `codecs`: one claiming format 1 that holds either was edited."""
    from vecdial.indexer.disk.manifest import manifest_digest

    collection = build(tmp_path, tiny_dataset)
    path = collection.versions_dir / collection.current_version_name() / "manifest.json"
    raw = json.loads(path.read_text())
    raw.update(format_version=1, count=raw["count"] + 1)
    raw.pop("checksum")
    if edit == "recompute the checksum":
        raw["checksum"] = manifest_digest(raw)
    path.write_text(json.dumps(raw))
    with pytest.raises(CorruptIndex, match="claims format 1 but was not written by it.*codecs"):
        collection.open(verify_checksums=True)


def test_a_version_above_current_is_an_orphan_removed_before_a_name_is_chosen(tmp_path, tiny_dataset):
    """A process killed between naming a version and swapping CURRENT leaves one above CURRENT:
    it never served, so it must not count as the previous version nor keep its name."""
    collection = build(tmp_path, tiny_dataset)
    shutil.copytree(collection.versions_dir / "v000001", collection.versions_dir / "v000002")
    build_collection(collection, tiny_dataset, show_progress=False)
    assert collection.current_version_name() == "v000003"
    assert collection.version_names() == ["v000001", "v000003"]


def test_a_staged_build_is_no_version_until_published(tmp_path, tiny_dataset):
    collection = build(tmp_path, tiny_dataset)
    with build_version(tiny_dataset, collection.versions_dir, show_progress=False) as staged:
        assert collection.version_names() == ["v000001"] and staged.path.name.startswith(".tmp-")
        assert open_version(staged.path).size == 300
        assert remove_stale_builds(collection.versions_dir) == [], "a live builder's directory is not stale"
    assert sorted(p.name for p in collection.versions_dir.iterdir()) == ["v000001"]


def test_staging_left_by_dead_builders_is_removed_lock_and_all(tmp_path, tiny_dataset):
    collection = build(tmp_path, tiny_dataset)
    (collection.versions_dir / ".tmp-dead").mkdir()
    (collection.versions_dir / ".tmp-dead" / "dense_blocks.npy").write_bytes(b"half")
    (collection.versions_dir / ".tmp-renamed.lock").touch()  # its directory was published, then the builder died
    assert remove_stale_builds(collection.versions_dir) == [".tmp-dead", ".tmp-renamed.lock"]
    assert collection.version_names() == ["v000001"] and len(list(collection.versions_dir.iterdir())) == 1
