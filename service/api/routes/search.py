"""Search a collection by vector or text, one query or a batch, under a per-request budget."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request

from vecdial.indexer.errors import InvalidInput
from vecdial import Hits
from vecdial.indexer.live.snapshot import LiveSnapshot
from vecdial.service import metrics
from vecdial.service.api.deps import LiveDep, SettingsDep, check_k, check_texts
from vecdial.service.encode import encode_for
from vecdial.service.errors import COMMON_ERRORS, NOT_FOUND
from vecdial.service.native import ensure_thread_limits
from vecdial.service.schemas import BatchSearchRequest, BatchSearchResponse, Explain, Hit, Query, SearchRequest, SearchResponse
from vecdial.service.settings import Settings

router = APIRouter(prefix="/v1/collections/{name}", tags=["search"], responses={**COMMON_ERRORS, **NOT_FOUND})


@router.post("/search", summary="Search by vector or text", response_model=SearchResponse, response_model_exclude_none=True)
def search(body: SearchRequest, collection: LiveDep, settings: SettingsDep, request: Request) -> SearchResponse:
    """The k best hits for one query, and an `explain` block: the budget used, and per
    stage the candidates kept, the time taken and the bytes of index data read."""
    snapshot = collection.snapshot()
    queries = _query_matrix(snapshot, [body], settings)
    result = _run(snapshot, queries, check_k(body.k, settings), body, request, settings)
    return SearchResponse(hits=_hits(result, 0), explain=_explain(result))


@router.post("/search/batch", summary="Search many queries at once", response_model=BatchSearchResponse, response_model_exclude_none=True)
def search_batch(body: BatchSearchRequest, collection: LiveDep, settings: SettingsDep, request: Request) -> BatchSearchResponse:
    """Answers every query with one pass over the index: cheaper per query than single searches."""
    if len(body.queries) > settings.max_batch:
        raise InvalidInput(f"{len(body.queries)} queries is over this server's batch limit of {settings.max_batch}: split the batch")
    snapshot = collection.snapshot()
    queries = _query_matrix(snapshot, body.queries, settings)
    result = _run(snapshot, queries, check_k(body.k, settings), body, request, settings)
    return BatchSearchResponse(results=[_hits(result, i) for i in range(len(result.ids))], explain=_explain(result))


def _run(
    snapshot: LiveSnapshot, queries: np.ndarray, k: int, body: SearchRequest | BatchSearchRequest, request: Request, settings: Settings
) -> Hits:
    ensure_thread_limits(settings.native_threads)
    mode = body.budget.mode
    request.state.log_extra = {"collection": snapshot.name, "mode": mode, "queries": len(queries)}
    result = snapshot.search(queries, k, body.budget, with_text=body.with_text)
    metrics.SEARCH_SECONDS.labels(mode).observe(result.explain.total_ms / 1000)
    metrics.SEARCH_QUERIES.labels(mode).inc(len(queries))
    return result


def _query_matrix(snapshot: LiveSnapshot, queries: list[Query], settings: Settings) -> np.ndarray:
    """(nq, dim) float32: vectors as sent, texts encoded; a wrong length names the query."""
    dim = snapshot.version.dim
    matrix = np.empty((len(queries), dim), dtype=np.float32)
    text_rows = [i for i, q in enumerate(queries) if q.text is not None]
    for i, query in enumerate(queries):
        if query.vector is not None:
            if len(query.vector) != dim:
                where = "vector" if len(queries) == 1 else f"queries[{i}].vector"
                raise InvalidInput(f"{where} has {len(query.vector)} numbers, the collection has {dim} dims: send {dim}")
            matrix[i] = query.vector
    if text_rows:
        texts = check_texts([queries[i].text for i in text_rows], settings)  # type: ignore[misc]
        matrix[text_rows] = encode_for(snapshot, texts)
    return matrix


def _hits(result: Hits, query: int) -> list[Hit]:
    return [Hit(**hit) for hit in result[query]]


def _explain(result: Hits) -> Explain:
    return Explain.model_validate(result.explain.to_dict())
