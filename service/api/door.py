"""The HTTP door of a collection served as shards: the main app's pieces around a scatter.

`create_door(settings, name, scatter)` is what `service/sharded.py` serves on Ray Serve
(each shard in its own deployment) and what tests serve in process: the same `Settings`,
API key check, body limits, JSON parser, request models, k limit, request log and
`{"error", "message"}` error map as `create_app`, so a client sees one API whichever
serves it. Only the one-query vector search is sharded; the other routes, text queries and
filters stay with the plain service (`vecdial serve`) and are refused here saying so.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from vecdial import InvalidInput, NotFound
from vecdial._internal import ShardHits
from vecdial.service.answer_schemas import Health
from vecdial.service.api.deps import CollectionName, check_k
from vecdial.service.api.fast_json import FastJSONResponse, json_body, read_body
from vecdial.service.errors import COMMON_ERRORS, NOT_FOUND, install_error_handlers
from vecdial.service.middleware import AuthMiddleware, BodyLimitMiddleware, RequestLogMiddleware
from vecdial.service.schemas import SearchRequest
from vecdial.service.settings import Settings
from vecdial.service.shard_search import merged_response

# (queries (1, dim) float32, k, budget) -> every shard's top k; the caller merges them.
Scatter = Callable[[np.ndarray, int, Any], Awaitable[list[ShardHits]]]
OPEN_PATHS = frozenset({"/healthz"})
NOT_SHARDED = ("filter", "hybrid", "steer", "with_text", "with_payload", "explain_features")


def create_door(settings: Settings, name: str, scatter: Scatter) -> FastAPI:
    """The app answering `POST /v1/collections/{name}/search` over shards, and `/healthz`."""
    app = FastAPI(title="vecdial (sharded)", version="0.1.0", summary=f"Collection {name!r} served as shards.")
    app.state.settings = settings
    install_error_handlers(app)
    router = APIRouter(responses={**COMMON_ERRORS, **NOT_FOUND})

    @router.post("/v1/collections/{name}/search", summary="Search the shards by vector", openapi_extra=json_body(SearchRequest))
    async def search(request: Request, name: CollectionName) -> Response:
        """The k best hits over every shard under one budget; `explain.shards` holds each shard's explain."""
        served = app.state.collection
        if name != served:
            raise NotFound(f"collection {name!r} is not served here: this sharded service holds {served!r} only")
        body = await read_body(request, SearchRequest)
        k = check_k(body.k, settings)
        if body.text is not None:
            raise InvalidInput("text queries are served by the plain service (`vecdial serve`): send `vector` or `vector_b64`")
        asked = [field for field in NOT_SHARDED if getattr(body, field) not in (None, False)]
        if asked:
            raise InvalidInput(f"{', '.join(asked)}: not served over shards yet; leave it out, or use the plain service")
        query = np.asarray(body.vector if body.vector is not None else body.vector_b64, dtype=np.float32).reshape(1, -1)
        start = time.perf_counter()
        parts = await scatter(query, k, body.budget)
        request.state.log_extra = {"collection": name, "shards": len(parts)}
        return FastJSONResponse(merged_response(parts, k, body.budget, (time.perf_counter() - start) * 1000))

    @router.get("/healthz", summary="Liveness", response_model=Health)
    async def healthz() -> Health:
        return Health(status="ok")

    app.state.collection = name
    app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, limit_for=lambda path: settings.max_body_bytes)
    if settings.api_key is not None:
        app.add_middleware(AuthMiddleware, api_key=settings.api_key.get_secret_value(), open_paths=OPEN_PATHS)
    app.add_middleware(RequestLogMiddleware)
    return app
