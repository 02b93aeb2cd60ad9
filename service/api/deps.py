"""Dependencies injected into route handlers: settings, collections, jobs.

Handlers declare what they need (`collections: CollectionsDep`, `collection:
CollectionDep`) and never reach for globals, so tests build an app per settings object.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

import vecdial
from vecdial import InvalidInput
from vecdial.service.json_types import NAME_DESCRIPTION, NAME_PATTERN
from vecdial.service.registry import Collections, JobBoard
from vecdial.service.settings import Settings

# Dependencies that never block are `async`: FastAPI runs sync ones in the thread pool,
# one hop per dependency per request, and a search should pay for one hop only (its own).


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_collections(request: Request) -> Collections:
    return request.app.state.collections


async def get_jobs(request: Request) -> JobBoard:
    return request.app.state.jobs


# The `{name}` of every collection route: the OpenAPI document states the rule, and a name
# outside it is a 422 before any lookup.
CollectionName = Annotated[str, Path(pattern=NAME_PATTERN, min_length=1, max_length=64, description=NAME_DESCRIPTION)]

SettingsDep = Annotated[Settings, Depends(get_settings)]
CollectionsDep = Annotated[Collections, Depends(get_collections)]
JobsDep = Annotated[JobBoard, Depends(get_jobs)]


async def get_collection(name: CollectionName, request: Request, collections: CollectionsDep) -> vecdial.Collection:
    """The `vecdial.Collection` named in the path: opened in the thread pool the first time,
    then a dict lookup. (A handle whose collection turns out dropped is forgotten by the
    NotFound error handler.)"""
    return await collection_named(name, request, collections)


async def collection_named(name: str, request: Request, collections: Collections) -> vecdial.Collection:
    """`get_collection` called directly: the one-query search route skips FastAPI's dependency
    solving, which cost ~0.1 ms a request there."""
    handle = collections.cached(name) or await run_in_threadpool(collections.open, name)
    request.state.log_extra = {"collection": name}
    return handle


CollectionDep = Annotated[vecdial.Collection, Depends(get_collection)]


def check_k(k: int, settings: Settings) -> int:
    if k > settings.max_k:
        raise InvalidInput(f"k={k} is above this server's limit of {settings.max_k}: ask for fewer hits")
    return k
