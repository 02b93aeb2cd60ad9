"""`vecdial search --json` prints what the HTTP API answers for the same query with `with_text`
(the CLI always shows each hit's text): one shape, timings aside."""

import base64
import json

import numpy as np
import pytest

from vecdial.service.cli import main

SEARCH = "/v1/collections/tiny/search"
BUDGETS = ["exact", "dense:dim=64", "binary:rescore=10", "funnel:binary*20>128*4>full"]


def without_timings(body: dict) -> dict:
    """The body with every `ms` and `total_ms` blanked: the only fields two runs may differ in."""
    explain = dict(body["explain"], total_ms=None, stages=[dict(stage, ms=None) for stage in body["explain"]["stages"]])
    return dict(body, explain=explain)


def cli_search(capsys, data_dir, vectors_file, budget: str, k: int) -> dict:
    code = main(["--data-dir", str(data_dir), "search", "-c", "tiny", "--vector", str(vectors_file), "-b", budget, "-k", str(k), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


@pytest.mark.parametrize("budget", BUDGETS)
def test_one_query_prints_the_http_hits_and_explain(client, tiny_data_dir, inside, tmp_path, capsys, budget):
    np.save(tmp_path / "q.npy", np.asarray(inside[5], dtype=np.float32))
    printed = cli_search(capsys, tiny_data_dir, tmp_path / "q.npy", budget, k=5)
    served = client.post(SEARCH, json={"vector": inside[5], "k": 5, "budget": budget, "with_text": True}).json()
    assert list(printed) == list(served) == ["hits", "explain"]
    assert without_timings(printed) == without_timings(served)
    assert len(printed["hits"]) == 5 and printed["explain"]["budget"] == budget


@pytest.mark.parametrize("budget", BUDGETS)
def test_a_batch_prints_the_http_results_and_explain(client, tiny_data_dir, inside, tmp_path, capsys, budget):
    queries = np.asarray(inside[:3], dtype=np.float32)
    np.save(tmp_path / "q.npy", queries)
    printed = cli_search(capsys, tiny_data_dir, tmp_path / "q.npy", budget, k=4)
    as_list = client.post(
        SEARCH + "/batch", json={"queries": [{"vector": v} for v in inside[:3]], "k": 4, "budget": budget, "with_text": True}
    ).json()
    packed = base64.b64encode(queries.astype("<f4").tobytes()).decode()
    as_b64 = client.post(SEARCH + "/batch", json={"vectors_b64": packed, "dim": 384, "k": 4, "budget": budget, "with_text": True}).json()
    assert list(printed) == ["results", "explain"] and len(printed["results"]) == 3
    assert without_timings(printed) == without_timings(as_list) == without_timings(as_b64)


def test_sweep_json_prints_what_http_serves_for_the_sweep(client, tiny_data_dir, capsys):
    code = main(["--data-dir", str(tiny_data_dir), "sweep", "-c", "tiny", "-n", "30", "--quiet", "--max-seconds", "5", "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed == client.get("/v1/collections/tiny/sweep").json()
    assert printed["queries"].startswith("pseudo-queries (30") and all(p["miss_factor"] > 1 for p in printed["points"])
