"""Partitioned storage: rows are stored cell by cell, and `probe` reads only the cells nearest
each query, in every mode that finds candidates, with deletions and writes still honoured."""

import re

import numpy as np
import pytest

import vecdial
from vecdial.indexer.errors import BudgetError
from vecdial.indexer.modes import MODES
from vecdial.indexer.plan.budget import format_budget, parse_budget

FUNNELS = ["funnel:64*10>full,probe={p}", "funnel:rabitq*10>full,probe={p}"]  # stages over the modes: not a mode of their own


def probed(collection, mode: str, mode_budgets) -> list[str]:
    """A registered mode's probed warm-up budgets as templates over probe={p} (or the funnels)."""
    if mode == "funnel":
        return FUNNELS
    found = [re.sub(r"probe=[0-9.]+", "probe={p}", budget) for budget in mode_budgets(collection, mode) if "probe=" in budget]
    if not found:
        pytest.skip(f"{mode} reads no cells")
    return found


@pytest.fixture(scope="module")
def demo(demo_collection):
    return vecdial.connect(demo_collection.path.parent).open(demo_collection.name)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true ids found (a probe of small cells may find fewer than k)."""
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / t.shape[0] for f, t in zip(found, truth)]))


def test_rows_are_stored_cell_by_cell_in_their_nearest_cell(demo_collection, demo_dataset):
    version = demo_collection.open()
    cells = version.partitions
    assert cells.count == version.manifest.partitions > 1 and cells.offsets[-1] == version.size
    position = {item: i for i, item in enumerate(demo_dataset.ids.tolist())}
    stored = np.asarray(demo_dataset.vectors)[[position[i] for i in version.ids.tolist()]]
    unit = stored / np.linalg.norm(stored, axis=1, keepdims=True)
    nearest = cells.nearest(unit.astype(np.float32), 1)[:, 0]
    assert (np.diff(nearest) >= 0).all()  # cell after cell
    assert (np.searchsorted(cells.offsets, np.arange(version.size), side="right") - 1 == nearest).all()


@pytest.mark.parametrize("mode", [*MODES, "funnel"])
def test_probing_every_cell_answers_as_the_full_scan(demo, demo_collection, demo_vectors, mode, mode_budgets, same_knn):
    queries = demo_vectors[1][:40]
    for budget in probed(demo_collection, mode, mode_budgets):
        every = demo.search(queries, k=10, budget=budget.format(p=demo.info().to_dict().get("partitions") or 10_000))
        full = demo.search(queries, k=10, budget=budget.replace(",probe={p}", ""))
        same_knn(full.ids, full.scores, every.ids, every.scores, atol=1e-5)


@pytest.mark.parametrize("mode", [*MODES, "funnel"])
def test_more_cells_find_more_of_the_true_neighbours_and_read_less_than_a_scan(demo, demo_collection, demo_vectors, mode, mode_budgets):
    queries = demo_vectors[1]
    truth = demo.search(queries, k=10, budget="exact").ids
    for budget in probed(demo_collection, mode, mode_budgets):
        recalls = [recall(demo.search(queries, k=10, budget=budget.format(p=p)).ids, truth) for p in (1, 4, 16)]
        assert recalls[0] < recalls[1] < recalls[2], (budget, recalls)
        cells = demo.search(queries[:1], k=10, budget=budget.format(p=4)).explain.stages[0]
        scanned = demo.search(queries[:1], k=10, budget=budget.replace(",probe={p}", "")).explain.stages[0]
        assert "probe=4" in cells.stage and 0 < cells.bytes_read < scanned.bytes_read / 5, budget


def test_a_fraction_probes_that_share_of_the_cells(demo, demo_vectors):
    cells = demo.info().to_dict()["partitions"]
    stage = demo.search(demo_vectors[1][:1], k=5, budget="dense:dim=32,probe=0.1").explain.stages[0]
    assert stage.stage.endswith(f"probe={int(np.ceil(0.1 * cells))}")


@pytest.mark.parametrize("budget", ["binary:rescore=10,probe={p}", "rabitq:rescore=10,probe={p}"])
def test_deleted_and_new_items_are_honoured_when_probing(tmp_path, tiny_dataset, outside_vectors, budget):
    col = vecdial.connect(tmp_path).create(
        "cells", vectors=tiny_dataset.vectors, ids=tiny_dataset.ids, settings=vecdial.BuildSettings(partitions=16), show_progress=False
    )
    assert col.info().partitions == 16
    first = col.search(outside_vectors[0], k=10, budget=budget.format(p=2))
    col.delete(first.ids[0, :5].tolist())
    col.upsert(["new-item"], outside_vectors[:1])
    again = col.search(outside_vectors[0], k=10, budget=budget.format(p=2))
    assert again.ids[0, 0] == "new-item" and again.found[0] == 10  # the write segment is searched whole
    assert not set(first.ids[0, :5].tolist()) & set(again.ids[0].tolist())


def test_probe_on_a_collection_without_partitions_says_to_reindex(tmp_path, tiny_dataset):
    col = vecdial.connect(tmp_path).create(
        "flat", vectors=tiny_dataset.vectors, ids=tiny_dataset.ids, settings=vecdial.BuildSettings(partitions=0), show_progress=False
    )
    assert col.search(tiny_dataset.vectors[0], k=3, budget="dense:dim=32").ids[0, 0] == tiny_dataset.ids[0]
    with pytest.raises(BudgetError, match="not partitioned.*reindex"):
        col.search(tiny_dataset.vectors[0], k=3, budget="dense:dim=32,probe=4")


@pytest.mark.parametrize("spec", ["binary:rescore=10,probe=16", "dense:dim=64,probe=0.05", "funnel:binary*40>128*10>full,probe=8"])
def test_probe_round_trips_through_the_string_form(spec):
    assert format_budget(parse_budget(spec)) == spec
    assert parse_budget(format_budget(parse_budget(spec))) == parse_budget(spec)


@pytest.mark.parametrize("spec, says", [("dense:dim=64,probe=0", "greater than 0"), ("binary:rescore=5,probe=2.5", "whole number")])
def test_bad_probes_are_refused(demo, demo_vectors, spec, says):
    with pytest.raises(BudgetError, match=says):
        demo.search(demo_vectors[1][:1], k=5, budget=spec)


def test_float16_stores_probe_like_float32_ones(tmp_path, demo_dataset, demo_vectors):
    """The compiled loops read float32: a float16 store copies out only the probed rows."""
    made = {
        dtype: vecdial.connect(tmp_path / dtype).create(
            "d",
            vectors=demo_dataset.vectors,
            ids=demo_dataset.ids,
            settings=vecdial.BuildSettings(dtype=dtype, partitions=40),
            show_progress=False,
        )
        for dtype in ("float32", "float16")
    }
    queries = demo_vectors[1][:20]
    for budget in ("dense:dim=64,probe=4", "funnel:64*10>full,probe=4"):
        a, b = (made[d].search(queries, k=10, budget=budget) for d in ("float32", "float16"))
        assert (a.ids == b.ids).mean() > 0.95 and np.allclose(a.scores, b.scores, atol=2e-3)
        assert (
            b.explain.stages[0].bytes_read
            < made["float16"]
            .search(queries[:1], k=10, budget=budget.split(",probe")[0] if "funnel" not in budget else "funnel:64*10>full")
            .explain.stages[0]
            .bytes_read
        )


def test_rabitq_reads_the_codes_of_its_cells_only_below_the_share_where_they_pay(demo, demo_vectors):
    from vecdial.indexer.stores.rabitq import CELLS_PAY_SHARE

    cells = demo.info().partitions
    few = int(CELLS_PAY_SHARE * cells)
    scanned = demo.search(demo_vectors[1][:1], k=10, budget="rabitq:rescore=5").explain.stages[0].bytes_read
    probed = demo.search(demo_vectors[1][:1], k=10, budget=f"rabitq:rescore=5,probe={few}").explain.stages[0].bytes_read
    wide = demo.search(demo_vectors[1][:1], k=10, budget=f"rabitq:rescore=5,probe={few + 2}").explain.stages[0].bytes_read
    assert probed < scanned / 2 and wide == scanned  # above the share every code is scanned, as fast


def test_ef_and_probe_together_are_refused(demo, demo_vectors):
    with pytest.raises(BudgetError, match="ef and probe"):
        demo.search(demo_vectors[1][:1], k=10, budget="rabitq:rescore=5,ef=64,probe=4")
