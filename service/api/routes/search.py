"""Search a collection by vector or text, one query or a batch, under a per-request budget.

The response is what `vecdial search --json` prints: `{"hits", "explain"}` for one
query, `Hits.to_dict()` (`{"results", "explain"}`) for a batch, where `explain`
is `Hits.explain.to_dict()`. Rendered by orjson straight from those dicts: the
response models below document the shape and are not re-validated per request.
"""

from __future__ import annotations

import random

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

import vecdial
from vecdial import InvalidInput
from vecdial.service import metrics
from vecdial.service.api.deps import (
    CollectionDep,
    CollectionName,
    CollectionsDep,
    SettingsDep,
    check_k,
    collection_named,
)
from vecdial.service.api.fast_json import FastJSONResponse, FastJSONRoute, json_body, read_body
from vecdial.service.deadline import run_within
from vecdial.service.encoding import check_encode_budget, check_texts, encode
from vecdial.service.errors import COMMON_ERRORS, NOT_FOUND, TIMEOUTS
from vecdial.service.registry import Collections
from vecdial.service.schemas import BatchSearchRequest, BatchSearchResponse, Query, SearchRequest, SearchResponse
from vecdial.service.settings import Settings
from vecdial.service.vectors import matrix_from_b64

router = APIRouter(
    prefix="/v1/collections/{name}", tags=["search"], responses={**COMMON_ERRORS, **NOT_FOUND, **TIMEOUTS}, route_class=FastJSONRoute
)
AFTER_TIMEOUT = "ask for less (a smaller k, a cheaper budget, fewer queries or shorter texts), or retry later"


@router.post("/search", summary="Search by vector or text", response_model=SearchResponse, openapi_extra=json_body(SearchRequest))
async def search(name: CollectionName, request: Request) -> Response:
    """The k best hits for one query, and an `explain` block: the budget used, and per
    stage the candidates kept, the time taken and the bytes of index data read.
    Send the vector as `vector` (a list of numbers) or, cheaper to parse, as
    `vector_b64` (base64 of little-endian float32)."""
    # The hot path reads its body and state itself: FastAPI's body handling and dependency
    # solving cost ~0.15 ms and ~0.1 ms a request here.
    settings: Settings = request.app.state.settings
    collections: Collections = request.app.state.collections
    collection = await collection_named(name, request, collections)
    body = await read_body(request, SearchRequest)
    k = check_k(body.k, settings)
    dim = collections.dim(collection)

    asked: list[np.ndarray] = []  # the query as searched (a text encoded), for the traffic sample

    def run() -> vecdial.Hits:
        asked.append(_query_matrix(collection, [body], dim, settings))
        return _run(collection, collections, asked[0], k, body, request, settings)

    plain = body.filter is None and body.hybrid is None and body.steer is None and not body.explain_features
    quick = body.text is None and plain and collections.quick(collection.name, body.budget)
    hits = run() if quick else await run_within(settings.request_timeout_s, run, "search", AFTER_TIMEOUT)
    collections.timed(collection.name, hits.explain)
    if settings.query_sample_rate and random.random() < settings.query_sample_rate:
        collection.keep_queries(asked[0], settings.query_sample_size)  # opt-in: see Settings.query_sample_rate
    return FastJSONResponse({"hits": hits[0], "explain": hits.explain.to_dict()})


@router.post("/search/batch", summary="Search many queries at once", response_model=BatchSearchResponse)
async def search_batch(
    body: BatchSearchRequest, collection: CollectionDep, collections: CollectionsDep, settings: SettingsDep, request: Request
) -> Response:
    """Answers every query with one pass over the index: cheaper per query than single searches.
    Send `queries` (each a vector, vector_b64 or text), or every vector at once as
    `vectors_b64` with their `dim`."""
    k = check_k(body.k, settings)
    dim = collections.dim(collection)

    def run() -> vecdial.Hits:
        if body.vectors_b64 is not None:
            queries = _check_batch(matrix_from_b64(body.vectors_b64, body.dim, dim), settings)  # type: ignore[arg-type]
        else:
            queries = _query_matrix(collection, body.queries, dim, settings)  # type: ignore[arg-type]
        return _run(collection, collections, queries, k, body, request, settings)

    hits = await run_within(settings.request_timeout_s, run, "search", AFTER_TIMEOUT)
    return FastJSONResponse(hits.to_dict())


def _run(
    collection: vecdial.Collection,
    collections: Collections,
    queries: np.ndarray,
    k: int,
    body: SearchRequest | BatchSearchRequest,
    request: Request,
    settings: Settings,
) -> vecdial.Hits:
    # One query runs on one thread whatever the setting (the library's rule); a batch may use native_threads.
    hits = collection.search(
        queries,
        k,
        body.budget,
        with_text=body.with_text,
        threads=settings.native_threads,
        filter=body.filter,
        with_payload=body.with_payload,
        hybrid=body.hybrid,
        texts=_texts(body) if body.hybrid is not None else None,
        steer=body.steer,
        explain_features=body.explain_features,
    )
    mode = hits.explain.budget.split(":", 1)[0]  # as requested: `auto:... -> dense:dim=64` counts as auto
    request.state.log_extra = {"collection": collection.name, "mode": mode, "queries": len(queries)}
    collections.served(collection.name, hits.explain.version)
    metrics.SEARCH_SECONDS.labels(mode).observe(hits.explain.total_ms / 1000)
    metrics.SEARCH_QUERIES.labels(mode).inc(len(queries))
    return hits


def _texts(body: SearchRequest | BatchSearchRequest) -> list[str] | None:
    """The queries' texts, if every query was sent as text (what hybrid's lexical signal reads)."""
    if isinstance(body, BatchSearchRequest) and body.texts is not None:
        return body.texts
    queries = [body] if isinstance(body, SearchRequest) else (body.queries or [])
    texts = [query.text for query in queries]
    return texts if texts and all(text is not None for text in texts) else None


def _query_matrix(collection: vecdial.Collection, queries: list[Query], dim: int, settings: Settings) -> np.ndarray:
    """(nq, dim) float32: vectors as sent, texts encoded; a wrong length names the query."""
    matrix = _check_batch(np.empty((len(queries), dim), dtype=np.float32), settings)  # before encoding any text
    text_rows = []
    for i, query in enumerate(queries):
        vector = query.vector if query.vector is not None else query.vector_b64
        if vector is None:
            text_rows.append(i)
            continue
        if len(vector) != dim:
            field = "vector" if query.vector is not None else "vector_b64"
            where = field if len(queries) == 1 else f"queries[{i}].{field}"
            raise InvalidInput(f"{where} has {len(vector)} numbers, the collection has {dim} dims: send {dim}")
        matrix[i] = vector
    if text_rows:
        texts = check_encode_budget(check_texts([queries[i].text for i in text_rows], settings), settings)  # type: ignore[misc]
        matrix[text_rows] = encode(collection, texts, dim)
    return matrix


def _check_batch(queries: np.ndarray, settings: Settings) -> np.ndarray:
    if len(queries) > settings.max_batch:
        raise InvalidInput(f"{len(queries)} queries is over this server's batch limit of {settings.max_batch}: split the batch")
    return queries
