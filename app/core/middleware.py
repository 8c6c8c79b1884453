"""ASGI middleware: request ids with an access log that never records credentials, ``Cache-Control:
no-store`` on what a caller's credentials unlocked, and a body cap.

Plain ASGI (not ``BaseHTTPMiddleware``) so streaming bodies and responses pass through untouched.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import error_body

log = logging.getLogger("cdht.access")
# Token requests answer with credentials in the body (RFC 6749 §5.1 wants them no-store too).
TOKEN_PATH_PREFIX = "/api/v1/auth/"
NO_STORE = (b"cache-control", b"no-store")
# The id of the request being answered, for log lines written anywhere below (app/observability/logs.py).
_request_id: ContextVar[str | None] = ContextVar("cdht_request_id", default=None)


def current_request_id() -> str | None:
    """The ``X-Request-ID`` of the request this code runs for (None outside requests)."""
    return _request_id.get()


def private_response(scope: Scope) -> bool:
    """A response built from the caller's credentials: any request with an ``Authorization`` header (the
    bearer API, ``/metrics`` with a token) and the token endpoints. Public ones (``/healthz``, ``/readyz``,
    the docs) carry none and keep their own caching."""
    if scope.get("path", "").startswith(TOKEN_PATH_PREFIX):
        return True
    return any(name == b"authorization" for name, _ in scope.get("headers", []))


def with_no_store(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` plus ``Cache-Control: no-store``, unless the route chose its caching itself (e.g.
    ``private, no-store`` on evidence files)."""
    if any(name.lower() == b"cache-control" for name, _ in headers):
        return headers
    return [*headers, NO_STORE]


class RequestIdMiddleware:
    """Tags each request with ``X-Request-ID`` and logs method, path, status and duration — never headers,
    query strings or bodies, which may hold tokens, passwords or citizen ids. A response to a request with
    credentials gets ``Cache-Control: no-store`` (:func:`private_response`): person-level JSON, exports and
    tokens must stay out of browser and proxy caches. A route that sets its own ``Cache-Control`` keeps
    it (a dashboard read that wants browsers to revalidate by ``ETag`` would set ``private, no-cache``);
    scripts that keep their own copy still get 304 for a matching ``If-None-Match``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = (
            incoming if incoming and len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        )
        scope.setdefault("state", {})["request_id"] = request_id
        token = _request_id.set(request_id)
        started = time.perf_counter()
        status = 500
        private = private_response(scope)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message["headers"] = with_no_store(headers) if private else headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %s %.1fms rid=%s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )
            _request_id.reset(token)


class BodyLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413, by Content-Length up front or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_413(send)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await _send_413(send)


class _BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive``; FastAPI re-raises HTTP exceptions met while reading a body, so the
    ordinary handler answers 413 (and this middleware does if nothing else did)."""

    def __init__(self) -> None:
        super().__init__(413, "The request body is too large.")


async def _send_413(send: Any) -> None:
    body = json.dumps(error_body(None, "payload_too_large", "The request body is too large.")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
