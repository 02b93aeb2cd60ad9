"""Collections: list, describe, create (from JSON vectors or an uploaded file), drop."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from vecdial.indexer.disk.collection import validate_name
from vecdial.indexer.plan.describe import dense_costs, describe_modes
from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.jobs.settings import BuildSettings
from vecdial.indexer.live.collection import LiveCollection
from vecdial.indexer.io.readers import Dataset, read_input
from vecdial.service.api.deps import LiveDep, RegistryDep, SettingsDep
from vecdial.service.encode import text_queries_supported
from vecdial.service.errors import COMMON_ERRORS, CONFLICT, NOT_FOUND
from vecdial.service.schemas import CollectionInfo, CollectionSummary, CreateCollectionRequest, ModeInfo, UploadOptions
from vecdial.service.settings import Settings

router = APIRouter(prefix="/v1/collections", tags=["collections"], responses={**COMMON_ERRORS})
UPLOAD_DIR = ".uploads"


@router.get("", summary="List collections", response_model=list[CollectionSummary])
def list_collections(registry: RegistryDep) -> list[CollectionSummary]:
    out = []
    for name in registry.names():
        snapshot = registry.get(name).snapshot()
        out.append(CollectionSummary(name=name, version=snapshot.version_name, size=snapshot.size, dim=snapshot.version.dim))
    return out


@router.get("/{name}", summary="Describe a collection", response_model=CollectionInfo, responses=NOT_FOUND)
def describe_collection(collection: LiveDep, settings: SettingsDep) -> CollectionInfo:
    """Size, dims, the budget modes it serves with their knob ranges, and bytes per vector per mode."""
    return describe(collection, settings)


@router.post("", summary="Create a collection from vectors", status_code=status.HTTP_201_CREATED, response_model=CollectionInfo, responses=CONFLICT)
def create_collection(body: CreateCollectionRequest, registry: RegistryDep, settings: SettingsDep) -> CollectionInfo:
    """Builds the first version from the vectors in the body (for large inputs, upload a file)."""
    if len(body.vectors) > settings.max_create_vectors:
        raise InvalidInput(
            f"{len(body.vectors)} vectors is over this server's limit of {settings.max_create_vectors} for a JSON create: "
            "upload a file to /v1/collections/{name}/upload instead"
        )
    dataset = _dataset(body)
    build = BuildSettings().changed(body.settings.changes())
    return describe(registry.create(body.name, dataset, build), settings)


@router.post(
    "/{name}/upload",
    summary="Create a collection from an uploaded file",
    status_code=status.HTTP_201_CREATED,
    response_model=CollectionInfo,
    responses=CONFLICT,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The raw file: .npy (N, D) float32/float16, .fvecs, parquet with a `vector` column, or JSONL texts.",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_collection(
    name: str,
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    options: Annotated[UploadOptions, Query()],
) -> CollectionInfo:
    """Streams the body to a temp file beside the collections, then builds (JSONL texts are
    encoded with the bundled model). Bodies up to the server's max_upload_bytes."""
    validate_name(name)  # before reading a possibly large body
    build = BuildSettings().changed(options.changes())
    upload_dir = Path(settings.data_dir) / UPLOAD_DIR
    upload_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=upload_dir, suffix=f".{options.format}")
    try:
        with os.fdopen(fd, "wb") as handle:
            async for chunk in request.stream():
                handle.write(chunk)
        live = await run_in_threadpool(_build_from_file, registry, name, Path(tmp), options.format, build)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return describe(live, settings)


@router.delete("/{name}", summary="Drop a collection", status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **CONFLICT})
def drop_collection(name: str, registry: RegistryDep) -> Response:
    """Deletes the collection and its files; refused (409) while a reindex of it runs."""
    registry.drop(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def describe(collection: LiveCollection, settings: Settings) -> CollectionInfo:
    snapshot = collection.snapshot()
    version, manifest = snapshot.version, snapshot.version.manifest
    build = BuildSettings.from_manifest(manifest).model_dump()
    return CollectionInfo(
        name=snapshot.name,
        version=snapshot.version_name,
        size=snapshot.size,
        dim=version.dim,
        version_size=version.size,
        segment_size=snapshot.segment.live,
        deleted=len(snapshot.dead_rows),
        id_kind=manifest.id_kind,
        source_model=manifest.source_model,
        text_queries=text_queries_supported(snapshot),
        has_texts=manifest.has_texts,
        created_at=manifest.created_at,
        settings={k: v for k, v in build.items() if k not in ("sample_size", "batch_size", "seed")},
        modes=[ModeInfo(**vars(mode)) for mode in describe_modes(version, swept=snapshot.view.sweep is not None)],
        dense_bytes_per_vector=dense_costs(version),
        max_k=settings.max_k,
    )


def _dataset(body: CreateCollectionRequest) -> Dataset:
    n = len(body.vectors)
    dims = {len(v) for v in body.vectors}
    if len(dims) != 1:
        raise InvalidInput(f"vectors have different lengths ({', '.join(map(str, sorted(dims)))}): send one dim for all")
    ids = body.ids if body.ids is not None else list(range(n))
    if len(ids) != n:
        raise InvalidInput(f"got {len(ids)} ids for {n} vectors: send one id per vector")
    if all(isinstance(i, int) for i in ids):
        id_array = np.asarray(ids, dtype=np.int64)
    elif all(isinstance(i, str) for i in ids):
        id_array = np.asarray(ids, dtype=str)
    else:
        raise InvalidInput("ids mix integers and strings: use one kind for a collection")
    if body.texts is not None and len(body.texts) != n:
        raise InvalidInput(f"got {len(body.texts)} texts for {n} vectors: send one text (or null) per vector")
    vectors = np.asarray(body.vectors, dtype=np.float32)
    return Dataset(id_array, vectors, body.texts, source_model=body.source_model)


def _build_from_file(registry: RegistryDep, name: str, path: Path, fmt: str, build: BuildSettings) -> LiveCollection:
    dataset = read_input(path, fmt, show_progress=False)
    return registry.create(name, dataset, build)
