"""Upsert and delete vectors by id: durable when acknowledged, searchable at once."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request

from vecdial import InvalidInput
from vecdial.service import metrics
from vecdial.service.api.deps import CollectionDep, CollectionsDep, SettingsDep
from vecdial.service.api.fast_json import FastJSONRoute
from vecdial.service.deadline import run_within
from vecdial.service.encoding import check_encode_budget, check_texts, encode
from vecdial.service.errors import COMMON_ERRORS, NOT_FOUND, TIMEOUTS
from vecdial.service.native import ensure_thread_limits
from vecdial.service.schemas import DeleteRequest, UpsertRequest, WriteResponse
from vecdial.service.settings import Settings

router = APIRouter(
    prefix="/v1/collections/{name}/vectors", tags=["writes"], responses={**COMMON_ERRORS, **NOT_FOUND}, route_class=FastJSONRoute
)
AFTER_TIMEOUT = "the write may still complete; an upsert by id can be sent again safely, or send fewer items per request"


@router.post("/upsert", summary="Add or replace vectors", response_model=WriteResponse, responses=TIMEOUTS)
async def upsert(
    body: UpsertRequest, collection: CollectionDep, collections: CollectionsDep, settings: SettingsDep, request: Request
) -> WriteResponse:
    """Each item is stored under its id, replacing any vector that id had. The response comes
    after the write is in the write-ahead log on disk (fsync), and the next search in any
    mode sees it. Items without a vector have their text encoded with the bundled model."""
    _check_batch(len(body.items), settings)
    dim = collections.dim(collection)
    vectors = np.empty((len(body.items), dim), dtype=np.float32)
    to_encode = []
    for i, item in enumerate(body.items):
        if item.vector is None:
            to_encode.append(i)
        elif len(item.vector) != dim:
            raise InvalidInput(f"items[{i}].vector has {len(item.vector)} numbers, the collection has {dim} dims: send {dim}")
        else:
            vectors[i] = item.vector
    texts = [item.text for item in body.items]
    check_texts([t for t in texts if t is not None], settings, what="item text")
    check_encode_budget([texts[i] for i in to_encode], settings)  # type: ignore[misc]

    def write():  # blocking: encoding, then the fsynced append
        ensure_thread_limits(settings.native_threads)
        if to_encode:
            vectors[to_encode] = encode(collection, [texts[i] for i in to_encode], dim)  # type: ignore[misc]
        payloads = [item.payload for item in body.items]
        return collection.upsert(
            [item.id for item in body.items],
            vectors,
            texts=texts if any(t is not None for t in texts) else None,
            payloads=payloads if any(p is not None for p in payloads) else None,
        )

    result = await run_within(settings.request_timeout_s, write, "upsert", AFTER_TIMEOUT)
    collections.served(collection.name, result.version)
    metrics.WRITES.labels("upsert").inc(result.upserted)
    request.state.log_extra = {"collection": collection.name, "items": len(body.items)}
    return WriteResponse(**vars(result))


@router.post("/delete", summary="Delete vectors by id", response_model=WriteResponse)
def delete(
    body: DeleteRequest, collection: CollectionDep, collections: CollectionsDep, settings: SettingsDep, request: Request
) -> WriteResponse:
    """Removes the ids from every search, durably; ids that are not there are ignored."""
    _check_batch(len(body.ids), settings)
    result = collection.delete(body.ids)
    collections.served(collection.name, result.version)
    metrics.WRITES.labels("delete").inc(result.deleted)
    request.state.log_extra = {"collection": collection.name, "items": len(body.ids)}
    return WriteResponse(**vars(result))


def _check_batch(count: int, settings: Settings) -> None:
    if count > settings.max_write_batch:
        raise InvalidInput(f"{count} ids is over this server's write batch limit of {settings.max_write_batch}: split the request")
