"""A search's options are one value: checked when made, never changed, and the front door's
keywords are exactly its fields (one name per option from the Python call to every stage)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import vecdial
from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.plan.execute import View, run, search
from vecdial.indexer.plan.hybrid import DEPTH, Hybrid
from vecdial.indexer.plan.options import MAX_K, SearchOptions
from vecdial.remote_collection import RemoteCollection
from vecdial.sharded import ShardedCollection


@pytest.mark.parametrize("k", [0, -1, MAX_K + 1])
def test_k_outside_its_range_is_refused_when_the_options_are_made(k):
    with pytest.raises(InvalidInput, match=f"k={k} is out of range: use 1..{MAX_K}"):
        SearchOptions(k)


def test_options_cannot_change_once_made():
    options = SearchOptions(5, "binary:rescore=10")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.k = 6  # type: ignore[misc]


def test_options_past_k_and_budget_are_named():
    with pytest.raises(TypeError):
        SearchOptions(5, "exact", True)  # type: ignore[misc]


@pytest.mark.parametrize("front_door", [vecdial.Collection.search, ShardedCollection.search, RemoteCollection.search])
def test_every_option_of_the_front_door_is_a_field_of_the_options(front_door):
    keywords = set(inspect.signature(front_door).parameters) - {"self", "queries", "texts"}  # texts: read into `hybrid`
    assert keywords == {field.name for field in dataclasses.fields(SearchOptions)}


def test_candidates_per_part_are_k_unless_a_fusion_reads_deeper():
    assert SearchOptions(7).depth == 7
    assert SearchOptions(7, hybrid=Hybrid.of({}, ["a query"])).depth == DEPTH
    assert SearchOptions(MAX_K, hybrid=Hybrid.of({}, ["a query"])).depth == MAX_K


def test_the_keyword_form_searches_as_the_options_do(demo_collection, demo_vectors):
    version = demo_collection.open()
    view = View(version, version.name)
    queries = demo_vectors[1][:4]
    by_keywords = search(view, queries, 5, "binary:rescore=10", with_payload=True)
    by_options = run(view, queries, SearchOptions(5, "binary:rescore=10", with_payload=True))
    assert by_keywords.id_lists() == by_options.id_lists() and by_keywords.payloads == by_options.payloads
