"""The one place errors become HTTP responses.

Every error body has the same shape, `{"error": <code>, "message": <what to change>}`,
so clients handle one format whether the library, the request parser or the
server itself complained.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from vecdial import AlreadyExists, BudgetError, CorruptIndex, DamagedLog, InvalidInput, NotFound, Unavailable, VecdialError
from vecdial.service.deadline import Busy, TimedOut
from vecdial.service.json_types import NAME_DESCRIPTION

log = logging.getLogger("vecdial.http")

# Most specific class first: the first match wins.
STATUS_OF: list[tuple[type[VecdialError], int, str]] = [
    (BudgetError, 422, "invalid_budget"),
    (InvalidInput, 422, "invalid_input"),
    (NotFound, 404, "not_found"),
    (AlreadyExists, 409, "conflict"),
    (DamagedLog, 409, "damaged_log"),  # searches still serve; writes wait for `vecdial repair`
    (CorruptIndex, 503, "corrupt_index"),
    (
        Unavailable,
        503,
        "unavailable",
    ),  # a shard is down: writes it owns wait for it; searches may answer partial  # this collection is unavailable until rebuilt; the server and the others serve
    (VecdialError, 500, "error"),
]


class ErrorBody(BaseModel):
    """Every 4xx and 5xx response."""

    error: str = Field(description="Machine-readable code, e.g. invalid_input, invalid_budget, not_found.")
    message: str = Field(description="What went wrong and what to change.")


class BodyTooLarge(StarletteHTTPException):
    """A request body over the configured limit. An HTTPException, so that FastAPI's body
    reader lets it through instead of turning it into a generic 400."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body is larger than this server's limit of {limit} bytes: send less per request")


class JSONTooDeep(StarletteHTTPException):
    """A JSON body nested deeper than the parser's limit (`service.api.fast_json.MAX_DEPTH`). An
    HTTPException, so that FastAPI's body reader lets it through as it does BodyTooLarge."""

    def __init__(self, depth: int, limit: int):
        super().__init__(400, f"the request body nests {depth} levels deep, over this server's limit of {limit}: send a flatter body")


def _doc(description: str) -> dict:
    return {"model": ErrorBody, "description": description}


# For route decorators: documents the error responses in the OpenAPI schema.
COMMON_ERRORS = {
    400: _doc("Malformed JSON, JSON nested deeper than 1024 levels, or a `*_b64` field that is not base64."),
    401: _doc("Missing or wrong API key (when the server requires one)."),
    413: _doc("Request body too large."),
    422: _doc("Invalid input: wrong vector length, NaN/inf, bad budget, k or batch over the limit, unknown field."),
    500: _doc("An unexpected server-side failure (a bug: see the server log)."),
    503: _doc(
        "`corrupt_index`: a file of the collection is damaged (the message names it, relative to the data dir); "
        "the other collections keep serving. Rebuild or restore it. "
        "Or `unavailable`: a shard of a sharded collection is down (named in the message); retry later."
    ),
}
# For routes whose work runs under request_timeout_s (`service.deadline`).
TIMEOUTS = {
    503: _doc(
        "`busy`: every worker thread stayed busy until request_timeout_s, retry later (see Retry-After); "
        "or `corrupt_index`: a file of the collection is damaged (named in the message), the others keep serving."
    ),
    504: _doc("The work took longer than request_timeout_s; it may still complete in the background."),
}
NOT_FOUND = {404: _doc("No such collection or job.")}
CONFLICT = {409: _doc("Conflicts with the current state: the collection exists, or a reindex of it runs.")}


