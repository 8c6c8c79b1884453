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
  :func:`secret_response` dependency (its ``X-CDHT-Secret`` header is stripped before anything leaves), or
  any JSON body with a secret-named field (:data:`SECRET_FIELDS`: a service account's ``client_secret``, a
  webhook's ``secret``, tokens) — is passed to the client and recorded only as ``withheld``: the work was
  done and is not done again, and a retry gets 409 saying so, never the secret. ``/auth`` is not keyed at
  all (above).
- **A replay is authorised like a fresh request.** The record belongs to the user of the token (``sub``,
  canonical digits: ``app.core.tokens``), and before anything stored is answered the user must still exist
  and be active (one primary-key read); otherwise 401, as the request itself would get. A 401 answer is
  never stored, so a user reactivated later is not answered from the store.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Response
from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    column,
    delete,
    select,
    table,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.db import Base, UTCDateTime, unit_of_work, utcnow
from app.core.errors import AppError, error_body
from app.core.tokens import AccessClaims

API_PREFIX = "/api/v1/"
EXEMPT_PREFIX = "/api/v1/auth/"
TTL = timedelta(hours=24)
ABANDONED_AFTER = timedelta(minutes=15)
MAX_KEY_LENGTH = 255
MAX_STORED_BODY = 1024 * 1024
# The marker a route sets (through :func:`secret_response`) on a response that carries a secret.
SECRET_HEADER = "x-cdht-secret"
_SECRET_HEADER = SECRET_HEADER.encode()
# Field names whose value is a secret, wherever they appear in a JSON response body.
SECRET_FIELDS = frozenset(
    {"client_secret", "secret", "access_token", "refresh_token", "id_token", "password", "api_key", "token"}
)
_DROPPED_HEADERS = {b"content-length", b"date", b"server", b"set-cookie", b"x-request-id", _SECRET_HEADER}
# Read without importing the auth package: is the key's owner still an active user?
_users = table("users", column("id", Integer), column("is_active", Boolean))


def secret_response(response: Response) -> None:
    """Route dependency (``dependencies=[Depends(secret_response)]``): this route's responses carry a secret
    shown once, so the idempotency store never keeps them."""
    response.headers[SECRET_HEADER] = "1"


class IdempotencyRecord(Base):
    """A POST seen with an ``Idempotency-Key``: its fingerprint, and the response once it is done."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("user_id", "key"),
        Index("ix_idempotency_records_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2000))
    body_sha256: Mapped[str] = mapped_column(String(64))
    # in_progress | done | withheld (done, but the response carried a secret and was not kept)
    state: Mapped[str] = mapped_column(String(20), default="in_progress")
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_headers: Mapped[list[list[str]] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class _Request:
    user_id: int
    key: str
    method: str
    path: str
    body_sha256: str


class _Refused(AppError):
    pass


class _KeyInUse(_Refused):
    status_code, code = 409, "conflict"
    default_message = "A request with this Idempotency-Key is still being processed; retry later."


class _KeyMismatch(_Refused):
    status_code, code = 422, "validation_error"
    default_message = "This Idempotency-Key was used for a different request."


class _CallerGone(_Refused):
    status_code, code = 401, "not_authenticated"
    default_message = "Invalid or expired token."


class _Withheld(_Refused):
    status_code, code = 409, "conflict"

    def __init__(self, status: int) -> None:
        super().__init__(
            f"The request with this Idempotency-Key was carried out (status {status}), but its response held "
            "a secret, which is shown once and never stored: it cannot be replayed. Read the object it made, "
            "or issue a new secret.",
            details={"status": status, "reason": "secret_not_stored"},
        )


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
        request = _Request(
            user_id=user_id,
            key=key,
            method=scope["method"],
            path=path + (f"?{query}" if query else ""),
            body_sha256=_fingerprint(headers, body),
        )
        sessionmaker = scope["app"].state.sessionmaker
        try:
            stored = await _claim(sessionmaker, request)
        except _Refused as exc:
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
        request: _Request,
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
            await _finish(sessionmaker, request, start, b"".join(chunks))
            await send(start)  # the secret marker is stripped by the outer send
            await send({"type": "http.response.body", "body": b"".join(chunks)})

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            await _release(sessionmaker, request)
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


@dataclass(frozen=True)
class _Stored:
    status: int
    headers: list[list[str]]
    body: bytes


async def _claim(sessionmaker: async_sessionmaker[AsyncSession], request: _Request) -> _Stored | None:
    """The stored response to replay, or None once the key is claimed for this request."""
    try:
        async with unit_of_work(sessionmaker) as session:
            now = utcnow()
            await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - TTL))
            record = await session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.user_id == request.user_id, IdempotencyRecord.key == request.key
                )
            )
            if record is None:
                session.add(IdempotencyRecord(**request.__dict__, state="in_progress", created_at=now))
                await session.flush()
                return None
            if not await _active(session, request.user_id):
                raise _CallerGone()
            if (record.method, record.path, record.body_sha256) != (
                request.method,
                request.path,
                request.body_sha256,
            ):
                raise _KeyMismatch()
            if record.state == "withheld" and record.status_code is not None:
                raise _Withheld(record.status_code)
            if record.state == "done" and record.status_code is not None:
                return _Stored(record.status_code, record.response_headers or [], record.response_body or b"")
            if record.created_at >= now - ABANDONED_AFTER:
                raise _KeyInUse()
            record.created_at = now
            return None
    except IntegrityError:  # the same key claimed at the same moment by a parallel request
        raise _KeyInUse() from None


async def _finish(
    sessionmaker: async_sessionmaker[AsyncSession], request: _Request, start: Message, body: bytes
) -> None:
    status = int(start["status"])
    # Not done, or not done as this caller (401): the key is free for a retry.
    if status >= 500 or status in (401, 429) or len(body) > MAX_STORED_BODY:
        await _release(sessionmaker, request)
        return
    raw_headers: list[tuple[bytes, bytes]] = start.get("headers", [])
    withheld = _carries_secret(raw_headers, body)
    headers = [
        [k.decode("latin-1"), v.decode("latin-1")]
        for k, v in raw_headers
        if k.lower() not in _DROPPED_HEADERS
    ]
    async with unit_of_work(sessionmaker) as session:
        record = await _record(session, request)
        if record is not None:
            record.state, record.status_code = ("withheld" if withheld else "done"), status
            record.response_body, record.response_headers = (None, None) if withheld else (body, headers)


def _carries_secret(headers: list[tuple[bytes, bytes]], body: bytes) -> bool:
    """Marked by its route, or a JSON body naming a secret field anywhere."""
    content_type = b""
    for name, value in headers:
        lowered = name.lower()
        if lowered == _SECRET_HEADER:
            return True
        if lowered == b"content-type":
            content_type = value.lower()
    if b"json" not in content_type:
        return False
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return _names_secret(data, depth=0)


def _names_secret(data: Any, depth: int) -> bool:
    if depth > 8:  # deeper than any body of this API: refuse to store rather than walk on
        return True
    if isinstance(data, dict):
        return any(
            (isinstance(k, str) and k.lower() in SECRET_FIELDS) or _names_secret(v, depth + 1)
            for k, v in data.items()
        )
    if isinstance(data, list):
        return any(_names_secret(item, depth + 1) for item in data)
    return False


async def _active(session: AsyncSession, user_id: int) -> bool:
    return bool(await session.scalar(select(_users.c.is_active).where(_users.c.id == user_id)))


def _without_secret_marker(send: Send) -> Send:
    """``send`` that drops the secret marker from the response headers: it is for this middleware only."""

    async def stripped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", [])
            if any(k.lower() == _SECRET_HEADER for k, _ in headers):
                message = {**message, "headers": [(k, v) for k, v in headers if k.lower() != _SECRET_HEADER]}
        await send(message)

    return stripped


async def _release(sessionmaker: async_sessionmaker[AsyncSession], request: _Request) -> None:
    async with unit_of_work(sessionmaker) as session:
        record = await _record(session, request)
        if record is not None and record.state == "in_progress":
            await session.delete(record)


async def _record(session: AsyncSession, request: _Request) -> IdempotencyRecord | None:
    return await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == request.user_id, IdempotencyRecord.key == request.key
        )
    )


async def _replay(send: Send, stored: _Stored) -> None:
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
