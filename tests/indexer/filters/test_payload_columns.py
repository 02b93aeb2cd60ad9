"""Payload values and columns: types are inferred once and kept, bad values say what to change,
and every index (sorted numbers, keyword postings) answers exactly what a full scan would."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.filters.match import check_filter, evaluate
from vecdial.indexer.filters.table import PayloadTable, check_payloads
from vecdial.indexer.filters.tree import parse_filter
from vecdial.indexer.filters.values import from_micros, to_micros


def test_types_are_inferred_from_the_values_a_field_first_arrives_with():
    types, _ = check_payloads(
        [
            {"n": 1, "x": 1.5, "k": "a", "t": "2024-05-01", "tags": ["a", "b"]},
            {"n": 2, "x": 2, "k": "2024-05-01", "t": dt.date(2024, 1, 1)},
        ],
        2,
        {},
    )
    assert types == {"n": "int", "x": "float", "k": "keyword", "t": "datetime", "tags": "keywords"}


def test_a_known_field_keeps_its_type():
    types, rows = check_payloads([{"k": "2024-05-01"}], 1, {"k": "keyword"})
    assert types == {"k": "keyword"} and rows == [{"k": "2024-05-01"}]
    with pytest.raises(InvalidInput, match="payloads\\[0\\].k is 5: the field holds keywords"):
        check_payloads([{"k": 5}], 1, {"k": "keyword"})


@pytest.mark.parametrize(
    "payloads, says",
    [
        ([{"a": True}], "payloads[0].a is True"),
        ([{"a": 1}, {"a": "x"}], "payloads[1].a is 'x', earlier values are numbers"),
        ([{"a": {"b": 1}}], "payloads[0].a is"),
        ([{"a": float("nan")}], "finite numbers"),
        ([{"a": 2**64}], "64 bits"),
        ([{"a": ["x", 1]}], "holds keywords"),
        ([{"": 1}], "field name ''"),
        ([{"and": 1}], "field name 'and'"),
        ([{"a": "x\x00"}], "NUL"),
        ([["a"]], "send an object"),
        ([{"a": 1}, {"a": 2}, {"a": 3}], "3 payloads for 2 items"),
    ],
)
def test_bad_payloads_are_invalid_input_naming_the_item(payloads, says):
    with pytest.raises(InvalidInput, match=says.replace("[", "\\[").replace("(", "\\(")):
        check_payloads(payloads, 2 if len(payloads) == 3 else len(payloads), {})


def test_datetimes_are_microseconds_since_1970_utc_and_come_back_as_iso_strings():
    micros = to_micros("2024-05-01T12:00:00+02:00", "t")
    assert micros == to_micros(dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC), "t")
    assert from_micros(micros) == "2024-05-01T10:00:00+00:00"
    assert to_micros("2024-05-01", "t") == to_micros(dt.date(2024, 5, 1), "t")


def _table(rows: list[dict]) -> PayloadTable:
    return PayloadTable.from_dicts(rows, len(rows))


rows_strategy = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "n": st.integers(-50, 50),
            "k": st.sampled_from(["a", "b", "c", "é", "z" * 3]),
            "tags": st.lists(st.sampled_from(["x", "y", "w"]), max_size=3),
        },
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy, low=st.integers(-60, 60), width=st.integers(0, 40), lo_open=st.booleans(), hi_open=st.booleans())
def test_a_numeric_window_from_the_sorted_index_equals_a_full_scan(rows, low, width, lo_open, hi_open):
    table = _table(rows)
    if "n" not in table.types:
        return
    bounds = {("gt" if lo_open else "gte"): low, ("lt" if hi_open else "lte"): low + width}
    found = evaluate(check_filter(parse_filter({"n": {"range": bounds}}), table.types), table).as_rows().tolist()

    def inside(v):
        return (v > low if lo_open else v >= low) and (v < low + width if hi_open else v <= low + width)

    assert found == [i for i, r in enumerate(rows) if "n" in r and inside(r["n"])]


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy, wanted=st.lists(st.sampled_from(["a", "b", "é", "x", "y", "nope"]), min_size=1, max_size=3))
def test_keyword_postings_and_boolean_combinations_equal_a_full_scan(rows, wanted, tmp_path_factory):
    table = _table(rows)
    if "k" not in table.types or "tags" not in table.types:
        return
    spec = {"or": [{"k": {"in": wanted}}, {"not": {"tags": wanted[0]}}]}
    stored = tmp_path_factory.mktemp("t")
    table.save(stored)
    for t in (table, PayloadTable.open(stored, len(rows))):
        found = evaluate(check_filter(parse_filter(spec), t.types), t).as_rows().tolist()
        assert found == [i for i, r in enumerate(rows) if r.get("k") in wanted or wanted[0] not in r.get("tags", [])]


def test_a_table_survives_save_open_take_and_concat(tmp_path):
    rows = [{"n": 3, "k": "a", "tags": ["x"], "t": "2024-01-02"}, {"k": "b"}, None, {"n": -1, "tags": []}]
    table = _table(rows)
    table.save(tmp_path)
    opened = PayloadTable.open(tmp_path, 4)
    assert isinstance(np.load(tmp_path / "payload_0_values.npy", mmap_mode="r"), np.memmap)
    assert [opened.payload(i) for i in range(4)] == [table.payload(i) for i in range(4)]
    assert opened.payload(0) == {"n": 3, "k": "a", "tags": ["x"], "t": "2024-01-02T00:00:00+00:00"}
    assert opened.payload(2) == {} and opened.payload(3) == {"n": -1, "tags": []}
    later = PayloadTable.from_rows([{"k": "c", "new": 1.5}], {**table.types, "new": "float"})
    both = opened.take(np.array([3, 0])).concat(later)
    assert [both.payload(i) for i in range(3)] == [opened.payload(3), opened.payload(0), {"k": "c", "new": 1.5}]
