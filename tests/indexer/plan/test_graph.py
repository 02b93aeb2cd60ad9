"""The graph over the RaBitQ codes: `rabitq:rescore=R,ef=E` walks an HNSW graph instead of
scanning every code, reaches the exact search's neighbours on the demo corpus, reads less
than the scan, and honours deletions, filters and the write segment like every stage."""

import numpy as np
import pytest

import vecdial
from vecdial.indexer.errors import BudgetError, CorruptIndex
from vecdial.indexer.plan.budget import format_budget, parse_budget
from vecdial.indexer.stores.graph import GRAPH_FILE

WALKED = "rabitq:rescore=5,ef=64"


@pytest.fixture(scope="module")
def graphed(tmp_path_factory, demo_corpus, demo_vectors, demo_payload_rows) -> vecdial.Collection:
    """The demo corpus with payloads and a graph of 16 links a row; never written to."""
    docs, _ = demo_vectors
    db = vecdial.connect(tmp_path_factory.mktemp("graph"))
    settings = vecdial.BuildSettings(graph=16, lexical=False)
    return db.create("demo", docs, ids=demo_corpus.doc_ids, payloads=demo_payload_rows, settings=settings, show_progress=False)


@pytest.fixture(scope="module")
def demo_payload_rows(demo_corpus) -> list[dict]:
    from vecdial.indexer.filters.demo import demo_payloads

    return demo_payloads(demo_corpus.doc_ids, demo_corpus.doc_texts)


def recall(found: list[list], truth: list[list]) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


@pytest.mark.parametrize(("budget", "floor"), [("rabitq:rescore=5,ef=64", 0.97), ("rabitq:rescore=20,ef=256", 0.99)])
def test_a_walk_finds_the_exact_neighbours_of_real_queries(graphed, demo_vectors, budget, floor):
    queries = demo_vectors[1]
    truth = graphed.search(queries, k=10, budget="exact").id_lists()
    assert recall(graphed.search(queries, k=10, budget=budget).id_lists(), truth) >= floor  # measured 0.988 and 0.9997


def test_a_wider_walk_finds_more_of_the_neighbours(graphed, demo_vectors):
    queries = demo_vectors[1]
    truth = graphed.search(queries, k=10, budget="exact").id_lists()
    narrow, wide = (recall(graphed.search(queries, k=10, budget=f"rabitq:rescore=1,ef={ef}").id_lists(), truth) for ef in (10, 200))
    assert narrow < wide


def test_explain_names_the_walk_and_counts_less_than_a_scan_of_every_code(graphed, demo_vectors):
    walked = graphed.search(demo_vectors[1][:1], k=10, budget="rabitq:rescore=2,ef=20").explain.stages[0]
    scanned = graphed.search(demo_vectors[1][:1], k=10, budget="rabitq:rescore=2").explain.stages[0]
    assert walked.stage.endswith(",ef=20") and "ef" not in scanned.stage
    assert 0 < walked.bytes_read < scanned.bytes_read / 2


def test_one_query_at_a_time_finds_what_the_batch_finds(graphed, demo_vectors):
    queries = demo_vectors[1][:30]
    batch = graphed.search(queries, k=10, budget=WALKED)
    for i, query in enumerate(queries):
        alone = graphed.search(query, k=10, budget=WALKED)
        assert alone.ids[0].tolist() == batch.ids[i].tolist()
        np.testing.assert_allclose(alone.scores[0], batch.scores[i], atol=1e-6)


def test_a_filter_keeps_only_matching_items_and_k_of_them(graphed, demo_corpus, demo_payload_rows, demo_vectors):
    allowed = {doc for doc, row in zip(demo_corpus.doc_ids, demo_payload_rows) if row["module"] not in ("asyncio", "builtins")}
    spec = {"not": {"module": {"in": ["asyncio", "builtins"]}}}
    queries = demo_vectors[1][:40]
    hits = graphed.search(queries, k=10, budget=WALKED, filter=spec)
    assert hits.explain.filter["strategy"] == "mask" and hits.explain.stages[0].stage.endswith("ef=64")
    assert all(set(found) <= allowed for found in hits.id_lists()) and (hits.found == 10).all()
    truth = graphed.search(queries, k=10, budget="exact", filter=spec).id_lists()
    assert recall(hits.id_lists(), truth) >= 0.95


def test_a_filter_that_leaves_few_rows_near_the_query_still_returns_k(tmp_path, demo_dataset):
    ids = list(demo_dataset.ids)
    payloads = [{"pick": "yes" if i % 5 == 0 else "no"} for i in range(len(ids))]  # 20%: a mask, not scored rows
    docs = vecdial.connect(tmp_path).create(
        "docs",
        np.asarray(demo_dataset.vectors),
        ids=ids,
        payloads=payloads,
        settings=vecdial.BuildSettings(graph=8, lexical=False),
        show_progress=False,
    )
    hits = docs.search(np.asarray(demo_dataset.vectors[1:41:2]), k=10, budget="rabitq:rescore=1,ef=10", filter={"pick": "yes"})
    assert hits.explain.filter["strategy"] == "mask"
    assert all(len(found) == 10 and all(ids.index(i) % 5 == 0 for i in found) for found in hits.id_lists())


