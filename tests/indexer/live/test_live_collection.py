"""A live collection: writes are durable at once, searchable in every mode, replayed on open."""

import threading

import numpy as np
import pytest

from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.errors import AlreadyExists, BudgetError, InvalidInput, NotFound
from vecdial.indexer.io.readers import Dataset
from vecdial.indexer.jobs.create import build_collection, create_collection
from vecdial.indexer.live.collection import LiveCollection, drop_collection
from vecdial.indexer.live.wal import WriteAheadLog
from vecdial.indexer.modes import build_settings_of
from vecdial.indexer.modes.settings import BuildSettings, SparseSettings

MODES = ["exact", "dense:dim=64", "binary:rescore=10", "binary:rescore=0", "funnel:binary*20>128*4>full"]


@pytest.mark.parametrize("budget", MODES)
def test_upserted_vector_is_the_top_hit_in_every_mode(live, outside_vectors, budget):
    live.upsert(["new"], outside_vectors[:1])
    result = live.search(outside_vectors[0], k=3, budget=budget)
    assert result.ids[0][0] == "new"


@pytest.mark.parametrize("budget", MODES)
def test_deleted_id_is_never_returned(live, tiny_dataset, budget):
    target = tiny_dataset.ids[42]
    assert live.search(tiny_dataset.vectors[42], k=5, budget=budget).ids[0][0] == target
    assert live.delete([target]).deleted == 1
    result = live.search(tiny_dataset.vectors[42], k=5, budget=budget)
    assert target not in result.ids[0] and len(result.ids[0]) == 5


def test_overwriting_an_id_replaces_its_vector(live, tiny_dataset, outside_vectors):
    target = tiny_dataset.ids[7]
    live.upsert([target], outside_vectors[:1])
    assert target not in live.search(tiny_dataset.vectors[7], k=3).ids[0]
    hits = live.search(outside_vectors[0], k=300).ids[0].tolist()
    assert hits[0] == target and hits.count(target) == 1
    assert live.snapshot().size == 300


def test_exact_results_equal_a_collection_built_from_the_same_live_vectors(tmp_path, live, tiny_dataset, outside_vectors):
    live.delete(list(tiny_dataset.ids[:50]))
    live.upsert(["a", "b", tiny_dataset.ids[60]], outside_vectors[:3])
    # What the collection now holds: rows 50.. but 60, then a, b and row 60's id with its new vector.
    kept = [row for row in range(50, 300) if row != 60]
    ids = np.asarray([*tiny_dataset.ids[kept], "a", "b", tiny_dataset.ids[60]])
    vectors = np.concatenate([tiny_dataset.vectors[kept], outside_vectors[:3]])
    build_collection(Collection(tmp_path, "rebuilt"), Dataset(ids, vectors), show_progress=False)
    queries = np.concatenate([outside_vectors[3:], tiny_dataset.vectors[::37]])
    got = live.search(queries, k=10)
    want = LiveCollection.open(tmp_path, "rebuilt").search(queries, k=10)
    assert got.id_lists() == want.id_lists()
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)


def test_acknowledged_writes_are_replayed_when_reopened(tiny_data_dir, live, tiny_dataset, outside_vectors):
    live.upsert(["new"], outside_vectors[:1], texts=["a new text"])
    live.delete([tiny_dataset.ids[0]])
    reopened = LiveCollection.open(tiny_data_dir, "tiny")
    result = reopened.search(outside_vectors[0], k=1, with_text=True)
    assert result.ids == [["new"]] and result.texts == [["a new text"]]
    assert reopened.snapshot().size == 300


def test_a_torn_log_tail_is_ignored_on_open_and_cut_by_the_next_write(tiny_data_dir, live, outside_vectors):
    live.upsert(["kept"], outside_vectors[:1])
    log = WriteAheadLog(live.collection.layout.log("v000001"))
    whole = log.size()
    with open(log.path, "ab") as handle:
        handle.write(b"VDW1\xff\xff\x00\x00torn")
    reopened = LiveCollection.open(tiny_data_dir, "tiny")
    assert reopened.snapshot().size == 301
    reopened.upsert(["after"], outside_vectors[1:2])
    assert [r.ids for r in log.read().records] == [["kept"], ["after"]] and log.read().trailing == 0
    assert log.size() > whole


