"""The traffic sample: real query vectors kept beside a collection (opt-in, bounded), read back
whole, and swept as the queries auto calibrates on."""

import numpy as np
import pytest

import vecdial
from vecdial.indexer.disk.query_sample import append_queries, read_queries, sample_path


def test_rows_are_appended_up_to_the_limit_and_read_back_whole(tmp_path, demo_vectors):
    queries = np.asarray(demo_vectors[1][:30], dtype=np.float32)
    assert append_queries(tmp_path, queries[:20], limit=25) == 20
    assert append_queries(tmp_path, queries[20:], limit=25) == 5
    assert append_queries(tmp_path, queries[:3], limit=25) == 0
    np.testing.assert_array_equal(read_queries(tmp_path, 384), queries[:25])


def test_a_torn_last_row_is_dropped(tmp_path, demo_vectors):
    append_queries(tmp_path, demo_vectors[1][:4], limit=100)
    with open(sample_path(tmp_path), "ab") as handle:
        handle.write(b"\x00" * 100)  # a writer killed mid-row
    assert read_queries(tmp_path, 384).shape == (4, 384)
    assert read_queries(tmp_path / "nowhere", 384).shape == (0, 384)


def test_a_sweep_on_traffic_calibrates_on_the_kept_queries(tmp_path, demo_dataset, demo_vectors):
    col = vecdial.connect(tmp_path).create("docs", vectors=demo_dataset.vectors, ids=demo_dataset.ids, show_progress=False)
    with pytest.raises(vecdial.InvalidInput, match="traffic sample holds 0 queries.*query_sample_rate"):
        col.sweep(queries="traffic", budgets=["exact"], show_progress=False)
    assert col.keep_queries(demo_vectors[1][:50]) == 50
    points = col.sweep(queries="traffic", n=40, budgets=["binary:rescore=0", "exact"], show_progress=False)
    assert [p.queries for p in points][:2] == [40, 40]
    assert all(p.documents_recall is not None for p in points) and points[-1].documents_recall == 1.0  # the gap, measured
    assert col.info().swept_on.startswith("traffic (40 sampled real queries)")
    explain = col.search(demo_vectors[1][0], k=5, budget="auto:target_recall=0.5").explain
    assert "calibrated on traffic" in explain.calibration and "optimistic" not in explain.calibration
    assert "recall with documents as queries (gap)" in col.report(tmp_path / "gap.html").read_text()
