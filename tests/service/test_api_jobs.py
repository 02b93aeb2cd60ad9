"""Reindex jobs over HTTP: start, watch, cancel; searches keep answering through the swap."""

import threading
import time

import pytest

pytestmark = pytest.mark.also_sharded  # over 'tiny' whole and in 2 shards


def slow_down_builds(monkeypatch, seconds: float, until: threading.Event | None = None) -> None:
    """Builds start `seconds` late, or when `until` is set (at most 30 s)."""
    import vecdial.indexer.jobs.reindex

    real_build = vecdial.indexer.jobs.reindex.build_version

    def slow_build(*args, **kwargs):
        if until is not None:
            until.wait(30)
        else:
            time.sleep(seconds)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(vecdial.indexer.jobs.reindex, "build_version", slow_build)


def wait_for(client, job_id, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still running after {timeout}s")


def test_reindex_runs_in_the_background_and_swaps_in_the_new_version(client, outside, version_of):
    client.post("/v1/collections/tiny/vectors/upsert", json={"items": [{"id": "new", "vector": outside[0]}]})
    response = client.post("/v1/collections/tiny/reindex", json={"dtype": "float16", "binary_center": True})
    assert response.status_code == 202
    job = wait_for(client, response.json()["id"])
    assert (job["state"], job["progress"], job["to_version"], job["vectors"]) == ("succeeded", 1.0, version_of(2), 301)
    info = client.get("/v1/collections/tiny").json()
    assert (info["version"], info["size"], info["segment_size"], info["settings"]["dtype"]) == (version_of(2), 301, 0, "float16")
    assert client.post("/v1/collections/tiny/search", json={"vector": outside[0], "k": 1}).json()["hits"][0]["id"] == "new"


def finished_jobs_counted(client, state: str) -> float:
    """vecdial_jobs_total{kind="reindex",state=...} from /metrics (0 if not yet there)."""
    prefix = f'vecdial_jobs_total{{kind="reindex",state="{state}"}} '
    return next((float(line[len(prefix) :]) for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)), 0.0)


def test_finished_jobs_are_counted_once_by_final_state(client):
    before = finished_jobs_counted(client, "succeeded")
    wait_for(client, client.post("/v1/collections/tiny/reindex", json={"block": 64}).json()["id"])
    assert finished_jobs_counted(client, "succeeded") == before + 1
    assert finished_jobs_counted(client, "succeeded") == before + 1  # a second scrape counts nothing new


def test_searches_during_a_reindex_never_fail(client, inside, demo_dataset, monkeypatch, version_of):
    searched_old = threading.Event()
    slow_down_builds(monkeypatch, seconds=0, until=searched_old)  # the build waits for a search of the old version
    job_id = client.post("/v1/collections/tiny/reindex", json={"rotation": "identity"}).json()["id"]
    versions, finished = set(), False
    while not finished:
        finished = client.get(f"/v1/jobs/{job_id}").json()["state"] not in ("queued", "running")
        response = client.post("/v1/collections/tiny/search", json={"vector": inside[1], "k": 1, "budget": "dense:dim=64"})
        assert response.status_code == 200 and response.json()["hits"][0]["id"] == demo_dataset.ids[1]
        versions.add(response.json()["explain"]["version"])
        searched_old.set()
    assert wait_for(client, job_id)["state"] == "succeeded"
    # the old version, then the new (over shards, each shard swaps on its own: a mix may answer between)
    assert {version_of(1), version_of(2)} <= versions and all(set(v.split("+")) <= {"v000001", "v000002"} for v in versions)


def test_a_second_reindex_of_the_same_collection_is_a_409(client):
    first = client.post("/v1/collections/tiny/reindex", json={}).json()
    second = client.post("/v1/collections/tiny/reindex", json={})
    assert second.status_code == 409 and first["id"] in second.json()["message"]
    wait_for(client, first["id"])


def test_a_cancelled_reindex_leaves_the_old_version_serving(client, monkeypatch, version_of):
    cancelled = threading.Event()
    slow_down_builds(monkeypatch, seconds=0, until=cancelled)  # the build reads no batch before the cancel lands
    job_id = client.post("/v1/collections/tiny/reindex", json={}).json()["id"]
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    cancelled.set()
    job = wait_for(client, job_id)
    assert job["state"] == "cancelled" and "previous version keeps serving" in job["message"]
    assert client.get("/v1/collections/tiny").json()["version"] == version_of(1)


def test_jobs_are_listed_newest_first(client):
    ids = [client.post("/v1/collections/tiny/reindex", json={}).json()["id"]]
    wait_for(client, ids[0])
    ids.append(client.post("/v1/collections/tiny/reindex", json={"block": 64}).json()["id"])
    wait_for(client, ids[1])
    assert [job["id"] for job in client.get("/v1/jobs").json()] == ids[::-1]


@pytest.mark.parametrize(
    "path, body, status, fragment",
    [
        ("/v1/collections/tiny/reindex", {"dtype": "int4"}, 422, "dtype"),
        (
            "/v1/collections/tiny/reindex",
            {"sparse": {"max_active": 0}},
            422,
            "sparse.max_active: Input should be greater than or equal to 1",
        ),
        ("/v1/collections/tiny/reindex", {"sparse": {"k": 16}}, 422, "sparse.k: Extra inputs are not permitted"),
        ("/v1/collections/tiny/reindex", {"sparse": "yes"}, 422, "sparse: use false (no sparse codes), true, or an object"),
        ("/v1/collections/tiny/reindex", {"block": None}, 422, "block: Input should be a valid integer"),
        ("/v1/collections/nope/reindex", {}, 404, "does not exist"),
    ],
)
def test_bad_reindex_requests_are_refused(client, path, body, status, fragment):
    response = client.post(path, json=body)
    assert response.status_code == status and fragment in response.json()["message"]


def test_unknown_jobs_are_404(client):
    assert client.get("/v1/jobs/" + "a" * 32).status_code == 404
    assert client.post("/v1/jobs/not-a-job/cancel").status_code == 404
