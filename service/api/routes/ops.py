"""Operations: liveness and readiness (never behind the API key), Prometheus metrics (behind it unless `metrics_public`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from vecdial.service import metrics
from vecdial.service.api.deps import CollectionsDep, JobsDep
from vecdial.service.schemas import Health, Readiness

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
    the healthy ones serve meanwhile)."""
    state = request.app.state.lifecycle
    broken = collections.unservable() if state == "ready" else {}
    ready = state == "ready" and collections.db.data_dir.is_dir() and not broken
    status = "degraded" if broken else state if state != "ready" or ready else "starting"
    damaged = {c.name: c.damaged for c in collections.loaded() if c.damaged}
    body = Readiness(status=status, collections=len(collections.loaded()), broken=broken, damaged=damaged)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def prometheus(collections: CollectionsDep, jobs: JobsDep) -> Response:
    """Latency histograms by budget mode and route, requests, errors, writes, jobs, collection sizes.
    On the event loop (a few stat calls per collection), so a scrape is answered while every
    worker thread is busy: that is when it matters most."""
    jobs.settle()  # count jobs that finished since the last look
    payload, content_type = metrics.render(collections.loaded, collections.unservable)
    return Response(payload, media_type=content_type)
