"""The row-major copy of the dense store (dense_rows.npy): rescoring reads each candidate as one
contiguous run instead of one piece per column block, and scores exactly as the blocks do;
versions written before it still open and rescore from the blocks."""

import json
import shutil

import numpy as np
import pytest

import vecdial
from vecdial.indexer.disk.manifest import MANIFEST_FILE, manifest_digest
from vecdial.indexer.stores.blocks import ROWS_FILE, BlockStore, RowsMap, prefix_sq_norms, row_major, split_blocks

RESCORED = ["binary:rescore=10", "rabitq:rescore=5", "funnel:binary*40>128*5>full", "binary:rescore=20,probe=0.1"]


def stores(x: np.ndarray, block: int, tmp_path) -> tuple[BlockStore, BlockStore]:
    """(blocks alone, blocks plus the row-major copy read from disk) over the same rows."""
    blocks, norms = np.ascontiguousarray(split_blocks(x, block)), prefix_sq_norms(x, block)  # as a version maps them
    np.save(tmp_path / ROWS_FILE, row_major(blocks))
    with_rows = BlockStore(blocks, norms, x.shape[1])
    with_rows._rows_map = RowsMap.open(tmp_path / ROWS_FILE)
    with_rows.rows = with_rows._rows_map.array
    return BlockStore(blocks, norms, x.shape[1]), with_rows


@pytest.mark.parametrize("dim", [32, 64, 100, 128, 384])
def test_rescoring_from_the_rows_scores_exactly_as_from_the_blocks(demo_vectors, tmp_path, dim):
    docs, queries = demo_vectors
    blocks, rows = stores(np.ascontiguousarray(docs[:1500]), 32, tmp_path)
    rng = np.random.default_rng(0)
    candidates = rng.integers(-1, 1500, size=(20, 60))
    np.testing.assert_array_equal(rows.score_rows(queries[:20], candidates, dim), blocks.score_rows(queries[:20], candidates, dim))
    for got, want in zip(rows.best_rows(queries[:20], candidates, dim, 10), blocks.best_rows(queries[:20], candidates, dim, 10)):
        np.testing.assert_array_equal(got, want)


def test_cold_rows_are_prefetched_and_still_score_the_same(demo_vectors, tmp_path):
    docs, queries = demo_vectors
    blocks, rows = stores(np.ascontiguousarray(docs[:1500]), 32, tmp_path)
    rows._cold = True  # as after a rescore that faulted its rows in from disk
    candidates = np.arange(0, 1500, 7)[None, :100].repeat(3, axis=0)
    np.testing.assert_array_equal(rows.score_rows(queries[:3], candidates, 384), blocks.score_rows(queries[:3], candidates, 384))
    rows._cold = True
    for got, want in zip(rows.best_rows(queries[:3], candidates, 384, 10), blocks.best_rows(queries[:3], candidates, 384, 10)):
        np.testing.assert_array_equal(got, want)


def test_a_built_version_keeps_the_rows_and_checksums_them(tmp_path, tiny_dataset):
    col = vecdial.connect(tmp_path).create("c", vectors=tiny_dataset.vectors, ids=tiny_dataset.ids, show_progress=False)
    version = col._live.snapshot().version
    assert version.manifest.codecs["dense"]["rows"] is True and ROWS_FILE in version.manifest.files
    np.testing.assert_array_equal(version.dense.rows, row_major(np.asarray(version.dense.blocks)))


def older_copy(tmp_path, name: str) -> vecdial.Collection:
    """A copy of collection `name` whose version is as vecdial wrote it before the row-major copy."""
    shutil.copytree(tmp_path / name, tmp_path / "old")
    version_dir = next(p for p in (tmp_path / "old" / "versions").iterdir() if (p / MANIFEST_FILE).is_file())
    (version_dir / ROWS_FILE).unlink()
    raw = json.loads((version_dir / MANIFEST_FILE).read_text())
    del raw["files"][ROWS_FILE]
    del raw["codecs"]["dense"]["rows"]
    raw["checksum"] = manifest_digest(raw)
    (version_dir / MANIFEST_FILE).write_text(json.dumps(raw))
    return vecdial.connect(tmp_path).open("old")


@pytest.mark.parametrize("budget", RESCORED)
def test_a_version_without_the_rows_opens_and_rescores_from_the_blocks_alike(tmp_path, tiny_dataset, budget):
    new = vecdial.connect(tmp_path).create(
        "new", vectors=tiny_dataset.vectors, ids=tiny_dataset.ids, settings=vecdial.BuildSettings(partitions=8), show_progress=False
    )
    old = older_copy(tmp_path, "new")
    assert old._live.snapshot().version.dense.rows is None
    queries = np.asarray(tiny_dataset.vectors[:20]) + 0.01
    got, want = old.search(queries, k=10, budget=budget), new.search(queries, k=10, budget=budget)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.scores, want.scores)
