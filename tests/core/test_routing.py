"""The API's routers rule themselves out by their paths' static prefixes (app/core/routing.py). That must
be a shortcut only: every request reaches the same route, with the same status, as with FastAPI's own
matching, including the 405 of a known path asked with another method, the trailing-slash redirect and the
404 of a path no route has."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from app.core.routing import ScopedRouter, static_prefix

pytestmark = pytest.mark.anyio


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}:]+:path\}", "a/b", re.sub(r"\{[^}:]+\}", "7", path))


def _included(app: FastAPI) -> list[Any]:
    """The routers included in the app (FastAPI keeps each with the prefix it was included with)."""
    return [r for r in app.router.routes if hasattr(r, "original_router")]


def _requests(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) for every route, asked as declared, with a method it does not take, with and
    without a trailing slash; and paths no route has."""
    routes = [(r.path, r) for r in app.router.routes if isinstance(r, APIRoute)]
    for included in _included(app):
        prefix = included.include_context.prefix
        routes += [(prefix + r.path, r) for r in included.original_router.routes if isinstance(r, APIRoute)]
    asked: list[tuple[str, str]] = []
    for full_path, route in routes:
        path = _concrete(full_path)
        for method in sorted(route.methods):
            asked.append((method, path))
        other = next(m for m in ("DELETE", "PATCH", "PUT", "POST", "GET") if m not in route.methods)
        asked.append((other, path))
        asked.append(("GET", path.rstrip("/") if path.endswith("/") else path + "/"))
    asked += [("GET", "/api/v1/nothing-here"), ("GET", "/api/v1/aggregates"), ("GET", "/nowhere/at/all")]
    return asked


async def _route_of(app: FastAPI, method: str, path: str) -> tuple[int, Any, Any]:
    """The status and the route FastAPI chose for a request with no credentials."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "state": {},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], scope.get("endpoint"), scope.get("route")


async def test_every_request_reaches_the_route_fastapi_alone_would_choose(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _requests(app)
    assert len(asked) > 300
    full_matches = 0
    plain_matches = APIRouter.matches

    def counted(router: APIRouter, scope: Any) -> Any:
        nonlocal full_matches
        full_matches += 1
        return plain_matches(router, scope)

    monkeypatch.setattr(APIRouter, "matches", counted)
    shortcut = [await _route_of(app, method, path) for method, path in asked]
    with_shortcut, full_matches = full_matches, 0
    monkeypatch.setattr(ScopedRouter, "matches", counted)
    plain = [await _route_of(app, method, path) for method, path in asked]
    assert with_shortcut * 4 < full_matches, (with_shortcut, full_matches)  # the shortcut was taken
    differ = [(asked[i], shortcut[i], plain[i]) for i in range(len(asked)) if shortcut[i] != plain[i]]
    assert not differ, differ[:5]
    statuses = {status for status, _, _ in shortcut}
    assert {401, 404, 405, 307} <= statuses, statuses  # the cases the shortcut must not change were asked


async def test_every_router_of_the_app_can_rule_itself_out(app: FastAPI) -> None:
    """A router with a route of another kind would be asked in full on every request: none has one."""
    routers = {
        id(r.original_router): r.original_router for r in app.router.routes if hasattr(r, "original_router")
    }
    assert len(routers) >= 20
    for router in routers.values():
        assert isinstance(router, ScopedRouter), router
        assert router._static_prefixes(), router


def test_a_static_prefix_ends_at_the_first_parameter() -> None:
    assert static_prefix("/evaluations/{evaluation_id}/evidence/{evidence_id}") == "/evaluations/"
    assert static_prefix("/org-units") == "/org-units"
    assert static_prefix("/{path:path}") == "/"
