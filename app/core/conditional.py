"""Conditional GETs for the dashboards that poll (RFC 9110 §8.8.3, §13.1.2): a weak ``ETag`` made from
what the answer depends on, and ``304 Not Modified`` with no body when ``If-None-Match`` names it.

The tag is computed *before* the body, from change counters read first (``aggregates/freshness.py``): a
change committed while the body is computed moves the counters again, so the next poll gets a new body;
the tag can only be older than the body, never newer.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from typing import Any

from fastapi import Request, Response

from app.core import i18n

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
    sent = request.headers.get("if-none-match")
    if not sent:
        return False
    if sent.strip() == "*":
        return True
    opaque = tag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == opaque for candidate in sent.split(","))


def answer(request: Request, response: Response, tag: str) -> Response | None:
    """``304`` when the client holds ``tag`` already; else ``None``, and ``response`` (the endpoint's
    ``Response`` parameter, or the one it returns: :func:`tagged`) carries the tag."""
    if _matches(request, tag):
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": CACHE_CONTROL})
    response.headers["ETag"] = tag
    response.headers["Cache-Control"] = CACHE_CONTROL
    return None


def tagged(response: Response, given: Response) -> Response:
    """``response`` (built by the endpoint) with the tag that :func:`answer` put on ``given``."""
    for name in ("ETag", "Cache-Control"):
        if name in given.headers:
            response.headers[name] = given.headers[name]
    return response
