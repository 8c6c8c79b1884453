"""The API's routers: a request passes a router none of whose routes can match its path at the cost of a
string comparison.

FastAPI chooses among the app's included routers in order, and to ask an included router whether it
matches it runs every route of it: a regular expression each, with the route's context set and restored
around it. The API has 20 routers and ~100 routes, so a request for a late router (``/aggregates``, the
dashboards' polls) paid ~0.5 ms of matching before its own work began (``bench/run_http.py``, in-process
profile; a `304` poll costs ~2 ms in all).

A route's path can only match a request path that begins with the route's static prefix (its path up to
the first ``{``), after the prefix the router was included with. :class:`ScopedRouter` keeps the static
prefixes of its routes and answers "no match" at once when the request's path begins with none of them;
otherwise FastAPI matches as always, so what matches, the 405 of a known path with another method, and the
trailing-slash redirect (matched on the other spelling of the path, by the same call) are unchanged.
Routers with routes of another kind (a ``Host``, a router included inside it) are always asked in full.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi import routing as fastapi_routing
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.types import Scope


def static_prefix(path: str) -> str:
    """The part of a route path before its first parameter."""
    return path.split("{", 1)[0]


def _prefixes(routes: list[BaseRoute]) -> tuple[str, ...] | None:
    """The static prefixes of ``routes``; None when one of them matches by more than its path."""
    found: set[str] = set()
    for route in routes:
        if not isinstance(route, Route | WebSocketRoute | Mount):
            return None
        found.add(static_prefix(route.path))
    return tuple(sorted(found))


def _included_prefix(scope: Scope) -> str | None:
    """The prefix the router being asked was included with (FastAPI notes the included router in the scope
    before it asks); None if this FastAPI does not say."""
    included: Any = getattr(fastapi_routing, "_get_scope_included_router", lambda _scope: None)(scope)
    prefix = getattr(getattr(included, "include_context", None), "prefix", None)
    return prefix if isinstance(prefix, str) else None


class ScopedRouter(APIRouter):
    """An ``APIRouter`` that rules itself out by its routes' static prefixes (module docstring)."""

    _scoped_key: tuple[int, int] | None = None
    _scoped_prefixes: tuple[str, ...] | None = None

    def _static_prefixes(self) -> tuple[str, ...] | None:
        key = (id(self.routes), len(self.routes))  # routes are only ever added, at import time
        if key != self._scoped_key:
            self._scoped_prefixes = _prefixes(self.routes)
            self._scoped_key = key
        return self._scoped_prefixes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        prefixes = self._static_prefixes()
        included = _included_prefix(scope) if prefixes is not None else None
        if prefixes is not None and included is not None:
            path = get_route_path(scope)
            if not any(path.startswith(included + prefix) for prefix in prefixes):
                return Match.NONE, {}
        return super().matches(scope)
