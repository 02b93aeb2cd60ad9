"""Limits on what a client controls: encoding work per request, and the request timeout."""

from __future__ import annotations

import threading
import time

import pytest

import vecdial


def test_a_request_whose_texts_are_too_long_in_all_is_refused_before_encoding(make_client, demo_dataset, monkeypatch):
    client = make_client(max_encode_chars=100)
    encoded = []
    monkeypatch.setattr(vecdial.Collection, "encode", lambda self, texts: encoded.append(texts))
    texts = [demo_dataset.texts[i][:40] for i in range(3)]  # 120 characters in all, each under max_text_chars
    batch = client.post("/v1/collections/tiny/search/batch", json={"queries": [{"text": t} for t in texts]})
    upsert = client.post("/v1/collections/tiny/vectors/upsert", json={"items": [{"id": f"n{i}", "text": t} for i, t in enumerate(texts)]})
    for response in (batch, upsert):
        assert response.status_code == 422 and "120 characters in all, over this server's limit of 100" in response.json()["message"]
    assert encoded == [] and client.get("/v1/collections/tiny").json()["size"] == 300


def test_stored_texts_sent_with_their_vectors_do_not_count_as_encoding_work(make_client, demo_dataset, outside):
    client = make_client(max_encode_chars=100)
    items = [{"id": f"n{i}", "vector": outside[i], "text": demo_dataset.texts[1000 + i][:90]} for i in range(3)]
    response = client.post("/v1/collections/tiny/vectors/upsert", json={"items": items})
    assert response.status_code == 200 and response.json()["size"] == 303


def value(exposition: str, series: str) -> float:
    """One sample of a /metrics text (0 if the series has none yet)."""
    for line in exposition.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_text_queries_report_their_encoding_time_in_metrics(client, demo_dataset):
    before = client.get("/metrics").text
    queries = {"queries": [{"text": demo_dataset.texts[0]}, {"text": demo_dataset.texts[1]}]}
    assert client.post("/v1/collections/tiny/search/batch", json=queries).status_code == 200
    after = client.get("/metrics").text
    assert value(after, "vecdial_encode_duration_seconds_count") == value(before, "vecdial_encode_duration_seconds_count") + 1
    assert value(after, "vecdial_encoded_texts_total") == value(before, "vecdial_encoded_texts_total") + 2
    assert value(after, "vecdial_encode_duration_seconds_sum") > value(before, "vecdial_encode_duration_seconds_sum")


class SlowSearches:
    """Once armed, searches block until the test releases them (the server's start-up warm-up,
    which searches too, runs before the test arms it)."""

    def __init__(self) -> None:
        self.armed, self.released = threading.Event(), threading.Event()

    def arm(self) -> None:
        self.armed.set()

    def set(self) -> None:
        self.released.set()


@pytest.fixture
def slow_search(monkeypatch):
    gate = SlowSearches()
    search = vecdial.Collection.search

    def slow(self, *args, **kwargs):
        if gate.armed.is_set():
            gate.released.wait(10)
        return search(self, *args, **kwargs)

    monkeypatch.setattr(vecdial.Collection, "search", slow)
    yield gate
    gate.set()


def test_a_search_past_the_timeout_is_a_504_and_keeps_its_thread_until_it_ends(make_client, inside, slow_search):
    client = make_client(request_timeout_s=0.3, threads=1)
    slow_search.arm()
    before = client.get("/metrics").text  # counters are per process: compare with what earlier tests left
    timeouts = value(before, 'vecdial_request_timeouts_total{reason="timeout",work="search"}')
    busy_before = value(before, 'vecdial_request_timeouts_total{reason="busy",work="search"}')
    batch = {"queries": [{"vector": inside[0]}], "k": 3}
    started = time.perf_counter()
    late = client.post("/v1/collections/tiny/search/batch", json=batch)
    assert late.status_code == 504 and time.perf_counter() - started < 8  # a ceiling well under the 10 s search it abandoned
    assert late.json()["error"] == "timeout" and "request_timeout_s=0.3" in late.json()["message"]
    # The abandoned search still holds the only thread: the next request is told the server is busy.
    busy = client.post("/v1/collections/tiny/search", json={"vector": inside[1], "budget": "binary:rescore=5"})
    assert busy.status_code == 503 and busy.json()["error"] == "busy" and busy.headers["retry-after"] == "1"
    scraped = client.get("/metrics").text  # answered on the event loop, though no thread is free
    assert value(scraped, "vecdial_overrunning_work") == 1
    assert value(scraped, 'vecdial_request_timeouts_total{reason="timeout",work="search"}') == timeouts + 1
    assert value(scraped, 'vecdial_request_timeouts_total{reason="busy",work="search"}') == busy_before + 1
    slow_search.set()  # the search ends: its thread is free again
    deadline = time.monotonic() + 60  # a ceiling for a loaded machine, not a timing
    while value(client.get("/metrics").text, "vecdial_overrunning_work") != 0:
        assert time.monotonic() < deadline, "the finished search never gave its thread back"
        time.sleep(0.02)
    answered = client.post("/v1/collections/tiny/search/batch", json=batch)
    assert answered.status_code == 200 and answered.json()["results"][0][0]["score"] > 0.99
