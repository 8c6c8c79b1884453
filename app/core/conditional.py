"""Conditional GETs for the dashboards that poll (RFC 9110 §8.8.3, §13.1.2): a weak ``ETag`` made from
what the answer depends on, and ``304 Not Modified`` with no body when ``If-None-Match`` names it.

The tag is computed *before* the body, from change counters read first (``aggregates/freshness.py``): a
change committed while the body is computed moves the counters again, so the next poll gets a new body;
the tag can only be older than the body, never newer.

A poll that finds nothing new is answered before the routing and the dependencies (:class:`TagCache`,
:class:`NotModifiedMiddleware`): the tag a request computed is kept, per path, query, language and caller,
with the generations taken before its change counters were read (``core/generations.py``) and the date. A
later request for the same with a valid bearer token of that caller and that tag in ``If-None-Match`` gets
its ``304`` from the kept tag while neither generation nor the date has moved and the tag is younger than
``CDHT_CACHE_MAX_AGE_SECONDS``: the very answer the route would give, since everything the route's tag and
its check of the caller's scope read is unchanged. Anything else goes to the route.

A read whose tag was computed again may still find its body computed already (:class:`KeptBodies`): the
body of a dashboard read depends on the read's arguments, the language and what its change counters count
— the very things the tag is made of — so an earlier request that read the same counters computed the same
bytes, whoever asked (each caller passes the scope check in the statement that reads the counters).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import date
from importlib import metadata
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core import generations, i18n
from app.core.dates import today
from app.core.schemas import json_of

# The OpenAPI ``responses`` entry of every route that answers conditional GETs.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the `ETag` sent in `If-None-Match` is still current."}
}
CACHE_CONTROL = "private, no-cache"  # browsers may keep it, but ask every time; shared caches may not
_VERSION = metadata.version("cdht")  # a new release may shape the same numbers differently


def etag(request: Request, user_id: int, *parts: object) -> str:
    """A weak tag for this request (path, query, language), this caller and ``parts``."""
    query = sorted(request.query_params.multi_items())
    seed = repr((_VERSION, request.url.path, query, i18n.current(), user_id, parts))
    return 'W/"' + hashlib.sha256(seed.encode()).hexdigest()[:32] + '"'


def _matches(request: Request, tag: str) -> bool:
    return _names(request.headers.get("if-none-match"), tag)


def _names(sent: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``tag`` (weak comparison)."""
    if not sent:
        return False
    if sent.strip() == "*":
        return True
    opaque = tag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == opaque for candidate in sent.split(","))


def _not_modified(tag: str) -> Response:
    return Response(status_code=304, headers={"ETag": tag, "Cache-Control": CACHE_CONTROL})


def answer(request: Request, response: Response, tag: str) -> Response | None:
    """``304`` when the client holds ``tag`` already; else ``None``, and ``response`` (the endpoint's
    ``Response`` parameter, or the one it returns: :func:`tagged`) carries the tag."""
    if _matches(request, tag):
        return _not_modified(tag)
    response.headers["ETag"] = tag
    response.headers["Cache-Control"] = CACHE_CONTROL
    return None


def tagged(response: Response, given: Response) -> Response:
    """``response`` (built by the endpoint) with the tag that :func:`answer` put on ``given``."""
    for name in ("ETag", "Cache-Control"):
        if name in given.headers:
            response.headers[name] = given.headers[name]
    return response


_Key = tuple[str, bytes, str, int]  # path, query string, language, user id


@dataclass(frozen=True, slots=True)
class _Kept:
    tag: str
    stamp: tuple[int, int]  # the generations (auth, dashboards) taken before the tag's counters were read
    on: date
    read_at: float  # time.monotonic()
    route: Any  # the route that answered (the metrics label it)


MAX_KEPT = 20_000  # tags per process; past it the table starts again


