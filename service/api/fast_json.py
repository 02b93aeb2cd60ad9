"""JSON in and out with orjson, for the /v1 routes.

Measured on one 384-float search body (2-core VM): the stdlib parses it in ~200 us,
orjson in ~23 us; a search response renders in ~29 us with the stdlib, ~2 us with
orjson. `FastJSONRoute` is FastAPI's documented hook for a custom request class:
the body is parsed by orjson, then validated by the route's pydantic model as
usual. The one-query search route goes further and reads its body itself
(`read_body`, documented with `json_body`): FastAPI's body handling cost ~0.15 ms
a request there, measured against the same route in the same server.

Limits, so no body can make the parser raise: JSON nested deeper than MAX_DEPTH levels
(orjson's own ceiling) is a 400 `json_too_deep`; an integer literal longer than
MAX_INT_DIGITS digits reads as a float, as orjson reads every integer beyond 64 bits, so
no literal costs Python's quadratic big-integer conversion (which refuses 4,300 digits)
and a field that needs an integer (an id, `k`) refuses it with a 422.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import numpy as np
import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from vecdial.service.errors import JSONTooDeep

Model = TypeVar("Model", bound=BaseModel)

MAX_DEPTH = 1024  # orjson refuses deeper documents itself
LENIENT_DEPTH = 64  # the stdlib (NaN, 1e999) recurses per level, within Python's recursion limit of 1000
MAX_INT_DIGITS = 20  # 2**64 - 1 has 20 digits; orjson reads any integer beyond 64 bits as a float
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_OPENERS = np.zeros(256, dtype=np.int8)
_OPENERS[[ord("["), ord("{")]] = 1
_OPENERS[[ord("]"), ord("}")]] = -1


def loads(body: bytes) -> Any:
    """orjson; on its refusal the stdlib, which also reads NaN, Infinity and 1e999: read that way
    they reach the vector checks, whose 422 names the field. Malformed JSON (or bytes that are not
    UTF-8) raises the stdlib's JSONDecodeError (orjson's subclasses it too), which FastAPI and
    `read_body` make a 400; so does a body with NaN nested deeper than LENIENT_DEPTH (no request
    nests that deep). Nested deeper than MAX_DEPTH: JSONTooDeep, a 400 saying so."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        refused = exc
    depth = nesting(body)
    if depth > MAX_DEPTH:
        raise JSONTooDeep(depth, MAX_DEPTH)
    if depth > LENIENT_DEPTH:
        raise refused
    try:
        return json.loads(body, parse_int=_integer)
    except UnicodeDecodeError as exc:  # bytes that are not UTF-8: malformed JSON too, not a server error
        raise json.JSONDecodeError(f"body is not UTF-8 (byte {exc.start}: {exc.reason})", "", exc.start) from None


def nesting(body: bytes) -> int:
    """How many levels of arrays and objects a JSON body nests, without parsing it (so without
    recursion): the brackets outside strings, counted with C-speed bytes methods and numpy.
    For the bodies orjson refused; linear in the body (~7 ms for 2 MB)."""
    if b"\\" in body:  # escaped quotes inside strings must not end them: drop `\\` pairs, then `\"`
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(body.translate(None, _NOT_STRUCTURE).split(b'"')[::2])
    if not outside:
        return 0
    return max(int(np.cumsum(_OPENERS[np.frombuffer(outside, dtype=np.uint8)], dtype=np.int64).max()), 0)


def _integer(literal: str) -> int | float:
    """The stdlib's reading of an integer literal, as orjson's: within -2**63..2**64-1 exact, beyond as a float."""
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        return float(literal)
    value = int(literal)
    return value if -(2**63) <= value < 2**64 else float(value)


async def read_body(request: Request, model: type[Model]) -> Model:
    """The JSON body validated by `model`, failing as FastAPI's own body parsing does."""
    body = await request.body()
    if not body:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        data = loads(body)
    except json.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}, "ctx": {"error": exc.msg}}
        raise RequestValidationError([error]) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]) from None


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting `model` as the JSON body of a route that calls `read_body`."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    assert "$defs" not in schema, f"{model.__name__} nests models: document them in components first"
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


class FastJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class FastJSONRoute(APIRoute):
    """An APIRoute whose request body is parsed by orjson."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def fast_json_handler(request: Request) -> Response:
            return await handler(FastJSONRequest(request.scope, request.receive))

        return fast_json_handler


class FastJSONResponse(Response):
    """A JSON response rendered by orjson (plain dicts, lists, str, int, float, None)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
