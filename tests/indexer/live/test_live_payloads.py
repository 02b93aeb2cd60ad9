"""Payloads written after a build: durable through the log like vectors (an acknowledged write is
never lost), filtered and returned at once, replayed on open, folded in by a reindex; a field
keeps one type, and a write that breaks it is refused before anything is logged."""

from __future__ import annotations

import numpy as np
import pytest

import vecdial
from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.filters.demo import demo_payloads
from vecdial.indexer.live.collection import LiveCollection
from vecdial.indexer.live.wal import WalRecord, WriteAheadLog, decode_record, encode_record


@pytest.fixture
def tiny(tiny_data_dir) -> vecdial.Collection:
    return vecdial.connect(tiny_data_dir).open("tiny")


def _log(collection: vecdial.Collection) -> WriteAheadLog:
    live = collection._live
    return WriteAheadLog(live.collection.layout.log(live.snapshot().version_name))


def test_upserted_payloads_are_filtered_and_returned_at_once(tiny, outside_vectors):
    tiny.upsert(["new-a", "new-b"], outside_vectors[:2], payloads=[{"module": "fresh", "chars": 10}, {"module": "other"}])
    hits = tiny.search(outside_vectors[1], k=5, budget="binary:rescore=10", filter={"module": "fresh"}, with_payload=True)
    assert hits[0] == [{"id": "new-a", "score": pytest.approx(hits.scores[0][0]), "payload": {"module": "fresh", "chars": 10}}]
    assert hits.explain.filter == {"strategy": "rows", "matched_rows": 1, "ms": hits.explain.filter["ms"]}


@pytest.fixture(scope="module")
def demo_with_a_write(tmp_path_factory, demo_corpus, demo_dataset, outside_vectors):
    """The demo corpus with payloads, and one item upserted since its version."""
    rows = demo_payloads(demo_corpus.doc_ids, demo_corpus.doc_texts)
    db = vecdial.connect(tmp_path_factory.mktemp("live-payloads"))
    collection = db.create("payloads", np.asarray(demo_dataset.vectors), ids=demo_corpus.doc_ids, payloads=rows, show_progress=False)
    collection.upsert(["later"], outside_vectors[:1], payloads=[{"module": "later", "chars": 50}])
    return collection, rows


@pytest.mark.parametrize("budget", ["exact", "dense:dim=64", "binary:rescore=10", "funnel:binary*20>128*4>full"])
def test_a_broad_filter_over_version_and_segment_keeps_only_matching_items(demo_with_a_write, demo_corpus, outside_vectors, budget):
    collection, rows = demo_with_a_write
    spec = {"chars": {"range": {"lt": 400}}}
    allowed = {d for d, r in zip(demo_corpus.doc_ids, rows) if r["chars"] < 400} | {"later"}
    hits = collection.search(outside_vectors[:5], k=20, budget=budget, filter=spec)
    assert hits.explain.filter["strategy"] == "mask" and hits.explain.filter["matched_rows"] == len(allowed)
    assert all(set(found) <= allowed and len(found) == 20 for found in hits.id_lists())
    assert "later" in hits.id_lists()[0]


def test_payloads_survive_a_restart_through_the_log(tiny_data_dir, tiny, outside_vectors):
    tiny.upsert(["dated"], outside_vectors[:1], payloads=[{"when": "2024-05-01T10:00:00Z", "tags": ["a", "b"]}])
    reopened = LiveCollection.open(tiny_data_dir, "tiny")  # replays the log from disk
    hits = reopened.search(
        outside_vectors[0], k=3, filter={"when": {"range": {"gte": "2024-05-01", "lt": "2024-05-02"}}}, with_payload=True
    )
    assert hits[0] == [
        {"id": "dated", "score": pytest.approx(1.0, abs=1e-5), "payload": {"when": "2024-05-01T10:00:00+00:00", "tags": ["a", "b"]}}
    ]


