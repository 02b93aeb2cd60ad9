"""Collections: list, describe, create (from JSON vectors or an uploaded file), drop."""

from __future__ import annotations

import dataclasses
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

import vecdial
from vecdial import AlreadyExists, BuildSettings, CorruptIndex, InvalidInput, NotFound, VecdialError
from vecdial.service.answer_schemas import CollectionInfo, CollectionSummary, IdPage, SweepPoints
from vecdial.service.api.deps import CollectionDep, CollectionName, CollectionsDep, SettingsDep
from vecdial.service.api.fast_json import FastJSONRoute
from vecdial.service.errors import COMMON_ERRORS, CONFLICT, NOT_FOUND, without_paths
from vecdial.service.maintenance_schemas import RepairResponse, SweepRequest
from vecdial.service.registry import Collections
from vecdial.service.schemas import CreateCollectionRequest, UploadOptions
from vecdial.service.settings import Settings

router = APIRouter(prefix="/v1/collections", tags=["collections"], responses={**COMMON_ERRORS}, route_class=FastJSONRoute)
UPLOAD_DIR = ".uploads"


@router.get("", summary="List collections", response_model=list[CollectionSummary])
def list_collections(collections: CollectionsDep) -> list[CollectionSummary]:
    """The collections this server can serve; one that cannot be opened is left out (GET /readyz lists it, and why)."""
    out = []
    for name in collections.names():
        try:
            info = collections.open(name).info()
        except (CorruptIndex, NotFound):  # damaged (now in collections.broken), or dropped since it was listed
            continue
        out.append(CollectionSummary(name=name, version=info.version, size=info.size, dim=info.dim))
    return out


@router.get("/{name}", summary="Describe a collection", response_model=CollectionInfo, responses=NOT_FOUND)
def describe_collection(collection: CollectionDep, settings: SettingsDep) -> CollectionInfo:
    """Size, dims, the budget modes it serves with their knob ranges, and bytes per vector per mode."""
    return describe(collection, settings)


@router.get("/{name}/sweep", summary="The measured tradeoff auto chooses from", response_model=SweepPoints, responses=NOT_FOUND)
def sweep_points(collection: CollectionDep) -> dict:
    """Every budget the last sweep measured (recall@10, its 95% lower bound, ms per query,
    bytes read per vector, Pareto front) and what it was calibrated on; no points if the
    serving version was never swept (`vecdial sweep`)."""
    source, points = collection.sweep_points()
    return {"queries": source, "points": [dataclasses.asdict(p) for p in points]}


@router.post("/{name}/sweep", summary="Measure budgets; serve auto from them", response_model=SweepPoints, responses=NOT_FOUND)
def run_sweep(collection: CollectionDep, body: SweepRequest) -> dict:
    """`Collection.sweep`: recall@10 and one-query latency of many budgets, stored beside the
    serving version so `auto` budgets choose from them. Runs to the end (bounded by
    `max_seconds`), in a worker thread; answers what GET .../sweep then shows."""
    queries: str | np.ndarray = body.queries
    if body.queries_b64 is not None:
        dim = collection.info().dim
        if len(body.queries_b64) % dim:
            raise InvalidInput(
                f"queries_b64 holds {len(body.queries_b64)} numbers, not a whole number of {dim}-dim vectors: send n * {dim}"
            )
        queries = body.queries_b64.reshape(-1, dim)
    collection.sweep(queries, n=body.n, budgets=body.budgets, max_seconds=body.max_seconds, show_progress=False)
    return sweep_points(collection)


@router.post(
    "/{name}/repair", summary="Salvage a damaged write-ahead log", response_model=RepairResponse, responses={**NOT_FOUND, **CONFLICT}
)
def repair(
    collection: CollectionDep, settings: SettingsDep, dry_run: Annotated[bool, Query(description="Report only; change nothing.")] = False
) -> RepairResponse:
    """`vecdial repair`: scan the whole log; unless dry_run, keep every valid record in a new log
    (the damaged file stays beside it) and take writes again. Refused (409) while a reindex runs."""
    report = collection.repair(dry_run=dry_run).to_dict()
    return RepairResponse(
        **{**report, "log": _relative_path(report["log"], settings), "backup": _relative_path(report["backup"], settings)}
    )


def _relative_path(path: str | None, settings: Settings) -> str | None:
    """A file of the data dir as clients see it: relative to the data dir, never the server's absolute path."""
    if path is None:
        return None
    root, resolved = Path(settings.data_dir).resolve(), Path(path).resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else resolved.name


