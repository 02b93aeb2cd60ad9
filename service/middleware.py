"""ASGI middleware: the API key, body-size limits, and one log line plus metrics per request.

Plain ASGI rather than BaseHTTPMiddleware: it adds no task or copy per request,
which matters at thousands of small search requests a second.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vecdial.service import metrics
from vecdial.service.errors import BodyTooLarge

log = logging.getLogger("vecdial.access")
UI_PREFIX = "/ui/"  # the explorer's static page and assets


class AuthMiddleware:
    """With an API key, every path but `open_paths` (and the explorer's static files under
    /ui/, which hold no data: the page asks for the key and sends it) needs
    `Authorization: Bearer <key>`.

    Checked before routing and before a byte of the body is read: an unauthenticated
    client learns nothing (no 400 for its malformed JSON, no 404 for a wrong path) and
    costs nothing but this check. Covers /docs, /redoc, /openapi.json and /metrics too.
    """

    def __init__(self, app: ASGIApp, api_key: str, open_paths: frozenset[str]):
        self.app = app
        self.expected = f"Bearer {api_key}".encode()
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        authorized = scheme.lower() == b"bearer" and hmac.compare_digest(b"Bearer " + token.strip(), self.expected)
        scope.setdefault("state", {})["authorized"] = authorized  # an open path may show more to a caller with the key
        if authorized or scope["path"] in self.open_paths or scope["path"].startswith(UI_PREFIX) or scope["path"] == UI_PREFIX[:-1]:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["error_code"] = "unauthorized"
        message = "this server needs an API key: send the header `Authorization: Bearer <api key>`"
        await _send_json(send, 401, {"error": "unauthorized", "message": message}, [(b"www-authenticate", b"Bearer")])


class BodyLimitMiddleware:
    """413 for bodies over the limit: at once from Content-Length, else while reading."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            scope.setdefault("state", {})["error_code"] = "body_too_large"
            await _send_json(send, 413, {"error": "body_too_large", "message": BodyTooLarge(limit).detail})
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


class RequestLogMiddleware:
    """Times every request, counts it by route template and status, and logs one line."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1") or uuid.uuid4().hex[:16]

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_SECONDS.labels(method, route).observe(seconds)
            extra = {
                "request_id": request_id,
                "method": method,
                "path": scope["path"],
                "route": route,
                "status": status,
                "ms": round(seconds * 1000, 3),
            }
            extra.update(scope.get("state", {}).get("log_extra", {}))
            if status >= 400:
                metrics.ERRORS.labels(route, scope.get("state", {}).get("error_code", str(status))).inc()
            log.log(logging.WARNING if status >= 500 else logging.INFO, "request", extra=extra)


async def _send_json(send: Send, status: int, body: dict, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": payload})
