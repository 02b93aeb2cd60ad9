"""Filtered search on the demo corpus: exact mode is the brute-force filtered top k, every mode
keeps only matching items (inside its stages, so k come back whenever k match), compressed
modes keep their unfiltered recall, and explain says how the filter was applied."""

from __future__ import annotations

import numpy as np
import pytest

import vecdial
from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.modes import MODES

# filter -> the same condition written in plain Python over a payload dict
FILTERS = {
    "keyword eq (selective)": ({"module": "os"}, lambda p: p["module"] == "os"),
    "keyword in": (
        {"module": {"in": ["asyncio", "email", "logging", "builtins", "xml"]}},
        lambda p: p["module"] in ("asyncio", "email", "logging", "builtins", "xml"),
    ),
    "int window": ({"chars": {"range": {"gte": 200, "lt": 400}}}, lambda p: 200 <= p["chars"] < 400),
    "datetime window": (
        {"updated": {"range": {"gte": "2020-06-01", "lt": "2020-09-01T00:00:00Z"}}},
        lambda p: "2020-06-01" <= p["updated"][:10] < "2020-09-01",
    ),
    "float window": ({"words": {"range": {"gt": 20.5}}}, lambda p: p["words"] > 20.5),
    "keyword list holds": ({"path": "email"}, lambda p: "email" in p["path"]),
    "or": ({"or": [{"module": "os"}, {"words": {"range": {"gt": 25}}}]}, lambda p: p["module"] == "os" or p["words"] > 25),
    "not": ({"not": {"module": {"in": ["asyncio", "builtins"]}}}, lambda p: p["module"] not in ("asyncio", "builtins")),
    "and with not": (
        {"and": [{"chars": {"range": {"lte": 600}}}, {"not": {"path": "os"}}]},
        lambda p: p["chars"] <= 600 and "os" not in p["path"],
    ),
    "several keys": ({"module": "email", "chars": {"range": {"gte": 300}}}, lambda p: p["module"] == "email" and p["chars"] >= 300),
}
FUNNELS = ["funnel:binary*20>128*4>full", "funnel:rabitq*20>128*4>full"]  # stages over the modes: not a mode of their own


def brute_force(docs: np.ndarray, queries: np.ndarray, keep: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows (nq, k'), scores (nq, k')) of the best k matching rows by cosine, by a full scan."""
    scores = queries @ docs.T
    scores[:, ~keep] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, int(keep.sum()))]
    return order, np.take_along_axis(scores, order, axis=1)


def matching(rows: list[dict], predicate) -> np.ndarray:
    return np.array([predicate(p) for p in rows])


@pytest.mark.parametrize("name", FILTERS)
def test_filtered_exact_search_is_the_brute_force_filtered_top_k(payload_demo, demo_corpus, demo_vectors, demo_payload_rows, queries, name):
    spec, predicate = FILTERS[name]
    expected_rows, expected_scores = brute_force(demo_vectors[0], queries, matching(demo_payload_rows, predicate), k=10)
    hits = payload_demo.search(queries, k=10, budget="exact", filter=spec)
    assert np.allclose(hits.scores, expected_scores, atol=1e-5)
    assert hits.id_lists() == [[demo_corpus.doc_ids[r] for r in rows] for rows in expected_rows]


@pytest.mark.parametrize("mode", [*MODES, "funnel"])
@pytest.mark.parametrize("name", ["keyword eq (selective)", "int window", "not"])
def test_every_budget_returns_only_matching_items_and_k_of_them(
    payload_demo, demo_corpus, demo_payload_rows, queries, mode, name, mode_budgets
):
    """Every registered mode's warm-up budgets (one per kernel it runs), and the funnels over them."""
    spec, predicate = FILTERS[name]
    allowed = {doc for doc, row in zip(demo_corpus.doc_ids, demo_payload_rows) if predicate(row)}
    for budget in FUNNELS if mode == "funnel" else mode_budgets(payload_demo, mode):
        hits = payload_demo.search(queries, k=10, budget=budget, filter=spec)
        for found in hits.id_lists():
            assert set(found) <= allowed, budget
        assert (hits.found == min(10, len(allowed))).all(), budget  # probed budgets widen their cells until k match


@pytest.mark.parametrize("budget", ["dense:dim=128", "binary:rescore=10", "funnel:binary*20>128*4>full"])
def test_a_broad_filter_keeps_the_recall_of_the_unfiltered_search(payload_demo, demo_vectors, demo_payload_rows, queries, budget):
    spec, predicate = FILTERS["not"]
    keep = matching(demo_payload_rows, predicate)

    def recall(filter_spec, mask) -> float:
        truth = payload_demo.search(queries, k=10, budget="exact", filter=filter_spec).id_lists()
        found = payload_demo.search(queries, k=10, budget=budget, filter=filter_spec).id_lists()
        return float(np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(truth, found)]))

    unfiltered, filtered = recall(None, None), recall(spec, keep)
    assert payload_demo.search(queries[:1], k=10, budget=budget, filter=spec).explain.filter["strategy"] == "mask"
    assert filtered >= unfiltered - 0.05


