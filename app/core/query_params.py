"""Unknown query parameters are refused with 422, as unknown body fields are (``StrictModel``).

``/people?org_unit=6`` (a typo of ``org_unit_id``) must not answer the caller's whole scope. The check is a
dependency of every router included under ``/api/v1`` (app/main.py): it reads the matched route's declared
query parameters — its own, its dependencies' (pagination, …) — once per route, and answers like a body's
unknown field:
``validation_error`` with one ``ValidationIssue`` per name, ``{"loc": ["query", name], "msg": …,
"type": "extra_forbidden"}``.

It runs before the route's other dependencies, authentication included: a request with an unknown
parameter is 422 even without a token (the names it reveals are those of the public OpenAPI document).
Not covered, on purpose: the routes outside ``/api/v1`` (``/healthz``, ``/readyz``, ``/metrics``,
``/docs``, ``/openapi.json``), which probes and browsers call with parameters of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel

EXTRA_FORBIDDEN = "extra_forbidden"

_declared: dict[int, tuple[APIRoute, frozenset[str]]] = {}


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def declared_query_names(route: APIRoute) -> frozenset[str]:
    """The query parameter names the route reads (aliases, as a client sends them)."""
    cached = _declared.get(id(route))
    if cached is not None and cached[0] is route:
        return cached[1]
    names: set[str] = set()
    for dependant in _dependants(route.dependant):
        for field in dependant.query_params:
            annotation = field.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                # A query-parameter model: each of its fields is a parameter.
                names.update(f.alias or n for n, f in annotation.model_fields.items())
            else:
                names.add(field.alias)
    found = frozenset(names)
    _declared[id(route)] = (route, found)
    return found


def unknown_query_issues(route: APIRoute, sent: list[tuple[str, str]]) -> list[dict[str, Any]]:
    known = declared_query_names(route)
    unknown = sorted({name for name, _ in sent} - known)
    takes = ", ".join(sorted(known)) or "no query parameters"
    return [
        {
            "loc": ("query", name),
            "msg": f"Extra inputs are not permitted (this operation takes: {takes})",
            "type": EXTRA_FORBIDDEN,
        }
        for name in unknown
    ]


async def reject_unknown_query_params(request: Request) -> None:
    """The dependency: 422 naming every query parameter the matched route does not declare."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    issues = unknown_query_issues(route, request.query_params.multi_items())
    if issues:
        raise RequestValidationError(issues)