def test_a_snapshot_never_changes_under_a_search(live, outside_vectors):
    before = live.snapshot()
    live.upsert(["new"], outside_vectors[:1])
    assert "new" not in before.search(outside_vectors[0], k=3).ids[0]
    assert live.search(outside_vectors[0], k=3).ids[0][0] == "new"


def test_another_handle_sees_writes_after_refresh(tiny_data_dir, live, outside_vectors):
    other = LiveCollection.open(tiny_data_dir, "tiny")
    assert other.refresh() is False
    live.upsert(["new"], outside_vectors[:1])
    assert other.refresh() is True
    assert other.search(outside_vectors[0], k=1).ids == [["new"]]


def test_a_handle_follows_a_collection_dropped_and_built_again(tiny_data_dir, live, tiny_dataset, outside_vectors):
    drop_collection(live.collection)
    create_collection(Collection(tiny_data_dir, "tiny"), Dataset(np.asarray(["only"]), outside_vectors[:1]))
    assert live.refresh() and live.snapshot().version_name == "v000001"
    assert live.search(tiny_dataset.vectors[0], k=5).ids == [["only"]]


def test_searches_keep_the_old_version_while_another_thread_opens_the_new_one(tiny_data_dir, live, tiny_dataset, monkeypatch):
    from vecdial.indexer.jobs.reindex import start_reindex

    start_reindex(tiny_data_dir, "tiny", {"dtype": "float16"}).run()
    opening, release = threading.Event(), threading.Event()
    real_open = live._open

    def slow_open(key):
        opening.set()
        release.wait(10)
        return real_open(key)

    monkeypatch.setattr(live, "_open", slow_open)
    opener = threading.Thread(target=live.refresh)
    opener.start()
    assert opening.wait(10)
    assert live.refresh() is False  # does not wait for the opener
    assert live.search(tiny_dataset.vectors[0], k=1).explain.version == "v000001"
    release.set()
    opener.join()
    assert live.snapshot().version_name == "v000002"


def test_writes_through_two_handles_interleave_without_loss(tiny_data_dir, live, outside_vectors):
    other = LiveCollection.open(tiny_data_dir, "tiny")
    live.upsert(["a"], outside_vectors[:1])
    other.upsert(["b"], outside_vectors[1:2])  # catches up with "a" before appending
    live.upsert(["c"], outside_vectors[2:3])
    for handle in (live, other, LiveCollection.open(tiny_data_dir, "tiny")):
        handle.refresh()
        assert handle.snapshot().size == 303