@router.get("/{name}/ids", summary="List ids, a page at a time", response_model=IdPage, responses=NOT_FOUND)
def list_ids(
    collection: CollectionDep,
    after: Annotated[str | None, Query(min_length=1, description="The `next` of the previous page (omit for the first page).")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Ids per page.")] = 1000,
) -> IdPage:
    """Every live id (version rows not deleted, and rows written since), ascending; paging
    stays exact across writes made between pages."""
    cursor: int | str | None = after
    if after is not None and collection.info().id_kind == "int":
        if not after.lstrip("-").isdigit():
            raise InvalidInput(f"after={after!r}: this collection has integer ids, send the `next` of the previous page")
        cursor = int(after)
    ids, next_cursor = collection.ids(cursor, limit)
    return IdPage(ids=ids, next=next_cursor)


@router.post(
    "", summary="Create a collection from vectors", status_code=status.HTTP_201_CREATED, response_model=CollectionInfo, responses=CONFLICT
)
def create_collection(body: CreateCollectionRequest, collections: CollectionsDep, settings: SettingsDep) -> CollectionInfo:
    """Builds the first version from the vectors in the body (as lists, or all at once as
    `vectors_b64` with their `dim`), or from `texts` alone encoded with the bundled model (for
    large inputs, upload a file). With `replace`, builds a new version of an existing collection."""
    count = (
        len(body.vectors)
        if body.vectors is not None
        else len(body.vectors_b64) // body.dim
        if body.vectors_b64 is not None
        else len(body.texts or ())
    )  # type: ignore[operator]
    if count > settings.max_create_vectors:
        raise InvalidInput(
            f"{count} vectors is over this server's limit of {settings.max_create_vectors} for a JSON create: "
            "upload a file to /v1/collections/{name}/upload instead"
        )
    build = BuildSettings().changed(body.settings.changes())
    items = _items(body, settings) if body.vectors is not None or body.vectors_b64 is not None else _text_items(body)
    created = collections.create(body.name, settings=build, replace=body.replace, discard_writes=body.discard_writes, **items)
    return describe(created, settings)


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
    name: CollectionName,
    request: Request,
    collections: CollectionsDep,
    settings: SettingsDep,
    options: Annotated[UploadOptions, Query()],
) -> CollectionInfo:
    """Streams the body to a temp file beside the collections, then builds (JSONL texts are
    encoded with the bundled model). Bodies up to the server's max_upload_bytes."""
    await run_in_threadpool(_refuse_early, collections, name)  # before reading a possibly large body
    build = BuildSettings().changed(options.changes())
    upload_dir = Path(settings.data_dir) / UPLOAD_DIR
    upload_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=upload_dir, suffix=f".{options.format}")
    try:
        with os.fdopen(fd, "wb") as handle:
            async for chunk in request.stream():
                handle.write(chunk)
        created = await run_in_threadpool(_create_from_upload, collections, name, Path(tmp), options.format, build)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return describe(created, settings)


@router.delete("/{name}", summary="Drop a collection", status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **CONFLICT})
def drop_collection(name: CollectionName, collections: CollectionsDep) -> Response:
    """Deletes the collection and its files; refused (409) while a reindex of it runs."""
    collections.drop(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def describe(collection: vecdial.Collection, settings: Settings) -> CollectionInfo:
    """`Collection.info()` and this server's max_k; `damaged` names the log relative to the data dir."""
    info = collection.info().to_dict()
    if info["damaged"]:
        info["damaged"] = without_paths(info["damaged"], settings.data_dir)
    return CollectionInfo(**info, max_k=settings.max_k)


# What the file readers raise on bytes that are not a file of the declared format (an empty
# .npy: EOFError; an .npz sent as npy: AttributeError; bad parquet: pyarrow's ArrowInvalid, a
# ValueError; non-UTF-8 JSONL: UnicodeDecodeError, a ValueError too). OSError stays a 500:
# a full disk is the server's problem, not the client's.
UNREADABLE = (ValueError, EOFError, AttributeError, KeyError, IndexError, TypeError, zipfile.BadZipFile, pickle.UnpicklingError)


def _create_from_upload(collections: Collections, name: str, path: Path, fmt: str, build: BuildSettings) -> vecdial.Collection:
    """`Database.create` from the uploaded file; a file it cannot read is a 422 that names the
    upload, never the server's temporary path."""
    try:
        return collections.create(name, path=path, format=fmt, settings=build)
    except VecdialError as exc:
        raise type(exc)(_without_path(str(exc), path)) from None
    except UNREADABLE as exc:
        reason = _without_path(str(exc), path) or type(exc).__name__
        if isinstance(exc, AttributeError):  # np.load gave an NpzFile or a pickle-free object, not an array
            reason = "it holds an archive (.npz?), not one (N, D) array"
        raise InvalidInput(
            f"the uploaded file is not a readable {fmt} file ({reason}): check its contents and the `format` parameter"
        ) from None


def _without_path(message: str, path: Path) -> str:
    return message.replace(str(path), "the uploaded file").replace(path.name, "the uploaded file")


def _refuse_early(collections: Collections, name: str) -> None:
    """An invalid name is a 422 and a taken one a 409, before the upload is read."""
    try:
        collections.open(name)
    except NotFound:
        return
    raise AlreadyExists(f"collection {name!r} exists already: drop it first, or reindex it")


def _items(body: CreateCollectionRequest, settings: Settings) -> dict:
    """The body's vectors, ids, texts, payloads and source model, as `Database.create` takes them."""
    if body.vectors_b64 is not None:
        dim = body.dim
        if len(body.vectors_b64) % dim:  # type: ignore[operator]
            raise InvalidInput(
                f"vectors_b64 holds {len(body.vectors_b64)} numbers, not a whole number of {dim}-dim vectors: send n * {dim}"
            )
        matrix = body.vectors_b64.reshape(-1, dim)
    else:
        dims = {len(v) for v in body.vectors}  # type: ignore[union-attr]
        if len(dims) != 1:
            raise InvalidInput(f"vectors have different lengths ({', '.join(map(str, sorted(dims)))}): send one dim for all")
        (dim,) = dims
        matrix = np.stack(body.vectors)  # type: ignore[arg-type]
    n = len(matrix)
    if dim > settings.max_create_dim:
        raise InvalidInput(f"vectors have {dim} dims, over this server's limit of {settings.max_create_dim}: reduce them first (e.g. PCA)")
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
    return {"vectors": matrix, "ids": id_array, "texts": body.texts, "source_model": body.source_model, "payloads": body.payloads}


def _text_items(body: CreateCollectionRequest) -> dict:
    """Texts alone (or nothing): `Database.create` encodes them with the bundled model, or says what to send."""
    return {"texts": body.texts, "ids": body.ids, "payloads": body.payloads}
