"""Prometheus metrics: request and search latency, errors, writes, jobs, collection sizes.

With several uvicorn workers, `vecdial serve` points PROMETHEUS_MULTIPROC_DIR at a
fresh directory before the workers start; counters and histograms are then
summed over workers at scrape time. Collection sizes are read live from the
collections at scrape time (they are properties of the data, which every worker
sees the same), so they need no cross-process bookkeeping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

import vecdial
from vecdial import VecdialError

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

disable_created_metrics()  # `_created` series double the output and nobody graphs them
REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "vecdial_http_requests", "HTTP requests by route template and status.", ["method", "route", "status"], registry=REGISTRY
)
HTTP_SECONDS = Histogram(
    "vecdial_http_request_duration_seconds",
    "HTTP request latency, end to end in the server.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
ERRORS = Counter("vecdial_errors", "Error responses by route and error code.", ["route", "error"], registry=REGISTRY)
SEARCH_SECONDS = Histogram(
    "vecdial_search_duration_seconds",
    "Search time in the index (no HTTP), by budget mode.",
    ["mode"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
SEARCH_QUERIES = Counter(
    "vecdial_search_queries", "Queries answered, by budget mode (a batch counts each query).", ["mode"], registry=REGISTRY
)
ENCODE_SECONDS = Histogram(
    "vecdial_encode_duration_seconds",
    "Time the bundled model spent encoding one request's texts.",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
ENCODE_TEXTS = Counter("vecdial_encoded_texts", "Texts encoded with the bundled model (queries and upserted items).", registry=REGISTRY)
TIMEOUTS = Counter(
    "vecdial_request_timeouts",
    "Requests answered at request_timeout_s: busy (no thread came free, 503) or timeout (504).",
    ["work", "reason"],
    registry=REGISTRY,
)
OVERRUNNING = Gauge(
    "vecdial_overrunning_work",
    "Searches or encodes still running in a worker thread after their request timed out.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
WRITES = Counter("vecdial_writes", "Vectors upserted or deleted (acknowledged, durable).", ["op"], registry=REGISTRY)
JOBS = Counter("vecdial_jobs", "Jobs finished in this server, by kind and final state.", ["kind", "state"], registry=REGISTRY)
SWAPS = Counter(
    "vecdial_version_swaps", "Times a worker moved a collection to a newly swapped-in version.", ["collection"], registry=REGISTRY
)


class CollectionCollector(Collector):
    """Sizes of the collections this process holds, read from `Collection.info()` at scrape time."""

    def __init__(self, collections: Callable[[], Iterable[vecdial.Collection]], broken: Callable[[], dict[str, str]] = dict):
        self._collections = collections
        self._broken = broken

    def collect(self) -> Iterable[GaugeMetricFamily]:
        size = GaugeMetricFamily("vecdial_collection_vectors", "Live vectors searchable in a collection.", labels=["collection"])
        segment = GaugeMetricFamily(
            "vecdial_collection_segment_vectors", "Vectors written since the serving version was built (in the WAL).", labels=["collection"]
        )
        deleted = GaugeMetricFamily(
            "vecdial_collection_deleted_vectors", "Version rows deleted or overwritten since it was built.", labels=["collection"]
        )
        info = GaugeMetricFamily(
            "vecdial_collection_version_info", "The version a collection serves (value 1).", labels=["collection", "version"]
        )
        damaged = GaugeMetricFamily(
            "vecdial_collection_damaged",
            "1 while a collection's write-ahead log is damaged or missing: writes refused until `vecdial repair`.",
            labels=["collection"],
        )
        for collection in self._collections():
            try:
                described = collection.info()
            except VecdialError:  # dropped by another process since: no longer served
                continue
            size.add_metric([described.name], described.size)
            segment.add_metric([described.name], described.segment_size)
            deleted.add_metric([described.name], described.deleted)
            info.add_metric([described.name, described.version], 1)
            damaged.add_metric([described.name], 1 if described.damaged else 0)
        broken = GaugeMetricFamily(
            "vecdial_collection_broken", "1 for a collection that exists but cannot be opened (see /readyz for why).", labels=["collection"]
        )
        for name in self._broken():
            broken.add_metric([name], 1)
        return [size, segment, deleted, info, damaged, broken]


def render(collections: Callable[[], Iterable[vecdial.Collection]], broken: Callable[[], dict[str, str]] = dict) -> tuple[bytes, str]:
    """The exposition text for /metrics and its content type; `broken`: collections that cannot be opened."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(CollectionCollector(collections, broken))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward(Collector):
    """Exposes this process's own registry inside the per-scrape one."""

    def __init__(self, source: CollectorRegistry):
        self._source = source

    def collect(self) -> Iterable:
        return self._source.collect()
