"""One module per resource. `include_routes` mounts them (the API key is checked before routing: `AuthMiddleware`).

Each module's router carries its full path prefix (`/v1/...`) itself, so every
route's path is its full template: that is the label metrics and logs use.
"""

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from vecdial.service.api.routes import collections, features, jobs, ops, search, writes
from vecdial.service.settings import Settings


def include_routes(app: FastAPI, settings: Settings) -> None:
    """Every router straight on the app: each level of nesting is one more routing pass per request.
    Search first: a request is matched against the routes in order, and searches are most requests."""
    for module in (search, writes, collections, features, jobs, ops):
        app.include_router(module.router)
    # The explorer: a static page shipped in the package, calling the /v1 routes like any client.
    app.mount("/ui", StaticFiles(directory=Path(__file__).parents[2] / "ui", html=True), name="ui")