def test_a_walk_among_mostly_deleted_rows_returns_every_live_one_it_should(tmp_path, tiny_dataset):
    col = vecdial.connect(tmp_path).create(
        "tiny",
        vectors=tiny_dataset.vectors,
        ids=tiny_dataset.ids,
        settings=vecdial.BuildSettings(graph=8, lexical=False),
        show_progress=False,
    )
    survivors = tiny_dataset.ids[::25].tolist()  # 12 of 300 rows stay
    col.delete([i for i in tiny_dataset.ids.tolist() if i not in survivors])
    hits = col.search(np.asarray(tiny_dataset.vectors[1:20]), k=10, budget="rabitq:rescore=2,ef=10")  # a shortlist of all 12
    exact = col.search(np.asarray(tiny_dataset.vectors[1:20]), k=10, budget="exact")
    assert (hits.found == 10).all() and all(set(found) <= set(survivors) for found in hits.id_lists())
    assert hits.id_lists() == exact.id_lists()


def test_deleted_items_are_never_found_and_new_items_are(tmp_path, demo_dataset, outside_vectors):
    vectors, ids = np.asarray(demo_dataset.vectors[:1000]), demo_dataset.ids[:1000]
    col = vecdial.connect(tmp_path).create(
        "live", vectors=vectors, ids=ids, settings=vecdial.BuildSettings(graph=16, lexical=False), show_progress=False
    )
    first = col.search(outside_vectors[0], k=10, budget=WALKED)
    col.delete(first.ids[0, :5].tolist())
    col.upsert(["new-item"], outside_vectors[:1])
    again = col.search(outside_vectors[0], k=10, budget=WALKED)
    assert again.ids[0, 0] == "new-item" and again.found[0] == 10  # the write segment is searched whole
    assert not set(first.ids[0, :5].tolist()) & set(again.ids[0].tolist())
    assert again.explain.segment_rows == 1 and again.explain.deleted_rows == 5


def test_reindex_keeps_the_graph_and_folds_in_the_writes(tmp_path, tiny_dataset, outside_vectors):
    col = vecdial.connect(tmp_path).create(
        "tiny",
        vectors=tiny_dataset.vectors,
        ids=tiny_dataset.ids,
        settings=vecdial.BuildSettings(graph=8, lexical=False),
        show_progress=False,
    )
    col.upsert(["new-item"], outside_vectors[:1])
    col.reindex(wait=True, show_progress=False)
    hits = col.search(outside_vectors[0], k=5, budget="rabitq:rescore=2,ef=32")
    assert hits.ids[0, 0] == "new-item" and hits.explain.segment_rows == 0
    assert col.info().settings["graph"] == 8


def test_ef_on_a_collection_without_a_graph_says_to_reindex_with_one(tmp_path, tiny_dataset):
    col = vecdial.connect(tmp_path).create("flat", vectors=tiny_dataset.vectors, ids=tiny_dataset.ids, show_progress=False)
    with pytest.raises(BudgetError, match="no graph.*graph=16"):
        col.search(tiny_dataset.vectors[0], k=3, budget="rabitq:rescore=2,ef=32")


def test_the_budget_string_round_trips_with_ef():
    assert format_budget(parse_budget("rabitq:rescore=5,ef=64")) == "rabitq:rescore=5,ef=64"
    with pytest.raises(BudgetError, match="ef"):
        parse_budget("rabitq:rescore=5,ef=0")


def test_describe_and_the_sweep_offer_ef_where_a_graph_exists(graphed, tiny_dataset, tmp_path):
    from vecdial.indexer.modes import MODES

    rabitq = next(m for m in graphed.info().modes if m.mode == "rabitq")
    assert "ef" in rabitq.knobs
    version = graphed._live.snapshot().version
    assert any(",ef=" in b for b in MODES["rabitq"].sweep_budgets(version))
    plain = vecdial.connect(tmp_path).create("flat", vectors=tiny_dataset.vectors, ids=tiny_dataset.ids, show_progress=False)
    assert "ef" not in next(m for m in plain.info().modes if m.mode == "rabitq").knobs


def test_a_damaged_graph_file_is_named_when_the_version_opens(tmp_path, tiny_dataset):
    from vecdial.indexer.disk.collection import Collection

    vecdial.connect(tmp_path).create(
        "tiny",
        vectors=tiny_dataset.vectors,
        ids=tiny_dataset.ids,
        settings=vecdial.BuildSettings(graph=8, lexical=False),
        show_progress=False,
    )
    collection = Collection(tmp_path, "tiny")
    path = collection.open().path / GRAPH_FILE
    path.write_bytes(b"XXXX" + path.read_bytes()[4:])
    with pytest.raises(CorruptIndex, match=GRAPH_FILE):
        from vecdial.indexer.disk.version import open_version

        open_version(path.parent, verify_checksums=False)
