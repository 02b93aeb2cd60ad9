"""The write segment is searched with the version's own store classes, on one scale."""

import numpy as np
import pytest

from vecdial.indexer.live.segment import Segment


@pytest.fixture
def version(live):
    return live.snapshot().version


@pytest.mark.parametrize("budget", ["exact", "dense:dim=64", "binary:rescore=0", "binary:rescore=10"])
def test_a_copy_of_a_stored_vector_scores_exactly_like_it(live, tiny_dataset, budget):
    live.upsert(["copy"], tiny_dataset.vectors[5:6])
    hits = live.search(tiny_dataset.vectors[5], k=2, budget=budget)
    assert set(hits.id_lists()[0]) == {"copy", tiny_dataset.ids[5]}
    assert hits.scores[0, 0] == pytest.approx(hits.scores[0, 1], abs=1e-6)


def test_a_view_never_changes_after_later_writes(version, tiny_dataset):
    segment = Segment(version)
    segment.add(["a", "b"], np.asarray(tiny_dataset.vectors[:2]), None)
    before = segment.view()
    segment.add([f"x{i}" for i in range(100)], np.asarray(tiny_dataset.vectors[100:200]), None)  # grows the arrays
    segment.remove(["a"])
    assert before.size == 2 and before.live == 2 and before.alive is None
    assert segment.view().live == 101


def test_overwriting_an_id_in_the_segment_keeps_only_the_last_vector(version, tiny_dataset):
    segment = Segment(version)
    segment.add(["a"], np.asarray(tiny_dataset.vectors[:1]), ["first"])
    segment.add(["a"], np.asarray(tiny_dataset.vectors[1:2]), ["second"])
    view = segment.view()
    assert view.size == 2 and view.live == 1 and view.alive.dead.tolist() == [True, False]
    assert view.texts[int(view.alive_rows()[0])] == "second"


def test_segment_stores_hold_the_rows_as_a_build_writes_them(version, tiny_dataset):
    segment = Segment(version)
    segment.add(["a"], np.asarray(tiny_dataset.vectors[7:8]), None)
    view = segment.view()
    dense = view.store("dense").blocks
    np.testing.assert_allclose(dense.blocks[:, 0], version.dense.blocks[:, 7], atol=1e-6)  # BLAS rounding of one row vs a batch
    np.testing.assert_allclose(dense.prefix_sq[:, 0], version.dense.prefix_sq[:, 7], rtol=1e-6)
    binary = view.store("binary")
    assert binary.store.search(binary.codec.encode(np.asarray(tiny_dataset.vectors[7:8])), 1)[1][0, 0] == 0
