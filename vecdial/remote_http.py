"""The remote client's one HTTP connection pool: auth, timeouts, retries, and the server's
error bodies raised as the exceptions the embedded API raises.

The server answers every error as `{"error": <code>, "message": ...}` (service/errors.py);
`error_classes` inverts its map, so `NotFound`, `BudgetError`, `DamagedLog`... reach the caller
as if the collection were in this process.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np
import orjson

from vecdial.indexer.errors import InvalidInput, VecdialError

try:
    import httpx
except ImportError:  # pragma: no cover - a core dependency; only a stripped install lacks it
    httpx = None  # type: ignore[assignment]

# Codes of the request parser and body limit (service/errors.py `describe_validation_error`,
# `BodyTooLarge`): the embedded API raises InvalidInput for the same mistakes.
PARSER_CODES = {"malformed_json": InvalidInput, "malformed_base64": InvalidInput, "body_too_large": InvalidInput}


@functools.cache
def error_classes() -> dict[str, type[VecdialError]]:
    """Error code -> exception class: the server's one error map (`STATUS_OF`), inverted."""
    from vecdial.service.errors import STATUS_OF  # imported on the first error only: it pulls in FastAPI

    return {code: kind for kind, _, code in STATUS_OF} | PARSER_CODES


RETRIED_STATUS = frozenset({502, 503})  # busy (every worker thread taken) or a proxy in front restarting


class ServerUnavailable(VecdialError):
    """The server could not be reached, or stayed busy through every retry."""


class Unauthorized(VecdialError):
    """The server wants an API key (`vecdial.connect(url, api_key=...)`), or another one."""


def error_from(status: int, body: Any) -> VecdialError:
    """The exception for one error response (`{"error", "message"}`, or anything a proxy sent):
    by the server's code first (a `corrupt_index` 503 is CorruptIndex, not a busy server)."""
    code = body.get("error") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    message = message or f"the server answered HTTP {status}"
    kind = error_classes().get(code or "")
    if kind is not None:
        return kind(message)
    if status == 401:
        return Unauthorized(f"{message} (pass api_key= to vecdial.connect)")
    if busy(status, body):
        return ServerUnavailable(message)
    return (InvalidInput if status in (400, 413, 422) else VecdialError)(message)  # 4xx: what was sent; else the server's


def busy(status: int, body: Any) -> bool:
    """Every worker thread taken (`busy`), or a proxy in front restarting: worth another try."""
    code = body.get("error") if isinstance(body, dict) else None
    return status in RETRIED_STATUS and code in (None, "busy")


def b64(vectors: np.ndarray) -> str:
    """(…) float array -> base64 of its little-endian float32 bytes, as the server's `*_b64` fields take."""
    import base64

    return base64.b64encode(np.ascontiguousarray(vectors, dtype="<f4").tobytes()).decode("ascii")


class Http:
    """One keep-alive connection pool to a vecdial server.

    timeout: seconds per request (connect, read, write); a search past the server's own
    request_timeout_s is answered 504 by the server first. retries: extra attempts of an
    idempotent call (reads, searches, upserts and deletes by id) when the connection fails
    or the server is busy (503), with a short backoff; other calls are retried only when
    the connection could not be opened at all (the request never left).
    """

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0, retries: int = 2, transport: Any = None):
        if httpx is None:  # pragma: no cover
            raise ImportError("vecdial.connect(url) needs httpx: pip install httpx (a dependency of vecdial)")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self.retries = retries
        self.client = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            limits=httpx.Limits(max_keepalive_connections=8, keepalive_expiry=30),
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict | None = None,
        idempotent: bool = False,
        content: Any = None,
        long: bool = False,
    ) -> Any:
        """Send one request and return its decoded JSON (None for 204), or raise the mapped error.
        long: work that takes as long as it takes (a build, a sweep): no read timeout."""
        data = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY) if body is not None else content
        headers = {"Content-Type": "application/json"} if body is not None else None
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                timeout = httpx.Timeout(self.client.timeout.connect, read=None) if long else httpx.USE_CLIENT_DEFAULT
                response = self.client.request(method, path, content=data, params=params, headers=headers, timeout=timeout)
            except httpx.ConnectError as exc:
                if last:
                    raise ServerUnavailable(
                        f"cannot reach the vecdial server at {self.url} ({exc}): is `vecdial serve` running there?"
                    ) from None
            except httpx.TransportError as exc:  # sent, maybe processed: only an idempotent call may go again
                if last or not idempotent:
                    raise ServerUnavailable(f"the request to {self.url}{path} failed ({type(exc).__name__}: {exc})") from None
            else:
                if response.status_code < 400:
                    return None if response.status_code == 204 or not response.content else orjson.loads(response.content)
                body = _json(response)
                if last or not idempotent or not busy(response.status_code, body):
                    raise error_from(response.status_code, body)
            time.sleep(0.05 * 4**attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def _json(response: Any) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
