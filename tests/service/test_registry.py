"""What one server process keeps: handles, their dims, and which searches run on the event loop."""

import pytest

import vecdial
from vecdial.service.registry import INLINE_MS, Collections


def explain(budget: str, ms: float) -> vecdial.Explain:
    return vecdial.Explain(budget=budget, version="v000001", total_ms=ms)


def test_searches_run_on_the_event_loop_only_once_measured_quick(tiny_data_dir):
    collections = Collections(vecdial.connect(tiny_data_dir))
    assert not collections.quick("tiny", "binary:rescore=10")  # never measured: the thread pool
    collections.timed("tiny", explain("binary:rescore=10", INLINE_MS / 4))
    assert collections.quick("tiny", "binary:rescore=40") and collections.quick("tiny", {"mode": "binary", "rescore": 5})
    assert not collections.quick("tiny", "exact") and not collections.quick("other", "binary:rescore=10")
    collections.timed("tiny", explain("binary:rescore=1000", INLINE_MS * 3))  # the last measure decides
    assert not collections.quick("tiny", "binary:rescore=10")


def test_an_auto_budget_is_timed_as_auto_whatever_it_resolved_to(tiny_data_dir):
    collections = Collections(vecdial.connect(tiny_data_dir))
    collections.timed("tiny", explain("auto:target_recall=0.9 -> dense:dim=64", 0.1))
    assert collections.quick("tiny", "auto:target_recall=0.9") and not collections.quick("tiny", "dense:dim=64")


def test_open_remembers_the_dim_and_forget_drops_everything(tiny_data_dir):
    collections = Collections(vecdial.connect(tiny_data_dir))
    assert collections.cached("tiny") is None
    handle = collections.open("tiny")
    assert collections.cached("tiny") is handle and collections.dim(handle) == 384 and collections.loaded() == [handle]
    collections.timed("tiny", explain("exact", 0.1))
    collections.forget("tiny")
    assert collections.cached("tiny") is None and collections.loaded() == [] and not collections.quick("tiny", "exact")
    assert collections.dim(handle) == 384  # a request still holding the handle gets its answer, not a KeyError


def test_the_dim_of_a_handle_whose_collection_was_dropped_meanwhile_is_not_found(tiny_data_dir):
    collections = Collections(vecdial.connect(tiny_data_dir))
    handle = collections.open("tiny")
    vecdial.connect(tiny_data_dir).drop("tiny")
    collections.forget("tiny")
    with pytest.raises(vecdial.NotFound):
        collections.dim(handle)


@pytest.mark.parametrize("preload", [True, False])
def test_startup_loads_the_compiled_kernels_before_ready(tiny_data_dir, preload):
    """In a fresh process: with preload, the one-query kernels are loaded by startup, not by a request."""
    import subprocess
    import sys

    code = (
        "from fastapi.testclient import TestClient\n"
        "from vecdial.service.app import create_app\n"
        "from vecdial.service.settings import Settings\n"
        "from vecdial.indexer.stores import kernels\n"
        f"client = TestClient(create_app(Settings(data_dir={str(tiny_data_dir)!r}, log_level='warning', preload={preload})))\n"
        "client.__enter__()\n"
        "print(len(kernels.scan_ranges.signatures), len(kernels.best_rows_major.signatures))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = [int(n) > 0 for n in done.stdout.split()[-2:]]
    assert loaded == ([True, True] if preload else [False, False])
