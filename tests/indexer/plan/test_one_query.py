"""One query at a time takes the executor's lean path; it answers as the same query inside a
batch does (the same ids in the same order, the same explain; scores equal to float32 rounding,
since a batch's dense scan sums its dot products with BLAS), with deletions and the write
segment honoured."""

import numpy as np
import pytest

import vecdial
from vecdial.indexer.modes import MODES
from vecdial.indexer.plan.execute import View, search

# Beyond each registered mode's own warm-up budgets (the test below that iterates MODES): other
# probe widths, and the funnels, whose stages are not a mode of their own.
BUDGETS = [
    "dense:dim=64,probe=4",
    "binary:rescore=20,probe=0.1",
    "funnel:binary*40>128*5>full",
    "funnel:64*10>full,probe=4",
]


@pytest.fixture(scope="module")
def view(demo_collection):
    version = demo_collection.open()
    return View(version, version.name)


def one_at_a_time(search_one, queries: np.ndarray):
    """Each query searched alone -> (ids, scores, found) stacked like a batch's."""
    hits = [search_one(q) for q in queries]
    return np.vstack([h.ids for h in hits]), np.vstack([h.scores for h in hits]), np.concatenate([h.found for h in hits])


@pytest.mark.parametrize("budget", BUDGETS)
def test_each_query_alone_answers_as_in_a_batch(view, demo_vectors, budget):
    queries = demo_vectors[1][:40]
    batch = search(view, queries, k=10, budget=budget)
    ids, scores, found = one_at_a_time(lambda q: search(view, q, k=10, budget=budget), queries)
    np.testing.assert_array_equal(ids, batch.ids)
    np.testing.assert_allclose(scores, batch.scores, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(found, batch.found)


@pytest.mark.parametrize("mode", MODES)
def test_each_query_alone_answers_as_in_a_batch_in_every_registered_mode(view, demo_collection, demo_vectors, mode, mode_budgets):
    """Every kernel a registered mode runs (its warm-up budgets), one query against a batch."""
    queries = demo_vectors[1][:20]
    for budget in mode_budgets(demo_collection, mode):
        batch = search(view, queries, k=10, budget=budget)
        ids, scores, found = one_at_a_time(lambda q, b=budget: search(view, q, k=10, budget=b), queries)
        np.testing.assert_array_equal(ids, batch.ids, err_msg=budget)
        np.testing.assert_allclose(scores, batch.scores, rtol=0, atol=1e-6, err_msg=budget)
        np.testing.assert_array_equal(found, batch.found, err_msg=budget)


@pytest.mark.parametrize("budget", ["binary:rescore=10", "funnel:binary*40>128*5>full"])
def test_one_query_explains_each_stage_as_a_batch_of_one_did(view, demo_vectors, budget):
    alone = search(view, demo_vectors[1][0], k=10, budget=budget).explain.to_dict()
    with_text = search(view, demo_vectors[1][:1], k=10, budget=budget, with_text=True).explain.to_dict()  # the general path
    for explain in (alone, with_text):
        for stage in explain["stages"]:
            stage.pop("ms")
        explain.pop("total_ms")
    assert alone == with_text


def test_one_query_explain_is_built_once_from_the_figures_of_its_search(view, demo_vectors):
    hits = search(view, demo_vectors[1][0], k=10, budget="funnel:binary*40>128*5>full")
    explain = hits.explain
    assert hits.explain is explain  # read again: the same object, not rebuilt
    assert [s.candidates for s in explain.stages] == [40 * 10, 5 * 10, 10]
    assert explain.total_ms >= sum(s.ms for s in explain.stages) - 0.003  # stages within the search (rounding)


@pytest.mark.parametrize("mode", [*MODES, "funnel"])
def test_one_query_honours_deletions_and_new_writes_as_a_batch_does(tmp_path, tiny_dataset, outside_vectors, mode, mode_budgets):
    """Each registered mode's warm-up budgets (probed ones too: the collection has cells)."""
    col = vecdial.connect(tmp_path).create(
        "one", vectors=tiny_dataset.vectors, ids=tiny_dataset.ids, settings=vecdial.BuildSettings(partitions=8), show_progress=False
    )
    budgets = ["funnel:binary*40>128*5>full"] if mode == "funnel" else mode_budgets(col, mode)
    first = {budget: col.search(outside_vectors[0], k=10, budget=budget) for budget in budgets}
    gone = sorted({item for hits in first.values() for item in hits.ids[0, :5].tolist()})
    col.delete(gone)
    col.upsert(["new-item", "other-item"], outside_vectors[:2])
    queries = outside_vectors[:6]
    for budget in budgets:
        batch = col.search(queries, k=10, budget=budget)
        ids, scores, found = one_at_a_time(lambda q, b=budget: col.search(q, k=10, budget=b), queries)
        np.testing.assert_array_equal(ids, batch.ids, err_msg=budget)
        np.testing.assert_allclose(scores, batch.scores, rtol=0, atol=1e-6, err_msg=budget)
        assert ids[0, 0] == "new-item" and (found == 10).all(), budget
        assert not set(gone) & set(ids.ravel().tolist()), budget


def test_one_query_with_integer_ids_pads_like_a_batch_when_k_exceeds_the_live_rows(tmp_path, tiny_dataset):
    vectors = np.asarray(tiny_dataset.vectors[:12])
    col = vecdial.connect(tmp_path).create("few", vectors=vectors, ids=np.arange(12, dtype=np.int64), show_progress=False)
    col.delete([3, 4])
    alone = col.search(vectors[0], k=15, budget="binary:rescore=2")
    batch = col.search(vectors[:2], k=15, budget="binary:rescore=2")
    assert alone.found[0] == batch.found[0] == 10
    np.testing.assert_array_equal(alone.ids[0], batch.ids[0])
    assert (alone.ids[0, 10:] == -1).all() and np.isneginf(alone.scores[0, 10:]).all()


@pytest.mark.parametrize("dim", [384, 100, 7])
def test_bits_packed_in_one_compiled_call_equal_the_codecs_encoding(demo_vectors, dim):
    from vecdial.indexer.codecs.binary import BinaryCodec, fit_binary
    from vecdial.indexer.stores import kernels

    docs, queries = demo_vectors
    codec: BinaryCodec = fit_binary(np.ascontiguousarray(docs[:500, :dim]), center=True)
    x = np.ascontiguousarray(queries[:50, :dim])
    packed = np.empty((50, codec.code_bytes), dtype=np.uint8)
    kernels.pack_bits(x, codec.thresholds, packed)
    np.testing.assert_array_equal(packed, codec.encode(x))
