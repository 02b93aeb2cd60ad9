"""Operations: liveness and readiness (never behind the API key), Prometheus metrics (behind it unless `metrics_public`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

import vecdial
from vecdial import VecdialError
from vecdial.service import metrics
from vecdial.service.answer_schemas import Health, Readiness
from vecdial.service.api.deps import CollectionsDep, JobsDep
from vecdial.service.errors import COMMON_ERRORS, without_paths
from vecdial.service.settings import Settings

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness", response_model=Health)
async def healthz() -> Health:
    """200 while the process can answer at all."""
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Starting, stopping, or a collection cannot be opened (listed in `broken`)."}},
)
async def readyz(request: Request, collections: CollectionsDep) -> Response:
    """200 once every collection is open and the data directory is readable; 503 before, while
    stopping, and while a collection that exists cannot be opened (`broken` says which and why:
    the healthy ones serve meanwhile). Open without the API key, as probes are; a server with a
    key names its broken and damaged collections only to a caller that sends it (the others get
    the counts in `detail`). No response names a path outside the data dir."""
    state = request.app.state.lifecycle
    settings: Settings = request.app.state.settings
    if state == "ready":
        damaged_handles = [c for c in collections.loaded() if c.damaged]
        if damaged_handles:  # a `vecdial repair` in another process may have fixed them since
            await run_in_threadpool(_catch_up, damaged_handles)
    broken = collections.unservable() if state == "ready" else {}
    ready = state == "ready" and collections.db.data_dir.is_dir() and not broken
    status = "degraded" if broken else state if state != "ready" or ready else "starting"
    damaged = {c.name: without_paths(c.damaged, settings.data_dir) for c in collections.loaded() if c.damaged}
    detail = None
    if settings.api_key is not None and not getattr(request.state, "authorized", False) and (broken or damaged):
        detail = (
            f"{len(broken)} collection(s) cannot be opened, {len(damaged)} have a damaged write-ahead log: send the API key to see which"
        )
        broken, damaged = {}, {}
    body = Readiness(status=status, collections=len(collections.loaded()), broken=broken, damaged=damaged, detail=detail)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if ready else 503)


def _catch_up(handles: list[vecdial.Collection]) -> None:
    """Let each handle read its collection's current log (`info` refreshes), so a repair made elsewhere shows."""
    for handle in handles:
        try:
            handle.info()
        except VecdialError:  # dropped or unreadable since: /readyz reports what it still knows
            continue


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, 401: COMMON_ERRORS[401]},
)
async def prometheus(collections: CollectionsDep, jobs: JobsDep) -> Response:
    """Latency histograms by budget mode and route, requests, errors, writes, jobs, collection sizes.
    On the event loop (a few stat calls per collection), so a scrape is answered while every
    worker thread is busy: that is when it matters most."""
    jobs.settle()  # count jobs that finished since the last look
    payload, content_type = metrics.render(collections.loaded, collections.unservable)
    return Response(payload, media_type=content_type)
