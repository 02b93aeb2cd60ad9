"""The row space of a search: the version's rows numbered from 0, the rows written since numbered
from the version's size on; per-part results join into it and split back out unchanged, the
deletions live in its parts, and every hit found in either part comes back as its own item."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecdial.indexer.live.segment import Segment
from vecdial.indexer.plan.execute import View, search
from vecdial.indexer.plan.hybrid import Hybrid
from vecdial.indexer.plan.rows import RowSpace
from vecdial.indexer.stores.alive import AliveRows
from vecdial.indexer.vectors import normalize_rows

WRITTEN = ["new-0", "new-1", "new-2"]


@pytest.fixture(scope="module")
def demo_space(demo_collection, demo_dataset) -> RowSpace:
    """The demo version and a write segment of 5 real demo vectors (encoded by the version's own codecs)."""
    version = demo_collection.open()
    segment = Segment(version)
    unit = normalize_rows(np.asarray(demo_dataset.vectors[:5], dtype=np.float32), "vectors")
    segment.add([f"copy-{i}" for i in range(5)], unit, None)
    return RowSpace.of(version, None, segment.view())


@pytest.fixture
def written(live, outside_vectors, demo_dataset):
    """The tiny collection (300 version rows) with 3 items written since and 2 version items deleted."""
    texts = list(demo_dataset.texts[1000:1003])
    live.upsert(WRITTEN, outside_vectors[:3], texts, [{"n": 0}, {"n": 1}, {"n": 2}])
    live.delete(list(demo_dataset.ids[5:7]))
    return live


def test_a_version_alone_is_one_part_numbered_from_zero(demo_collection):
    version = demo_collection.open()
    space = RowSpace.of(version)
    assert space.offsets == (0,) and space.single and space.size == version.size
    assert [local.tolist() for local in space.split(np.array([[0, 5, -1]]))] == [[[0, 5, -1]]]


def test_rows_written_since_the_build_follow_the_version_rows(written):
    space = written.snapshot().view.rows
    assert space.offsets == (0, 300) and space.size == 303 and not space.single
    assert [space.locate(row) for row in (0, 299, 300, 302)] == [(0, 0), (0, 299), (1, 0), (1, 2)]


def test_split_gives_each_part_its_local_rows_and_minus_one_elsewhere(written):
    version_rows, segment_rows = written.snapshot().view.rows.split(np.array([[299, 300, -1, 4, 302]]))
    assert version_rows.tolist() == [[299, -1, -1, 4, -1]]
    assert segment_rows.tolist() == [[-1, 0, -1, -1, 2]]


def test_deletions_are_masked_in_the_version_part(written):
    space = written.snapshot().view.rows
    assert (space.version_live, space.version_dead, space.segment_live, space.live) == (298, 2, 3, 301)
    assert space.parts[0].alive.dead[[5, 6]].all() and space.parts[1].alive is None


def test_join_numbers_segment_rows_from_the_version_size_and_keeps_pads(written):
    space = written.snapshot().view.rows
    found = [
        (np.array([[4, 7, -1]]), np.array([[0.9, 0.5, -np.inf]], dtype=np.float32)),
        (np.array([[2, -1]]), np.array([[0.8, -np.inf]], dtype=np.float32)),
    ]
    rows, scores = space.join(found)
    assert rows.tolist() == [[4, 7, -1, 302, -1]]
    np.testing.assert_array_equal(scores, np.array([[0.9, 0.5, -np.inf, 0.8, -np.inf]], dtype=np.float32))


@settings(max_examples=50)
@given(st.data())
def test_split_found_undoes_join(demo_space, data):
    nq = data.draw(st.integers(1, 3))
    found = []
    for size in (demo_space.version.size, demo_space.segment.size):
        m = data.draw(st.integers(0, 6))
        local = data.draw(st.lists(st.integers(-1, size - 1), min_size=nq * m, max_size=nq * m))
        rows = np.asarray(local, dtype=np.int64).reshape(nq, m)
        found.append((rows, np.where(rows >= 0, np.linspace(1, 0, nq * m).reshape(nq, m), -np.inf).astype(np.float32)))
    back = demo_space.split_found(*demo_space.join(found))
    width = found[0][0].shape[1]
    for part, ((rows, scores), (got_rows, got_scores)) in enumerate(zip(found, back)):
        mine = slice(0, width) if part == 0 else slice(width, None)
        np.testing.assert_array_equal(got_rows[:, mine], rows)
        np.testing.assert_array_equal(got_scores[:, mine], scores)
        others = np.delete(got_rows, np.arange(got_rows.shape[1])[mine], axis=1)
        assert (others == -1).all()


def test_masked_replaces_the_parts_and_keeps_the_numbering(written):
    space = written.snapshot().view.rows
    dead = space.parts[0].alive.dead.copy()
    dead[:100] = True  # as a filter cuts rows
    masked = space.masked([dataclasses.replace(space.parts[0], alive=AliveRows(dead)), space.parts[1]])
    assert masked.offsets == space.offsets and masked.split(np.array([301])) == space.split(np.array([301]))
    assert (masked.version_live, masked.segment_live) == (200, 3)
    with pytest.raises(ValueError, match="1 parts for a space of 2"):
        space.masked(space.parts[:1])


def test_exact_search_ranks_the_union_of_live_version_rows_and_rows_written_since(written, demo_dataset, outside_vectors):
    ids = [i for i in demo_dataset.ids[:300] if i not in set(demo_dataset.ids[5:7])] + WRITTEN
    vectors = np.vstack([np.delete(np.asarray(demo_dataset.vectors[:300]), [5, 6], axis=0), outside_vectors[:3]])
    queries = np.vstack([outside_vectors[:3], np.asarray(demo_dataset.vectors[5:8])])
    hits = written.search(queries, k=10, budget="exact")
    brute = queries @ vectors.T
    best = np.argsort(-brute, axis=1)[:, :10]
    assert hits.id_lists() == [[ids[r] for r in row] for row in best.tolist()]
    np.testing.assert_allclose(hits.scores, np.take_along_axis(brute, best, axis=1), atol=1e-5)


@pytest.mark.parametrize("budget", ["exact", "binary:rescore=10", "funnel:binary*20>128*4>full"])
def test_a_hit_written_since_the_build_carries_its_own_text_and_payload(written, demo_dataset, outside_vectors, budget):
    hits = written.search(outside_vectors[:2], k=3, budget=budget, with_text=True, with_payload=True)
    text_of = dict(zip(demo_dataset.ids[:300], demo_dataset.texts[:300])) | dict(zip(WRITTEN, demo_dataset.texts[1000:1003]))
    for q in range(2):
        first = hits[q][0]
        assert (first["id"], first["text"], first["payload"]) == (WRITTEN[q], demo_dataset.texts[1000 + q], {"n": q})
        assert all(hit["text"] == text_of[hit["id"]] for hit in hits[q])  # the version rows beside it keep theirs


def test_a_deleted_version_item_is_never_found_even_by_its_own_vector(written, demo_dataset):
    hits = written.search(np.asarray(demo_dataset.vectors[5:7]), k=5, budget="binary:rescore=10")
    assert not set(demo_dataset.ids[5:7]) & {i for found in hits.id_lists() for i in found}


def test_hybrid_fusion_finds_an_item_written_since_by_its_vector_and_text(written, demo_dataset, outside_vectors):
    text = demo_dataset.texts[1001]
    hits = search(written.snapshot().view, outside_vectors[1], k=5, budget="exact", hybrid=Hybrid.of({}, [text]), with_text=True)
    assert hits[0][0]["id"] == "new-1" and hits[0][0]["text"] == text
    assert len(set(hits.id_lists()[0])) == 5 and not set(demo_dataset.ids[5:7]) & set(hits.id_lists()[0])


def test_a_view_of_a_version_alone_has_the_version_as_its_only_part(demo_collection):
    version = demo_collection.open()
    view = View(version, version.name)
    assert view.rows.single and view.rows.parts[0].stores is version and view.rows.segment_live == 0
