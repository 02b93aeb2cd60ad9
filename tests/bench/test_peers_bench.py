"""The peers bench's core runs end to end on a slice of the demo vectors and reports sane recall."""

from __future__ import annotations

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from bench.peers.registry import available
from bench.peers.report import dominance_lines, pareto, summary_table
from bench.peers_bench import run_peers


def test_peers_bench_core_on_demo_vectors(demo_vectors):
    docs, queries = (np.ascontiguousarray(a, dtype=np.float32) for a in demo_vectors)
    faiss.omp_set_num_threads(1)
    with threadpool_limits(1):
        rows, notes = run_peers(
            docs,
            queries,
            ["flat", "binary-rescore", "vecdial"],
            budgets=["exact", "binary:rescore=10", "nosuch:budget=1"],
            grid="small",
            single=20,
            batch=50,
            rounds=1,
            ram=False,
            log=lambda *_: None,
        )
    assert {r.system for r in rows} == {"flat", "binary-rescore", "vecdial"}
    assert all(0.0 <= r.recall <= 1.0 for r in rows)
    assert [r.recall for r in rows if r.system == "flat"] == [1.0]
    assert next(r for r in rows if r.setting == "exact" and r.system == "vecdial").recall == 1.0
    assert all(r.single_qps and r.batch_qps for r in rows)
    # a budget this vecdial cannot parse is skipped with a note, not a crash
    assert any("nosuch:budget=1" in note for note in notes)
    assert not any(r.setting == "nosuch:budget=1" for r in rows)
    summary_table(rows)
    assert len(dominance_lines(rows)) >= 6


def test_missing_usearch_is_a_note(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_usearch(name, *args, **kwargs):
        if name.startswith("usearch"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_usearch)
    assert "usearch" in available("usearch-i8")


def test_pareto_front():
    points = [(0.9, 100.0), (0.95, 50.0), (0.92, 40.0), (0.99, 10.0), (0.8, 90.0)]
    assert pareto(points) == [0, 1, 3]