def test_a_selective_filter_scores_its_matching_rows_exactly_whatever_the_budget(payload_demo, queries):
    spec = FILTERS["keyword eq (selective)"][0]
    exact = payload_demo.search(queries, k=10, budget="exact", filter=spec)
    cheap = payload_demo.search(queries, k=10, budget="binary:rescore=0", filter=spec)
    assert cheap.id_lists() == exact.id_lists()
    assert cheap.explain.filter["strategy"] == "rows" and cheap.explain.filter["matched_rows"] == 80
    assert [s.stage for s in cheap.explain.stages] == ["filter:rows=80"]


def test_explain_says_how_a_broad_filter_was_applied_and_how_many_items_it_kept(payload_demo, demo_payload_rows, queries):
    spec, predicate = FILTERS["int window"]
    explain = payload_demo.search(queries[0], k=5, budget="binary:rescore=10", filter=spec).explain
    assert explain.filter["strategy"] == "mask"
    assert explain.filter["matched_rows"] == int(matching(demo_payload_rows, predicate).sum())
    assert explain.to_dict()["filter"] == explain.filter
    assert payload_demo.search(queries[0], k=5).explain.filter is None


def test_a_filter_matching_nothing_returns_no_hits(payload_demo, queries):
    hits = payload_demo.search(queries[:2], k=5, budget="binary:rescore=10", filter={"module": "no-such-module"})
    assert hits.id_lists() == [[], []]


def test_hits_carry_their_payload_when_asked(payload_demo, demo_corpus, demo_payload_rows, queries):
    hits = payload_demo.search(queries[0], k=3, filter={"module": "json"}, with_payload=True)
    expected = dict(zip(demo_corpus.doc_ids, demo_payload_rows))
    for hit in hits[0]:
        row = expected[hit["id"]]
        assert hit["payload"] == {**row, "updated": row["updated"]}
    assert "payload" not in payload_demo.search(queries[0], k=3)[0][0]


@pytest.mark.parametrize(
    "spec, says",
    [
        ({"modul": "os"}, "unknown payload field 'modul'"),
        ({"module": 3}, "compare with a string"),
        ({"chars": "many"}, "compare with a number"),
        ({"module": {"range": {"gte": "a"}}}, "range needs a number or datetime field"),
        ({"updated": {"range": {"gte": "last week"}}}, "ISO 8601"),
        ({"chars": {"between": [1, 2]}}, "unknown operator"),
        ({"chars": [1, 2]}, '"in"'),
        ({"or": []}, "non-empty list"),
        ({"chars": {"range": {"gt": 1, "gte": 2}}}, "at most one lower bound"),
        ("module = os", "a filter is an object"),
    ],
)
def test_a_bad_filter_is_invalid_input_saying_what_to_change(payload_demo, queries, spec, says):
    with pytest.raises(InvalidInput, match=says.replace("(", r"\(").replace("[", r"\[")):
        payload_demo.search(queries[0], k=5, filter=spec)


@pytest.mark.parametrize("nq", [1, 3, 40])
def test_scoring_matching_rows_is_exact_for_any_number_of_rows_and_queries(
    monkeypatch, payload_demo, demo_corpus, demo_vectors, demo_payload_rows, queries, nq
):
    from vecdial.indexer.filters import select

    monkeypatch.setattr(select, "MIN_SELECTIVE", 10_000)  # every filter takes the rows strategy
    spec, predicate = FILTERS["not"]
    expected_rows, expected_scores = brute_force(demo_vectors[0], queries[:nq], matching(demo_payload_rows, predicate), k=10)
    hits = payload_demo.search(queries[:nq], k=10, budget="binary:rescore=10", filter=spec)
    assert hits.explain.filter["strategy"] == "rows" and hits.explain.filter["matched_rows"] > select.FEW_ROWS
    assert np.allclose(hits.scores, expected_scores, atol=1e-5)
    assert hits.id_lists() == [[demo_corpus.doc_ids[r] for r in rows] for rows in expected_rows]


@pytest.mark.parametrize(
    "budget", ["binary:rescore=10,probe=2", "dense:dim=64,probe=1", "funnel:binary*10>full,probe=1", "rabitq:rescore=5,probe=1"]
)
def test_a_probed_search_reads_more_cells_when_the_filter_leaves_too_few_in_the_nearest(tmp_path, demo_dataset, budget):
    ids = list(demo_dataset.ids)
    payloads = [{"pick": "yes" if i % 5 == 0 else "no"} for i in range(len(ids))]  # 20%: applied as a mask, not by scoring rows
    docs = vecdial.connect(tmp_path).create("docs", np.asarray(demo_dataset.vectors), ids=ids, payloads=payloads, show_progress=False)
    assert docs.info().partitions > 0
    hits = docs.search(np.asarray(demo_dataset.vectors[:20]), k=10, budget=budget, filter={"pick": "yes"})
    assert hits.explain.filter["strategy"] == "mask"
    assert all(len(found) == 10 for found in hits.id_lists())
    assert all(ids.index(i) % 5 == 0 for found in hits.id_lists() for i in found)
