"""The FastAPI app: `create_app(settings)` builds one, `create_app_from_env()` is what
each uvicorn worker calls (settings come from the environment `vecdial serve` set)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import vecdial
from vecdial.service.api.routes import include_routes
from vecdial.service.errors import install_error_handlers
from vecdial.service.logs import configure_logging
from vecdial.service.middleware import AuthMiddleware, BodyLimitMiddleware, RequestLogMiddleware
from vecdial.service.native import limit_native_threads
from vecdial.service.registry import Collections, JobBoard
from vecdial.service.settings import Settings

log = logging.getLogger("vecdial.app")

DESCRIPTION = """
Compressed-embedding search where every query chooses its budget.

* **Search** a collection by `vector` or `text` with a `budget` per request:
  `exact`, `dense` (`dim`), `binary` (`rescore`), `sparse` (`active`, `rescore`) or
  `funnel` (`stages`). Every response explains what the budget cost.
* **Write**: upserts and deletes are durable (write-ahead log, fsync) before they are
  acknowledged and are searchable at once, in every mode.
* **Reindex** with new compression settings in the background; the new version is
  swapped in atomically while searches continue.

Errors are `{"error": code, "message": what to change}`. When the server has an API
key, every route but `/healthz` and `/readyz` (and `/metrics` with `metrics_public`)
needs `Authorization: Bearer <key>`, this page and the schema included.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_json)
    limit_native_threads(settings.native_threads)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = vecdial.connect(settings.data_dir, verify_checksums=settings.verify_checksums)
    collections, jobs = Collections(db), JobBoard(db)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        if settings.preload:
            await run_in_threadpool(collections.preload)
        app.state.lifecycle = "ready"
        log.info("ready", extra={"data_dir": str(settings.data_dir), "collections": len(collections.loaded())})
        try:
            yield
        finally:
            app.state.lifecycle = "stopping"
            await run_in_threadpool(jobs.shutdown)

    app = FastAPI(
        title="vecdial",
        version="0.1.0",
        summary="Compressed-embedding retrieval with a budget per query.",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.collections = collections
    app.state.jobs = jobs
    app.state.lifecycle = "starting"
    install_error_handlers(app, forget=collections.forget)
    include_routes(app, settings)
    app.add_middleware(BodyLimitMiddleware, limit_for=_body_limits(settings))
    if settings.api_key is not None:  # inside the request log, so refusals are logged and counted
        app.add_middleware(AuthMiddleware, api_key=settings.api_key.get_secret_value(), open_paths=_open_paths(settings))
        _document_api_key(app, _open_paths(settings))
    app.add_middleware(RequestLogMiddleware)
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory (`--factory service.app:create_app_from_env`) for worker processes."""
    return create_app(Settings())


def _body_limits(settings: Settings) -> Callable[[str], int]:
    def limit_for(path: str) -> int:
        return settings.max_upload_bytes if path.endswith("/upload") else settings.max_body_bytes

    return limit_for


def _open_paths(settings: Settings) -> frozenset[str]:
    """Paths served without the API key: the probes an orchestrator sends, and /metrics if opened to a scraper."""
    return frozenset({"/healthz", "/readyz"} | ({"/metrics"} if settings.metrics_public else set()))


def _document_api_key(app: FastAPI, open_paths: frozenset[str]) -> None:
    """The OpenAPI schema names the bearer key on every operation that needs it."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["APIKey"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "The server's API key.",
            }
            for path, item in schema["paths"].items():
                for operation in item.values():
                    if path not in open_paths:
                        operation["security"] = [{"APIKey": []}]
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
