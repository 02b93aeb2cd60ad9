"""The create body's other forms (all vectors as one base64 array, a replacing create) and the
maintenance routes the remote client calls: POST sweep and POST repair."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from vecdial.indexer.plan.calibration import PSEUDO_MISS_FACTOR


def b64(rows: list[list[float]]) -> str:
    return base64.b64encode(np.asarray(rows, dtype="<f4").tobytes()).decode()


def test_create_from_one_base64_array_matches_create_from_lists(client, outside):
    response = client.post("/v1/collections", json={"name": "packed", "vectors_b64": b64(outside), "dim": 384, "ids": list(range(10))})
    assert response.status_code == 201 and response.json()["size"] == 10
    hits = client.post("/v1/collections/packed/search", json={"vector": outside[6], "k": 1}).json()["hits"]
    assert hits[0]["id"] == 6 and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ({"vectors_b64": "AACAPwAAAEA=", "dim": 2, "vectors": [[1.0, 2.0]]}, "not both"),
        ({"vectors_b64": "AACAPwAAAEA="}, "send `dim` with `vectors_b64`"),
        ({"vectors_b64": "AACAPwAAAEAAAEBA", "dim": 2}, "not a whole number of 2-dim vectors"),
        ({}, "give vectors, texts to encode, or a file path"),
    ],
)
def test_a_create_body_in_no_single_form_says_what_to_send(client, extra, fragment):
    response = client.post("/v1/collections", json={"name": "m", **extra})
    assert response.status_code == 422 and fragment in response.json()["message"]
    assert client.get("/v1/collections/m").status_code == 404


def test_a_replacing_create_builds_a_new_version_and_refuses_to_drop_writes(client, outside):
    client.post("/v1/collections/tiny/vectors/upsert", json={"items": [{"id": "w", "vector": outside[0]}]})
    body = {"name": "tiny", "vectors_b64": b64(outside[1:6]), "dim": 384, "ids": ["a", "b", "c", "d", "e"], "replace": True}
    refused = client.post("/v1/collections", json=body)
    assert refused.status_code == 409 and "reindex it" in refused.json()["message"]
    replaced = client.post("/v1/collections", json={**body, "discard_writes": True})
    assert replaced.status_code == 201 and (replaced.json()["size"], replaced.json()["version"]) == (5, "v000002")


def test_a_sweep_request_measures_and_serves_auto(client, inside):
    response = client.post("/v1/collections/tiny/sweep", json={"n": 30, "budgets": ["binary:rescore=10", "dense:dim=64"]})
    assert response.status_code == 200 and response.json()["queries"].startswith("pseudo-queries (30")  # the default: tiny has texts
    assert client.get("/v1/collections/tiny/sweep").json() == response.json()
    auto = client.post("/v1/collections/tiny/search", json={"vector": inside[0], "k": 1, "budget": "auto:target_recall=0.5"})
    assert auto.status_code == 200 and auto.json()["explain"]["calibration"]


def test_a_sweep_answer_states_each_points_query_gap_correction(client):
    points = client.post("/v1/collections/tiny/sweep", json={"n": 30, "budgets": ["binary:rescore=10"]}).json()["points"]
    assert {p["miss_factor"] for p in points} == {PSEUDO_MISS_FACTOR}  # pseudo-queries: real ones miss more
    assert client.get("/v1/collections/tiny/sweep").json()["points"] == points


def test_a_sweep_of_query_vectors_that_do_not_fill_rows_is_a_422(client):
    response = client.post("/v1/collections/tiny/sweep", json={"queries_b64": b64([[1.0] * 383])})
    assert response.status_code == 422 and "384-dim" in response.json()["message"]


def test_repair_of_a_healthy_log_changes_nothing_and_names_no_server_path(client, tiny_data_dir):
    report = client.post("/v1/collections/tiny/repair", params={"dry_run": "true"}).json()
    assert (report["repaired"], report["dry_run"], report["damaged"], report["backup"]) == (False, True, [], None)
    assert report["log"].startswith("tiny/") and str(tiny_data_dir) not in report["log"]
