"""One module per resource. `api_router` gathers the /v1 ones behind the API key.

Each module's router carries its full path prefix (`/v1/...`) itself, so every
route's path is its full template: that is the label metrics and logs use.
"""

from fastapi import APIRouter, Depends

from vecdial.service.api.deps import require_api_key
from vecdial.service.api.routes import collections, jobs, search, writes

api_router = APIRouter(dependencies=[Depends(require_api_key)])
for module in (collections, search, writes, jobs):
    api_router.include_router(module.router)
