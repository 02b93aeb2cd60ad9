"""Operations: liveness, readiness and Prometheus metrics (never behind the API key)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from vecdial.service import metrics
from vecdial.service.api.deps import RegistryDep
from vecdial.service.schemas import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness", response_model=Health)
def healthz() -> Health:
    """200 while the process can answer at all."""
    return Health(status="ok")


@router.get("/readyz", summary="Readiness", response_model=Readiness, responses={503: {"model": Readiness, "description": "Starting or stopping."}})
def readyz(request: Request, registry: RegistryDep) -> Response:
    """200 once every collection is open and the data directory is readable; 503 before and while stopping."""
    state = request.app.state.lifecycle
    ready = state == "ready" and registry.data_dir.is_dir()
    body = Readiness(status=state if state != "ready" or ready else "starting", collections=len(registry.loaded()))
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def prometheus(registry: RegistryDep) -> Response:
    """Latency histograms by budget mode and route, requests, errors, writes, jobs, collection sizes."""
    payload, content_type = metrics.render(registry.loaded)
    return Response(payload, media_type=content_type)