def test_payloads_survive_a_reindex_with_version_rows_and_later_writes(tiny_data_dir, tiny, tiny_dataset, outside_vectors):
    tiny.upsert(["x1", "x2"], outside_vectors[:2], payloads=[{"team": "red", "score": 3}, None])
    tiny.upsert([tiny_dataset.ids[5]], tiny_dataset.vectors[5:6], payloads=[{"team": "blue", "score": 7}])
    job = tiny.reindex(wait=True, show_progress=False)
    assert job.status.state == "succeeded"
    fresh = vecdial.connect(tiny_data_dir).open("tiny")
    assert fresh._live.snapshot().segment.size == 0  # everything is in the new version's files
    hits = fresh.search(tiny_dataset.vectors[5], k=5, filter={"score": {"range": {"gte": 1}}}, with_payload=True)
    assert {h["id"]: h["payload"] for h in hits[0]} == {
        tiny_dataset.ids[5]: {"team": "blue", "score": 7},
        "x1": {"team": "red", "score": 3},
    }


def test_a_log_written_before_payloads_existed_replays_unchanged(tiny_data_dir, tiny, outside_vectors):
    old = WalRecord("upsert", ["old"], outside_vectors[:1].astype(np.float32), ["an old write"])
    frame = encode_record(old)
    assert b"payloads" not in frame  # a write without payloads is framed as every earlier vecdial framed it
    _log(tiny).append([frame])
    hits = vecdial.connect(tiny_data_dir).open("tiny").search(outside_vectors[0], k=1, with_text=True, with_payload=True)
    assert hits[0] == [{"id": "old", "score": pytest.approx(1.0, abs=1e-5), "text": "an old write", "payload": {}}]


def test_a_record_with_payloads_round_trips_through_its_frame(outside_vectors):
    record = WalRecord("upsert", ["a", "b"], outside_vectors[:2], None, [{"k": "v", "t": 5}, None], {"k": "keyword", "t": "datetime"})
    from vecdial.indexer.live.frames import FRAME

    back = decode_record(encode_record(record)[FRAME.size :])
    assert back.payloads == record.payloads and back.payload_types == record.payload_types


def test_a_field_keeps_one_type_and_a_write_that_breaks_it_logs_nothing(tiny, outside_vectors):
    tiny.upsert(["a"], outside_vectors[:1], payloads=[{"level": 3}])
    before = _log(tiny).size()
    with pytest.raises(InvalidInput, match="payloads\\[0\\].level is 'high': the field holds integers"):
        tiny.upsert(["b"], outside_vectors[1:2], payloads=[{"level": "high"}])
    assert _log(tiny).size() == before
    assert tiny.search(outside_vectors[1], k=1).ids[0][0] != "b"


def test_two_writers_racing_to_type_a_new_field_differently_the_second_is_refused(tiny_data_dir, outside_vectors):
    one = LiveCollection.open(tiny_data_dir, "tiny")
    two = LiveCollection.open(tiny_data_dir, "tiny")  # has not seen one's write when it checks
    one.upsert(["p"], outside_vectors[:1], payloads=[{"color": "red"}])
    with pytest.raises(InvalidInput, match="holds keyword values in this collection, not int"):
        two.upsert(["q"], outside_vectors[1:2], payloads=[{"color": 5}])
    assert len(WriteAheadLog(one.collection.layout.log(one.snapshot().version_name)).read().records) == 1


def test_an_upsert_replaces_the_whole_item_payload_included(tiny, outside_vectors):
    tiny.upsert(["r"], outside_vectors[:1], payloads=[{"module": "first"}])
    tiny.upsert(["r"], outside_vectors[:1])
    assert tiny.search(outside_vectors[0], k=1, with_payload=True)[0][0]["payload"] == {}
    assert tiny.search(outside_vectors[0], k=1, filter={"module": "first"}).id_lists() == [[]]


def test_a_filter_on_a_field_no_item_has_is_invalid_input(tiny, outside_vectors):
    with pytest.raises(InvalidInput, match="unknown payload field 'module' \\(fields: none"):
        tiny.search(outside_vectors[0], k=1, filter={"module": "os"})