def error_response(request: Request, status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    request.state.error_code = code  # for the request log and the error counter
    return JSONResponse(ErrorBody(error=code, message=message).model_dump(), status_code=status, headers=headers)


def status_for(exc: VecdialError) -> tuple[int, str]:
    for kind, status, code in STATUS_OF:
        if isinstance(exc, kind):
            return status, code
    return 500, "error"  # pragma: no cover - VecdialError is last in STATUS_OF


NAME_RULES = ("string_pattern_mismatch", "string_too_long", "string_too_short")  # a collection name's, in a path or a create


def describe_validation_error(exc: RequestValidationError) -> tuple[int, str, str]:
    """(status, code, message) for a request pydantic rejected; malformed JSON or base64 is a 400."""
    errors = exc.errors()
    first = errors[0] if errors else {"type": "", "loc": (), "msg": "invalid request"}
    if first["type"] == "json_invalid":
        position = first.get("ctx", {}).get("error", "")
        return 400, "malformed_json", f"request body is not valid JSON ({position}): send a JSON object"
    encoded = next((error for error in errors if error["type"] == "base64_invalid"), None)
    if encoded is not None:
        return 400, "malformed_base64", f"{_where(encoded)} {encoded['msg']}"
    named = next((error for error in errors if error["type"] in NAME_RULES and error["loc"][-1:] == ("name",)), None)
    if named is not None:  # the library's words, whether the name came in the path or in a create body
        return 422, "invalid_input", f"invalid collection name {named['input']!r}: use {NAME_DESCRIPTION}"
    parts = [f"{_where(error)}: {error['msg'].removeprefix('Value error, ')}" for error in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    budget = all(_where(error).split(".")[0] == "budget" for error in errors)  # the code the library gives a bad budget
    return 422, "invalid_budget" if budget else "invalid_input", "; ".join(parts) + more


def without_paths(message: str, data_dir: Path) -> str:
    """A message naming files inside the data dir names them relative to it (`tiny/wal/v000001.log`):
    clients never see where the server keeps its data."""
    for prefix in dict.fromkeys((data_dir.resolve(), data_dir.absolute(), data_dir)):  # absolute forms first
        message = message.replace(f"{prefix}/", "")
    return message


def _relative(request: Request, message: str) -> str:
    collections = getattr(request.app.state, "collections", None)
    return without_paths(message, collections.db.data_dir) if collections is not None else message


def allowed_methods(request: Request) -> list[str]:
    """Every method the API serves at this request's path, as its OpenAPI document lists them
    (Starlette's 405 names only the first matching route's), HEAD with GET."""
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        if compile_path(template)[0].match(request.url.path):
            methods |= {method.upper() for method in operations}
    return sorted(methods | ({"HEAD"} if "GET" in methods else set()))


def _where(error: dict) -> str:
    """`queries.1.vector` for loc ("body", "queries", 1, "vector")."""
    return ".".join(str(p) for p in error["loc"] if p != "body") or "body"


def install_error_handlers(app: FastAPI, forget: Callable[[str], None] = lambda name: None) -> None:
    """forget(name): called when a request about collection `name` finds it gone (dropped,
    maybe by another process), so a stale handle is not served again."""

    @app.exception_handler(VecdialError)
    async def vecdial_error(request: Request, exc: VecdialError) -> JSONResponse:
        status, code = status_for(exc)
        if isinstance(exc, NotFound) and "name" in request.path_params:
            forget(request.path_params["name"])
        if status >= 500:
            log.error("request failed: %s", exc, extra={"path": request.url.path, "error": code})
        return error_response(request, status, code, _relative(request, str(exc)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request, *describe_validation_error(exc))

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy) -> JSONResponse:
        return error_response(request, 503, "busy", str(exc), headers={"Retry-After": "1"})

    @app.exception_handler(TimedOut)
    async def timed_out(request: Request, exc: TimedOut) -> JSONResponse:
        log.warning("request timed out: %s", exc, extra={"path": request.url.path})
        return error_response(request, 504, "timeout", str(exc))

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return error_response(request, 413, "body_too_large", str(exc.detail))

    @app.exception_handler(JSONTooDeep)
    async def too_deep(request: Request, exc: JSONTooDeep) -> JSONResponse:
        return error_response(request, 400, "json_too_deep", str(exc.detail))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message, headers = str(exc.detail), getattr(exc, "headers", None)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}: see /docs for the API"
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            message = f"{request.method} is not allowed on {request.url.path}: use {', '.join(allowed)}"
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        return error_response(request, exc.status_code, code, message, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return error_response(request, 500, "internal", f"internal error ({type(exc).__name__}); see the server log")
