"""Collection.ids: every live id once, in sorted order, a page at a time, exact across writes;
embedded and through a server (`connect`: tests/conftest.py)."""

import numpy as np
import pytest

import vecdial


def all_pages(docs, limit: int) -> list:
    out, cursor = [], None
    while True:
        page, cursor = docs.ids(after=cursor, limit=limit)
        out += page
        assert len(page) <= limit
        if cursor is None:
            return out
        assert page[-1] == cursor


def test_pages_list_every_live_id_once_in_sorted_order(connect, tiny_data_dir, tiny_dataset, outside_vectors):
    docs = connect(tiny_data_dir).open("tiny")
    docs.upsert(["zz-new", "aa-new", str(tiny_dataset.ids[3])], outside_vectors[:3])  # two new ids, one overwrite
    docs.delete([str(tiny_dataset.ids[5]), "aa-new"])
    live = {str(x) for x in tiny_dataset.ids} - {str(tiny_dataset.ids[5])} | {"zz-new"}
    for limit in (1, 7, 1000):
        listed = all_pages(docs, limit)
        assert listed == sorted(live) and len(listed) == docs.info().size


def test_integer_ids_page_in_numeric_order(connect, tmp_path, tiny_dataset, outside_vectors):
    docs = connect(tmp_path).create("ints", np.asarray(tiny_dataset.vectors[:50]), ids=np.arange(50) * 7 - 100, show_progress=False)
    docs.upsert([-(2**63), 2**63 - 1], outside_vectors[:2])
    listed = all_pages(docs, 8)
    assert listed == sorted([*(np.arange(50) * 7 - 100).tolist(), -(2**63), 2**63 - 1])
    assert all(type(x) is int for x in listed)


def test_a_cursor_stays_exact_when_writes_land_between_pages(connect, tiny_data_dir, tiny_dataset, outside_vectors):
    docs = connect(tiny_data_dir).open("tiny")
    first, cursor = docs.ids(limit=100)
    docs.upsert(["0-before-cursor", "~after-cursor"], outside_vectors[:2])  # '0' sorts first, '~' last
    docs.delete([first[0], cursor])
    rest = all_pages_from(docs, cursor, 50)
    assert "~after-cursor" in rest and "0-before-cursor" not in rest
    assert not set(first) & set(rest) and rest == sorted(rest)


def all_pages_from(docs, cursor, limit: int) -> list:
    out = []
    while cursor is not None:
        page, cursor = docs.ids(after=cursor, limit=limit)
        out += page
    return out


@pytest.mark.parametrize("kwargs, says", [({"limit": 0}, "limit"), ({"limit": 10_001}, "limit"), ({"after": 3}, "string ids")])
def test_bad_listing_arguments_say_what_to_change(connect, tiny_data_dir, kwargs, says):
    with pytest.raises(vecdial.InvalidInput, match=says):
        connect(tiny_data_dir).open("tiny").ids(**kwargs)
