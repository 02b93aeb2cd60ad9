"""Values that would fail later are refused up front: InvalidInput (a 422), naming the item, nothing written.

Writes (upsert, delete) and builds (`Database.create`, the file readers) share
the checks of `indexer/io/checks.py`, so no collection can hold such a value.
"""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import vecdial
from vecdial.indexer.io.checks import MAX_DIM, MAX_ID_CHARS
from vecdial.indexer.io.readers import read_input
from vecdial.service.errors import status_for

pytestmark = pytest.mark.also_sharded  # over 'tiny' whole and in 2 shards


def refused(call, says: str) -> None:
    with pytest.raises(vecdial.InvalidInput, match=says) as caught:
        call()
    assert status_for(caught.value)[0] == 422


@pytest.fixture
def docs(tiny_data_dir):
    return vecdial.connect(tiny_data_dir).open("tiny")


@pytest.fixture
def int_docs(tmp_path, tiny_dataset):
    return vecdial.connect(tmp_path / "ints").create("ints", np.asarray(tiny_dataset.vectors[:40]), show_progress=False)


def unchanged(collection):
    """A check that nothing was written: the logs' sizes (every shard's, if sharded) and the live size stay as they were."""
    parts = [collection.shards.open(name) for name in collection.shard_names] if hasattr(collection, "shard_names") else [collection]
    logs, size = [part._live._wal for part in parts], collection.info().size
    before = [log.size() for log in logs]
    return lambda: ([log.size() for log in logs], collection.info().size) == (before, size)


GOOD = np.ones((1, 384), np.float32)


@pytest.mark.parametrize(
    "ids, vectors, texts, says",
    [
        (["x" * (MAX_ID_CHARS + 1)], GOOD, None, f"at most {MAX_ID_CHARS}"),
        (["\ud800"], GOOD, None, r"ids\[0\] contains a lone surrogate"),
        (["a\x00"], GOOD, None, r"ids\[0\] contains a NUL"),
        (["a\x00b"], GOOD, None, "NUL"),
        (["ok", "x\udfff"], np.ones((2, 384)), None, r"ids\[1\] contains a lone surrogate"),
        (["ok"], GOOD, ["bad \ud83d text"], r"texts\[0\] contains a lone surrogate"),
        (["ok"], GOOD, [b"bytes"], r"texts\[0\].*strings or null"),
        (["ok"], np.full((1, 384), 1e39), None, "NaN or infinite.*float32"),
        (["ok"], np.full((1, 384), -np.inf), None, "NaN or infinite"),
        (["ok"], np.zeros((1, 384)), None, "all zeros"),
        (["ok", "b"], [[1.0] * 384, [1.0] * 383], None, "rows of one length"),
        (["ok"], [["a"] * 384], None, "array of numbers"),
        (["ok"], np.ones((1, MAX_DIM + 1)), None, "dimensions"),
    ],
)
def test_poison_upserts_are_refused_and_nothing_is_written(docs, ids, vectors, texts, says):
    same = unchanged(docs)
    refused(lambda: docs.upsert(ids, vectors, texts=texts), says)
    assert same()


@pytest.mark.parametrize(
    "ids, says",
    [
        ([2**63], "64 bits"),
        ([-(2**63) - 1], "64 bits"),
        ([2**64], "64 bits"),
        ([np.uint64(2**63)], "64 bits"),
        ([True], "integer ids"),
        (["7"], "integer ids"),
    ],
)
def test_poison_integer_ids_are_refused_on_upsert_and_delete(int_docs, ids, says):
    same = unchanged(int_docs)
    refused(lambda: int_docs.upsert(ids, GOOD), says)
    refused(lambda: int_docs.delete(ids), says)
    assert same()


@pytest.mark.parametrize("ids", [["\ud800"], ["a\x00"], ["x" * (MAX_ID_CHARS + 1)], [""]])
def test_poison_string_ids_are_refused_on_delete(docs, ids):
    same = unchanged(docs)
    refused(lambda: docs.delete(ids), "ids\\[0\\]")
    assert same()


