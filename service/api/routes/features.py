"""Features: browse the labelled units of a collection's sparse autoencoder (steer and explain by them in search)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from vecdial.service.api.deps import CollectionDep
from vecdial.service.api.fast_json import FastJSONRoute
from vecdial.service.errors import COMMON_ERRORS, NOT_FOUND
from vecdial.service.feature_schemas import FeatureList

router = APIRouter(prefix="/v1/collections", tags=["features"], responses={**COMMON_ERRORS, **NOT_FOUND}, route_class=FastJSONRoute)


@router.get("/{name}/features", summary="Browse the sparse features, labelled", response_model=FeatureList)
def list_features(
    collection: CollectionDep,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Words of a label (`json`, `date parse`; a word may be the start of a term), or a feature id. Omit to list the most frequent features.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Features to list.")] = 50,
) -> FeatureList:
    """Each feature's id (what `steer` and `explain_features` name), its label (the distinctive
    words of its top documents), the share of items it is active in, and its top documents.
    A collection without sparse codes is a 422 saying to build with `--sparse`."""
    return FeatureList(features=collection.features(q, limit))
