"""One module per resource. `include_routes` mounts them: operations open, /v1 behind the API key.

Each module's router carries its full path prefix (`/v1/...`) itself, so every
route's path is its full template: that is the label metrics and logs use.
"""

from fastapi import Depends, FastAPI

from vecdial.service.api.deps import require_api_key
from vecdial.service.api.routes import collections, jobs, ops, search, writes
from vecdial.service.settings import Settings


def include_routes(app: FastAPI, settings: Settings) -> None:
    """Every router straight on the app: each level of nesting is one more routing pass per
    request. The API-key check is added only to a server that has a key (~20 us a request)."""
    auth = [Depends(require_api_key)] if settings.api_key is not None else []
    app.include_router(ops.router)
    for module in (collections, search, writes, jobs):
        app.include_router(module.router, dependencies=auth)