class TagCache:
    """The tags this process's dashboard reads computed (``max_age`` 0: none kept). ``user_of`` turns a
    bearer token into its user id, raising for a token that is not valid now."""

    def __init__(self, max_age: float, user_of: Callable[[str], int]) -> None:
        self.max_age = max_age
        self.user_of = user_of
        self._kept: dict[_Key, _Kept] = {}

    @staticmethod
    def stamp() -> tuple[int, int]:
        """The generations a tag depends on (auth, dashboards), now: take them before reading what a tag
        is made of."""
        now = generations.current().read()
        return now[generations.AUTH], now[generations.DASHBOARDS]

    def keep(self, request: Request, user_id: int, tag: str, stamp: tuple[int, int], subject_at: int) -> None:
        """Keep ``tag``, made from reads after ``stamp`` was taken, by a caller read at auth generation
        ``subject_at`` (a caller read before a later change of who may see what is not kept)."""
        if self.max_age <= 0 or subject_at != stamp[generations.AUTH]:
            return
        if len(self._kept) >= MAX_KEPT:
            self._kept.clear()
        key = (request.scope["path"], request.scope["query_string"], i18n.current(), user_id)
        self._kept[key] = _Kept(tag, stamp, today(), time.monotonic(), request.scope.get("route"))

    def unchanged(self, scope: Scope, token: str, sent: str) -> _Kept | None:
        """The kept tag of this request if it is still current and ``If-None-Match`` (``sent``) names it."""
        try:
            user_id = self.user_of(token)
        except Exception:  # an invalid or expired token: the route answers it (401)
            return None
        kept = self._kept.get((scope["path"], scope["query_string"], i18n.current(), user_id))
        if (
            kept is None
            or kept.stamp != self.stamp()
            or time.monotonic() - kept.read_at > self.max_age
            or kept.on != today()
            or not _names(sent, kept.tag)
        ):
            return None
        return kept


class KeptBodies:
    """JSON bodies of reads by what they were computed from, read before them: the dashboards'
    (``aggregates/freshness.answered``) and the pages of units (``orgs/pages.py``). A dashboard's key is
    the read, its arguments, the language and the values of the change counters its tag was made of, read
    *before* the body. A change committed since moves the counters, so the next read has another key; one
    committed while the body was computed makes the kept body newer than its key, never older (as the tag
    is older than the body it comes with). A body is kept ``max_age`` seconds at most (changes no session
    sees, as every kept copy) and within ``max_bytes`` in all; past that the table starts again. Either 0:
    nothing is kept."""

    def __init__(self, max_bytes: int, max_age: float) -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._bodies: dict[Hashable, tuple[bytes, float]] = {}
        self._size = 0

    def get(self, key: Hashable) -> bytes | None:
        kept = self._bodies.get(key)
        if kept is None:
            return None
        body, read_at = kept
        if time.monotonic() - read_at > self.max_age:
            del self._bodies[key]
            self._size -= len(body)
            return None
        return body

    async def json(self, key: Hashable, read: Callable[[], Awaitable[BaseModel]]) -> bytes:
        """The body kept under ``key``, else ``read()``'s model written as its route writes it, and kept."""
        if (body := self.get(key)) is None:
            body = json_of(await read())
            self.put(key, body)
        return body

    def put(self, key: Hashable, body: bytes) -> None:
        if self.max_age <= 0 or len(body) > self.max_bytes:
            return
        if self._size + len(body) > self.max_bytes:
            self._bodies.clear()
            self._size = 0
        if (old := self._bodies.pop(key, None)) is not None:
            self._size -= len(old[0])
        self._bodies[key] = (body, time.monotonic())
        self._size += len(body)


class NotModifiedMiddleware:
    """``304`` for a GET whose kept tag (:class:`TagCache`, ``app.state.tags``) is still current; every
    other request goes on to the routes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and (kept := _current_tag(scope)):
            scope["route"] = kept.route
            await _not_modified(kept.tag)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _current_tag(scope: Scope) -> _Kept | None:
    sent = token = None
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            sent = value.decode("latin-1")
        elif name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            token = credentials.strip() if scheme.lower() == "bearer" else None
    if not sent or not token:
        return None
    tags: TagCache | None = getattr(scope["app"].state, "tags", None)
    return tags.unchanged(scope, token, sent) if tags is not None else None
