"""Warm-up searches with every registered mode a collection serves, so no kernel compiles during a request."""

import numpy as np
import pytest

import vecdial
from vecdial.indexer.modes import MODES

COMPOSED = {"funnel", "auto"}  # described too, but made of the registered modes' stages


@pytest.fixture(scope="module")
def cells_and_graph(tmp_path_factory, demo_dataset) -> vecdial.Collection:
    """300 demo vectors in 4 cells, with a graph over the RaBitQ codes: every kernel variant."""
    db = vecdial.connect(tmp_path_factory.mktemp("warm"))
    vectors = np.asarray(demo_dataset.vectors[:300])
    return db.create("warm", vectors, settings={"partitions": 4, "graph": 8}, show_progress=False)


def test_warm_up_searches_with_every_registered_mode_the_collection_serves(cells_and_graph):
    budgets = cells_and_graph.warm_up()
    served = {info.mode for info in cells_and_graph.info().modes} - COMPOSED
    assert {vecdial.parse_budget(budget).mode for budget in budgets} == served
    assert served <= set(MODES) and "rabitq" in served


def test_warm_up_reaches_the_probed_and_the_graph_kernels(cells_and_graph):
    budgets = [vecdial.parse_budget(budget) for budget in cells_and_graph.warm_up()]
    probing = {name for name, mode in MODES.items() if "probe" in mode.budget.model_fields}
    assert {budget.mode for budget in budgets if getattr(budget, "probe", None)} == probing
    assert {"dense", "binary", "rabitq"} <= probing
    assert any(budget.mode == "rabitq" and budget.ef for budget in budgets)
