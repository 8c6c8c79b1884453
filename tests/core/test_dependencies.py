"""Every dependency of every route is a coroutine (or an async generator): FastAPI runs a plain ``def``
dependency in its thread pool, a hop that costs ~90 µs a request on this project's machines (README,
issue #15) and queues behind the pool's 40 threads under load. ``If-Match`` (every versioned write of the
December mix), the evidence store (uploads) and the import runner were such hops until this test. The
API's endpoints are coroutines for the same reason (the documentation pages are the app's own and may
not be)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.main import create_app


def _routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every API route: the app's own and those of the routers it includes."""
    for route in app.router.routes:
        if isinstance(route, APIRoute):
            yield route
        for included in getattr(getattr(route, "original_router", None), "routes", ()):
            if isinstance(included, APIRoute):
                yield included


def _runs_in_the_loop(call: Any) -> bool:
    # A function, or an instance whose ``__call__`` is the dependency (the OAuth2 scheme); a class is
    # called as ``type.__call__``, in the thread pool.
    target = call if inspect.isroutine(call) else type(call).__call__
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def test_no_dependency_runs_in_the_thread_pool() -> None:
    app = create_app()
    routes = list(_routes(app))
    assert len(routes) > 100  # the walk reaches the included routers
    in_threads = sorted(
        {
            f"{dependency.call.__module__}.{dependency.call.__qualname__} ({route.path})"
            for route in routes
            for dependency in _dependencies(route.dependant)
            if dependency.call is not None and not _runs_in_the_loop(dependency.call)
        }
    )
    assert in_threads == []


def test_every_api_endpoint_is_a_coroutine() -> None:
    in_threads = sorted(
        f"{route.endpoint.__module__}.{route.endpoint.__qualname__}"
        for route in _routes(create_app())
        if not route.path.startswith(("/docs", "/redoc")) and not inspect.iscoroutinefunction(route.endpoint)
    )
    assert in_threads == []