def test_concurrent_upserts_are_all_durable(tiny_data_dir, live, outside_vectors):
    threads = [threading.Thread(target=live.upsert, args=([f"t{i}"], outside_vectors[i : i + 1])) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert live.snapshot().size == 310
    assert LiveCollection.open(tiny_data_dir, "tiny").snapshot().size == 310


def test_deleting_an_unknown_id_is_acknowledged_and_counts_nothing(live):
    assert live.delete(["no-such-id"]).deleted == 0


@pytest.mark.parametrize(
    "ids, vectors, message",
    [
        (["a"], np.ones((1, 3)), "3 dimensions"),
        (["a"], np.full((1, 384), np.nan), "NaN"),
        (["a"], np.zeros((1, 384)), "all zeros"),
        ([1], np.ones((1, 384)), "string ids"),
        (["a", "a"], np.ones((2, 384)), "twice"),
        (["a", "b"], np.ones((1, 384)), "one vector per id"),
        ([], np.ones((0, 384)), "no ids"),
    ],
)
def test_invalid_upserts_are_refused_with_what_to_change(live, ids, vectors, message):
    with pytest.raises(InvalidInput, match=message):
        live.upsert(ids, vectors)
    assert live.snapshot().size == 300


def test_auto_budgets_resolve_through_the_sweep_for_the_segment_too(live, outside_vectors):
    from vecdial.indexer.disk.sweep_file import write_sweep
    from vecdial.indexer.plan.calibration import SweepPoint

    write_sweep(live.snapshot().version.path, [SweepPoint("binary:rescore=5", 0.97, 0.1, 48.0)], "documents")
    live.refresh()  # a sweep written by anyone is served after a refresh
    live.upsert(["new"], outside_vectors[:1])
    result = live.search(outside_vectors[0], k=3, budget="auto:target_recall=0.9")
    assert result.ids[0][0] == "new"
    assert result.explain.budget.endswith("-> binary:rescore=5")
    assert "calibrated on documents (stored documents as queries, uncorrected: optimistic" in result.explain.calibration


def test_k_and_budget_are_checked_before_any_work(live, tiny_dataset):
    with pytest.raises(InvalidInput, match="k=0"):
        live.search(tiny_dataset.vectors[0], k=0)
    with pytest.raises(BudgetError, match="dim=999"):
        live.search(tiny_dataset.vectors[0], budget="dense:dim=999")
    with pytest.raises(BudgetError, match="no sparse codes"):
        live.search(tiny_dataset.vectors[0], budget="sparse:active=8")


def test_k_beyond_the_version_includes_segment_hits(live, tiny_dataset, outside_vectors):
    live.upsert(["x", "y"], outside_vectors[:2])
    result = live.search(tiny_dataset.vectors[0], k=500, budget="binary:rescore=2")
    assert len(result.ids[0]) == 302 and {"x", "y"} <= set(result.ids[0])


def test_explain_reports_the_rows_of_the_version_and_the_segment(live, tiny_dataset, outside_vectors):
    live.upsert(["new"], outside_vectors[:1])
    live.delete([tiny_dataset.ids[0], tiny_dataset.ids[1]])
    explain = live.search(outside_vectors[0], k=3, budget="binary:rescore=10").explain
    assert [s.stage for s in explain.stages] == ["binary:bits=384", "rescore:dim=384"]
    assert (explain.version_rows, explain.segment_rows, explain.deleted_rows) == (298, 1, 2)
    assert explain.stages[0].candidates == 30 + 1  # k x rescore from the version, all the segment has


@pytest.fixture(scope="module")
def sparse_dir(tmp_path_factory, demo_dataset):
    """300 vectors with (briefly trained) sparse codes."""
    root = tmp_path_factory.mktemp("sparse")
    dataset = Dataset(demo_dataset.ids[:300], np.asarray(demo_dataset.vectors[:300]))
    settings = BuildSettings(sparse=SparseSettings(max_active=16, hidden_mult=1, max_epochs=1, time_limit_s=3))
    build_collection(Collection(root, "sparse"), dataset, settings, show_progress=False)
    return root


def test_a_build_records_its_sparse_settings_under_max_active(sparse_dir):
    recorded = Collection(sparse_dir, "sparse").open().manifest.codecs["sparse"]["settings"]
    assert recorded["max_active"] == 16 and "k" not in recorded
    assert build_settings_of(Collection(sparse_dir, "sparse").open().manifest).sparse.max_active == 16


@pytest.mark.parametrize("budget", ["sparse:active=8", "sparse:active=16,rescore=5"])
def test_a_copy_of_a_stored_vector_scores_like_it_under_sparse_budgets(sparse_dir, demo_dataset, budget):
    live = LiveCollection.open(sparse_dir, "sparse")
    stored = np.asarray(demo_dataset.vectors[7])
    live.upsert(["copy"], stored[None])
    try:
        result = live.search(stored, k=10, budget=budget)
        scores = dict(zip(result.ids[0], result.scores[0]))
        assert "copy" in scores and demo_dataset.ids[7] in scores
        assert scores["copy"] == pytest.approx(scores[demo_dataset.ids[7]], abs=1e-4)
    finally:
        live.delete(["copy"])


def test_create_refuses_an_existing_name_and_drop_removes_everything(tmp_path, tiny_dataset, tiny_data_dir):
    collection = Collection(tmp_path, "fresh")
    create_collection(collection, tiny_dataset)
    with pytest.raises(AlreadyExists):
        create_collection(collection, tiny_dataset)
    live = LiveCollection(collection)
    drop_collection(collection)
    assert not collection.path.exists()
    with pytest.raises(NotFound):
        live.refresh()
    with pytest.raises(NotFound):
        drop_collection(collection)


@pytest.mark.parametrize("budget", MODES)
def test_k_hits_come_back_whenever_k_live_items_exist_however_many_were_deleted(live, tiny_dataset, budget):
    survivors = list(tiny_dataset.ids[:10])
    live.delete(list(tiny_dataset.ids[10:]))
    hits = live.search(tiny_dataset.vectors[150], k=10, budget=budget)
    assert sorted(hits.id_lists()[0]) == sorted(survivors)
    assert hits.explain.deleted_rows == 290
