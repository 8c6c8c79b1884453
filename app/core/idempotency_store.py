"""The store of ``Idempotency-Key`` records behind ``idempotency.py`` (whose docstring tells the whole
rule): the record, claiming a key (the stored response to replay, or 409/422/401 refusals), keeping the
response once the request is done, and releasing the key when the work did not happen. **Secrets are
never stored**: a response marked by :func:`secret_response` or naming a :data:`SECRET_FIELDS` field is
recorded as ``withheld``."""

from __future__ import annotations

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
from starlette.types import Message

from app.core.db import Base, UTCDateTime, unit_of_work, utcnow
from app.core.errors import AppError

TTL = timedelta(hours=24)
ABANDONED_AFTER = timedelta(minutes=15)
MAX_KEY_LENGTH = 255
MAX_STORED_BODY = 1024 * 1024
# The marker a route sets (through :func:`secret_response`) on a response that carries a secret.
SECRET_HEADER = "x-cdht-secret"
SECRET_MARKER = SECRET_HEADER.encode()  # as it appears in raw ASGI headers
# Field names whose value is a secret, wherever they appear in a JSON response body.
SECRET_FIELDS = frozenset(
    {"client_secret", "secret", "access_token", "refresh_token", "id_token", "password", "api_key", "token"}
)
_DROPPED_HEADERS = {b"content-length", b"date", b"server", b"set-cookie", b"x-request-id", SECRET_MARKER}
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
class KeyRequest:
    user_id: int
    key: str
    method: str
    path: str
    body_sha256: str


class Refused(AppError):
    pass


class _KeyInUse(Refused):
    status_code, code = 409, "conflict"
    default_message = "A request with this Idempotency-Key is still being processed; retry later."


class _KeyMismatch(Refused):
    status_code, code = 422, "validation_error"
    default_message = "This Idempotency-Key was used for a different request."


class _CallerGone(Refused):
    status_code, code = 401, "not_authenticated"
    default_message = "Invalid or expired token."


class _Withheld(Refused):
    status_code, code = 409, "conflict"

    def __init__(self, status: int) -> None:
        super().__init__(
            f"The request with this Idempotency-Key was carried out (status {status}), but its response held "
            "a secret, which is shown once and never stored: it cannot be replayed. Read the object it made, "
            "or issue a new secret.",
            details={"status": status, "reason": "secret_not_stored"},
        )


@dataclass(frozen=True)
class Stored:
    status: int
    headers: list[list[str]]
    body: bytes


async def claim(sessionmaker: async_sessionmaker[AsyncSession], request: KeyRequest) -> Stored | None:
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
                return Stored(record.status_code, record.response_headers or [], record.response_body or b"")
            if record.created_at >= now - ABANDONED_AFTER:
                raise _KeyInUse()
            record.created_at = now
            return None
    except IntegrityError:  # the same key claimed at the same moment by a parallel request
        raise _KeyInUse() from None


async def finish(
    sessionmaker: async_sessionmaker[AsyncSession], request: KeyRequest, start: Message, body: bytes
) -> None:
    status = int(start["status"])
    # Not done, or not done as this caller (401): the key is free for a retry.
    if status >= 500 or status in (401, 429) or len(body) > MAX_STORED_BODY:
        await release(sessionmaker, request)
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
        if lowered == SECRET_MARKER:
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


async def release(sessionmaker: async_sessionmaker[AsyncSession], request: KeyRequest) -> None:
    async with unit_of_work(sessionmaker) as session:
        record = await _record(session, request)
        if record is not None and record.state == "in_progress":
            await session.delete(record)


async def _record(session: AsyncSession, request: KeyRequest) -> IdempotencyRecord | None:
    return await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == request.user_id, IdempotencyRecord.key == request.key
        )
    )
