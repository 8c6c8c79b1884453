"""``Idempotency-Key`` on POST (the IETF httpapi draft's semantics), as a pure ASGI middleware.

A client that retries a POST with the same key and the same request gets the first response again
(status, body, and its headers but ``X-Request-ID``, with ``Idempotent-Replayed: true``) and nothing is done
twice. The same key with another request (method, path with query, or body) is 422; a key whose first
request is still running is 409.

- Keys belong to the authenticated user (the ``sub`` of the bearer token, checked with the app's
  ``TokenCodec``): two users may use the same key. A POST without a valid token passes through untouched
  (it will be 401), and so do the ``/auth`` endpoints: replaying a token response would hand out the same
  tokens twice, and a login must never be served from a store.
- The body is buffered (it is capped by ``CDHT_MAX_REQUEST_BYTES`` before it gets here) and hashed. For
  ``multipart/form-data`` the boundary is taken out before hashing, because a client generates a new one
  for every attempt of the same upload.
- Life of a key: claimed as ``in_progress`` in a short transaction of its own (a concurrent claim of the
  same key loses on the unique constraint and is answered 409); the request runs (its own transaction
  commits before the response is sent); the response is stored as ``done`` before it is passed on, so a
  retry that follows the answer always finds it. A 5xx, a 429 or an exception releases the key (the work
  did not happen or may be retried). Records expire after 24 hours; an ``in_progress`` record older than
  15 minutes is taken to be abandoned (a crash between the request's commit and the store) and reclaimed.
- **Secrets are never stored.** A response that carries one — a route marked with the
  ``secret_response`` dependency (its ``X-CDHT-Secret`` header is stripped before anything leaves), or
  any JSON body with a secret-named field (``SECRET_FIELDS``: a service account's ``client_secret``, a
  webhook's ``secret``, tokens) — is passed to the client and recorded only as ``withheld``: the work was
  done and is not done again, and a retry gets 409 saying so, never the secret. ``/auth`` is not keyed at
  all (above).
- **A replay is authorised like a fresh request.** The record belongs to the user of the token (``sub``,
  canonical digits: ``app.core.tokens``), and before anything stored is answered the user must still exist
  and be active (one primary-key read); otherwise 401, as the request itself would get. A 401 answer is
  never stored, so a user reactivated later is not answered from the store.

This module is the middleware (which requests are keyed, the body's fingerprint, replaying); the records,
claiming and releasing a key, and what is kept of a response are ``idempotency_store.py``'s.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import AppError, error_body
from app.core.idempotency_store import (
    MAX_KEY_LENGTH,
    SECRET_MARKER,
    KeyRequest,
    Refused,
    Stored,
    claim,
    finish,
    release,
)
from app.core.tokens import AccessClaims

API_PREFIX = "/api/v1/"
EXEMPT_PREFIX = "/api/v1/auth/"


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _without_secret_marker(send)
        if scope["method"] != "POST" or not path.startswith(API_PREFIX) or path.startswith(EXEMPT_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        raw_key = headers.get("idempotency-key")
        user_id = _user_id(scope, headers) if raw_key is not None else None
        if raw_key is None or user_id is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.strip().strip('"')
        if not key or len(key) > MAX_KEY_LENGTH or not all(0x20 < ord(c) < 0x7F for c in key):
            await _send_error(
                send, 422, "validation_error", "Idempotency-Key must be 1–255 visible ASCII characters."
            )
            return
        body = await _read_body(receive)
        query = scope.get("query_string", b"").decode("latin-1")
        request = KeyRequest(
            user_id=user_id,
            key=key,
            method=scope["method"],
            path=path + (f"?{query}" if query else ""),
            body_sha256=_fingerprint(headers, body),
        )
        sessionmaker = scope["app"].state.sessionmaker
        try:
            stored = await claim(sessionmaker, request)
        except Refused as exc:
            await _send_error(send, exc.status_code, exc.code, exc.message, exc.details)
            return
        if stored is not None:
            await _replay(send, stored)
            return
        await self._run(scope, body, receive, send, sessionmaker, request)

    async def _run(
        self,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        sessionmaker: async_sessionmaker[AsyncSession],
        request: KeyRequest,
    ) -> None:
        delivered = False
        start: Message | None = None
        chunks: list[bytes] = []

        async def replay_receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await finish(sessionmaker, request, start, b"".join(chunks))
            await send(start)  # the secret marker is stripped by the outer send
            await send({"type": "http.response.body", "body": b"".join(chunks)})

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            await release(sessionmaker, request)
            raise


def _user_id(scope: Scope, headers: Headers) -> int | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        claims: AccessClaims = scope["app"].state.auth.codec.decode_access(token.strip())
    except AppError:
        return None
    return claims.user_id  # canonical ASCII digits, checked by the codec


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _fingerprint(headers: Headers, body: bytes) -> str:
    content_type = headers.get("content-type", "")
    if content_type.lower().startswith("multipart/"):
        for param in content_type.split(";")[1:]:
            name, _, value = param.strip().partition("=")
            if name.lower() == "boundary" and value:
                body = body.replace(value.strip('"').encode("latin-1"), b"")
    return hashlib.sha256(body).hexdigest()


def _without_secret_marker(send: Send) -> Send:
    """``send`` that drops the secret marker from the response headers: it is for this middleware only."""

    async def stripped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", [])
            if any(k.lower() == SECRET_MARKER for k, _ in headers):
                message = {**message, "headers": [(k, v) for k, v in headers if k.lower() != SECRET_MARKER]}
        await send(message)

    return stripped


async def _replay(send: Send, stored: Stored) -> None:
    headers: list[tuple[bytes, bytes]] = [
        (k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers
    ]
    headers += [
        (b"content-length", str(len(stored.body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})


async def _send_error(send: Send, status: int, code: str, message: str, details: Any = None) -> None:
    body: Any = json.dumps(error_body(None, code, message, details)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