def test_the_int64_extremes_are_accepted(int_docs, outside_vectors):
    int_docs.upsert([2**63 - 1, -(2**63)], outside_vectors[:2])
    assert int_docs.search(outside_vectors[1], k=1).ids[0, 0] == -(2**63)


@pytest.mark.parametrize("scale", [1e20, 1e-30])
def test_vectors_whose_float32_norm_would_overflow_or_underflow_keep_their_direction(docs, outside_vectors, scale):
    """A float32 norm of 1e20-sized components is inf (the row became zeros) and of 1e-30 ones is 0."""
    docs.upsert(["scaled"], outside_vectors[:1] * np.float32(scale))
    hits = docs.search(outside_vectors[0], k=1)
    assert hits.ids[0, 0] == "scaled" and hits.scores[0, 0] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"ids": [2**63] + list(range(1, 40))}, r"ids\[0\] is 9223372036854775808.*64 bits"),
        ({"ids": np.array([2**63] + list(range(1, 40)), dtype=np.uint64)}, "64 bits"),
        ({"ids": ["a\x00"] + [f"id{i}" for i in range(1, 40)]}, r"ids\[0\] contains a NUL"),
        ({"ids": [f"id{i}" for i in range(39)] + ["\ud800"]}, r"ids\[39\] contains a lone surrogate"),
        ({"ids": np.array([f"id{i}" for i in range(39)] + ["a\x00b"])}, r"ids\[39\] contains a NUL"),
        ({"ids": ["x" * (MAX_ID_CHARS + 1)] + [f"id{i}" for i in range(1, 40)]}, "longer than"),
        ({"ids": [f"id{i}" for i in range(39)] + [""]}, "empty"),
        ({"ids": [1.5] * 40}, "all integers or all strings"),
        ({"texts": ["ok"] * 39 + ["\udc00"]}, r"texts\[39\] contains a lone surrogate"),
        ({"texts": ["ok"] * 39}, "39 texts for 40 vectors"),
        ({"vectors": np.ones((40, MAX_DIM + 1), np.float32)}, f"at most {MAX_DIM}"),
        ({"vectors": np.full((40, 8), 1e39)}, "NaN or infinite"),
        ({"vectors": np.vstack([np.ones((39, 8)), np.zeros((1, 8))])}, "row 39 is all zeros"),
    ],
)
def test_poison_builds_are_refused_and_no_collection_is_made(tmp_path, tiny_dataset, kwargs, says):
    db = vecdial.connect(tmp_path / "data")
    args = {"vectors": np.asarray(tiny_dataset.vectors[:40]), **kwargs}
    refused(lambda: db.create("docs", args.pop("vectors"), show_progress=False, **args), says)
    assert db.list() == [] and not (tmp_path / "data" / "docs").exists()


@pytest.mark.parametrize(
    "line, says",
    [({"id": 2**63, "text": "fine"}, "64 bits"), ({"id": "a\x00", "text": "fine"}, "NUL"), ({"text": "bad \ud800"}, "lone surrogate")],
)
def test_poison_jsonl_is_refused_before_any_text_is_encoded(tmp_path, monkeypatch, line, says):
    monkeypatch.setattr("vecdial.models.encoder.encode_texts", lambda *a, **k: pytest.fail("encoded poison"))
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": 0, "text": "first"}) + "\n" + json.dumps(line) + "\n")
    refused(lambda: read_input(path, show_progress=False), says)


def test_poison_parquet_ids_are_refused(tmp_path, tiny_dataset):
    vectors = np.asarray(tiny_dataset.vectors[:3]).tolist()
    for ids, says in (([1, 2, 2**63], "64 bits"), (["a", "b\x00c", "d"], "NUL")):
        kind = pa.uint64() if isinstance(ids[0], int) else pa.string()
        pq.write_table(pa.table({"id": pa.array(ids, type=kind), "vector": vectors}), tmp_path / "in.parquet")
        refused(lambda: read_input(tmp_path / "in.parquet", show_progress=False), says)
