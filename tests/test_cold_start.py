"""What a fresh process pays, and when: no torch for budgets that do not need it, and a
server whose first text query does not load the encoder (it loaded before /readyz).

Each check runs in a new interpreter, since this test process has imported torch already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("torch")

import vecdial  # noqa: E402

SMALL_SPARSE = {"sparse": {"max_active": 16, "hidden_mult": 2, "min_steps": 40}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, demo_dataset):
    root = tmp_path_factory.mktemp("cold")
    vectors = np.asarray(demo_dataset.vectors[:300])
    db = vecdial.connect(root)
    db.create(
        "docs",
        vectors,
        texts=demo_dataset.texts[:300],
        ids=demo_dataset.ids[:300],
        source_model=demo_dataset.source_model,
        settings=SMALL_SPARSE,
        show_progress=False,
    )
    np.save(root / "q.npy", vectors[:2])
    return root


def fresh(code: str) -> dict:
    """Run `code` in a new interpreter; it prints one JSON object, returned."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_searching_a_collection_built_with_sparse_codes_imports_torch_only_for_a_sparse_budget(data_dir):
    seen = fresh(
        f"""
        import json, sys, numpy as np, vecdial
        docs = vecdial.connect({str(data_dir)!r}).open("docs")
        q = np.load({str(data_dir / "q.npy")!r})
        docs.search(q, k=5, budget="binary:rescore=10"); docs.info()
        before = "torch" in sys.modules
        hits = docs.search(q, k=5, budget="sparse:active=8,rescore=10")
        print(json.dumps({{"before": before, "after": "torch" in sys.modules, "found": hits.found.tolist()}}))
        """
    )
    assert seen == {"before": False, "after": True, "found": [5, 5]}


def test_the_server_loads_the_encoder_before_it_reports_ready(data_dir):
    seen = fresh(
        f"""
        import json, sys
        from fastapi.testclient import TestClient
        from vecdial.service.app import create_app
        from vecdial.service.settings import Settings
        app = create_app(Settings(data_dir={str(data_dir)!r}, log_level="warning"))
        before = "sentence_transformers" in sys.modules
        with TestClient(app) as client:
            ready = client.get("/readyz").status_code
            loaded = "sentence_transformers" in sys.modules
        print(json.dumps({{"before": before, "ready": ready, "loaded_when_ready": loaded}}))
        """
    )
    assert seen == {"before": False, "ready": 200, "loaded_when_ready": True}
