"""The Prometheus registry of the service and what feeds it while requests run.

Metrics kept by every process (the Grafana dashboard, ``deploy/grafana/cdht-dashboard.json``, reads them):

- ``cdht_http_requests_total{method, route, status}`` and ``cdht_http_request_duration_seconds{method,
  route}`` (a histogram); ``route`` is the matched route's template (``/api/v1/org-units/{unit_id}``),
  never the raw path, so ids cannot multiply the series; a path no route matched is ``unmatched``, a POST
  answered from the idempotency store ``idempotent_replay``;
- ``cdht_http_requests_in_progress``;
- ``cdht_db_statements_per_request{method, route}``: a histogram of the SQL statements each request ran
  (every engine's, counted by a ``before_cursor_execute`` listener and given to the request that ran them
  through a context variable);
- ``cdht_db_pool_connections_in_use{database}`` and, for a pool with a fixed size, ``cdht_db_pool_size``.

``service.py`` adds, at each scrape, what the database says (queue depth and age, replica lag).

**Adding a metric** (say, read-replica fallbacks): create it on :data:`REGISTRY`, e.g.
``Counter("cdht_replica_fallbacks_total", "…", registry=REGISTRY)``; it is then counted in every worker and
summed at scrape time in multiprocess mode. A gauge needs a ``multiprocess_mode`` (``livesum`` for a
per-process quantity, ``mostrecent`` for a shared fact). A value computed when scraped (from an object of
this process) is a collector given to :func:`register_collector`.

**Several worker processes** (``cdht serve --workers N``): with ``PROMETHEUS_MULTIPROC_DIR`` naming an
empty directory in the environment *before* the workers start (prometheus_client reads it at import),
each process writes its values to files there and a scrape, answered by any worker, sums all of them
(``MultiProcessCollector``). A worker that stops cleanly drops its live gauges (:func:`process_exiting`);
those of one that died are dropped when its replacement starts (:func:`forget_dead_processes`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from weakref import WeakSet

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
# A POST answered from the idempotency store (app/core/idempotency.py) never reaches the router.
REPLAYED = "idempotent_replay"
REPLAY_HEADER = b"idempotent-replayed"
# Anything else (a client's invented method) is counted as OTHER: the label set stays bounded.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A request that ended without an answer: the client went away first (nginx's convention).
CLIENT_CLOSED = 499

REGISTRY = CollectorRegistry()
"""The service's metrics (not prometheus_client's global registry, which other libraries may fill)."""
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)  # the scraped process's own; not exposed in multiprocess mode

REQUESTS = Counter(
    "cdht_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "cdht_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
IN_PROGRESS = Gauge(
    "cdht_http_requests_in_progress",
    "HTTP requests being answered now.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
STATEMENTS = Histogram(
    "cdht_db_statements_per_request",
    "SQL statements run while answering one request, by method and route template.",
    ["method", "route"],
    buckets=(1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100),
    registry=REGISTRY,
)
POOL_IN_USE = Gauge(
    "cdht_db_pool_connections_in_use",
    "Database connections checked out of the pool now (without a pool: connections open now).",
    ["database"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
POOL_SIZE = Gauge(
    "cdht_db_pool_size",
    "Connections the pool keeps (overflow connections come on top); absent without a fixed-size pool.",
    ["database"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)

_scrape_collectors: list[Collector] = []


def register_collector(collector: Collector) -> None:
    """Expose ``collector``'s metrics at every scrape (its ``collect()`` runs in the scraping process).
    For counts kept while the service runs, create a metric on :data:`REGISTRY` instead."""
    if collector not in _scrape_collectors:
        _scrape_collectors.append(collector)


def unregister_collector(collector: Collector) -> None:
    if collector in _scrape_collectors:
        _scrape_collectors.remove(collector)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


class _Joined:
    """One collector for the exposition: ``sources``' metrics, then ``extra``."""

    def __init__(self, sources: Iterable[Collector], extra: Iterable[Metric]) -> None:
        self.sources = list(sources)
        self.extra = list(extra)

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()
        yield from self.extra


def render(extra: Iterable[Metric] = ()) -> bytes:
    """The text exposition: the service's metrics (every worker's, in multiprocess mode), the registered
    collectors' and ``extra`` (what the scrape read from the database)."""
    path = multiprocess_dir()
    if path:
        workers = CollectorRegistry()
        MultiProcessCollector(workers, path=path)  # type: ignore[no-untyped-call]
        own: Collector = workers
    else:
        own = REGISTRY
    return generate_latest(_Joined([own, *_scrape_collectors], extra))


def forget_dead_processes() -> None:
    """In multiprocess mode, take the live gauges of workers that died without stopping cleanly (killed,
    crashed) out of the totals: uvicorn starts a replacement, whose start-up calls this."""
    path = multiprocess_dir()
    if not path:
        return
    for file in Path(path).glob("gauge_live*_*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), path)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def process_exiting() -> None:
    """In multiprocess mode, take this process's live gauges (requests in progress, pool) out of the
    totals; its counters stay in them, as they should."""
    path = multiprocess_dir()
    if path:
        mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


# --- statements per request -------------------------------------------------------------------------------


@dataclass
class _Statements:
    count: int = 0


_current_statements: ContextVar[_Statements | None] = ContextVar("cdht_request_statements", default=None)


def _count_statement(*_args: Any) -> None:
    # SQLAlchemy's asyncio greenlets run in the awaiting task's context, so the request's counter is here.
    counter = _current_statements.get()
    if counter is not None:
        counter.count += 1


def count_statements() -> None:
    """Count the statements of every engine (a class-level listener: the read replica's and the tests'
    engines too) against the request running them. Safe to call again."""
    if not event.contains(Engine, "before_cursor_execute", _count_statement):
        event.listen(Engine, "before_cursor_execute", _count_statement)


# --- connection pools -------------------------------------------------------------------------------------

_instrumented: WeakSet[Engine] = WeakSet()
_checked_out: dict[str, set[int]] = {}  # database label → ids of the connection records checked out


def instrument_engine(engine: AsyncEngine, database: str = "primary") -> None:
    """Report ``engine``'s connections in use (and its pool size) under ``database`` (``primary``,
    ``replica``). Safe to call again with the same engine."""
    sync_engine = engine.sync_engine
    if sync_engine in _instrumented:
        return
    _instrumented.add(sync_engine)
    records = _checked_out.setdefault(database, set())
    gauge = POOL_IN_USE.labels(database)
    gauge.set(len(records))

    # A set of records rather than +1/-1: a check-in without its check-out (a failed connect) cannot
    # drive the gauge below the truth.
    def checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        records.add(id(record))
        gauge.set(len(records))

    def checkin(_dbapi: Any, record: Any) -> None:
        records.discard(id(record))
        gauge.set(len(records))

    event.listen(sync_engine, "checkout", checkout)
    event.listen(sync_engine, "checkin", checkin)
    if isinstance(sync_engine.pool, QueuePool):
        POOL_SIZE.labels(database).set(sync_engine.pool.size())


# --- requests ---------------------------------------------------------------------------------------------


def route_template(scope: Scope) -> str:
    """The template of the route that answered (``/api/v1/org-units/{unit_id}``), or ``unmatched``."""
    route = scope.get("route")  # set by the router that matched
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        return UNMATCHED
    if isinstance(route, Mount):  # static files under a prefix: one series for the whole mount
        template = template.rstrip("/") + "/{path}"
    return _included_prefix(scope, route) + template


def _included_prefix(scope: Scope, route: Any) -> str:
    """The prefix of the router that included ``route`` (``/api/v1``): FastAPI keeps an included router's
    routes as declared and matches them against the rest of the path, so the route's own template lacks
    it. Found as the part of the path before the first ``/`` from which the route's pattern matches; the
    prefixes of this app are fixed text, so no id can come into the label this way."""
    path = str(scope.get("path", ""))
    pattern = getattr(route, "path_regex", None)
    if pattern is None or pattern.match(path):
        return ""
    for at, char in enumerate(path):
        if char == "/" and at > 0 and pattern.match(path[at:]):
            return path[:at]
    return ""


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status, and observes the SQL
    statements it ran. Plain ASGI, like the other middlewares: streamed bodies pass through untouched and
    the time runs to the response's last byte."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        statements = _Statements()
        token = _current_statements.set(statements)
        status: int | None = None
        replayed = False
        started = time.perf_counter()
        IN_PROGRESS.inc()

        async def send_observed(message: Message) -> None:
            nonlocal status, replayed
            if message["type"] == "http.response.start":
                status = message["status"]
                replayed = any(name == REPLAY_HEADER for name, _ in message.get("headers", []))
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except BaseException:
            status = status or 500  # the server's own error handler answers 500 outside this middleware
            raise
        finally:
            elapsed = time.perf_counter() - started
            IN_PROGRESS.dec()
            _current_statements.reset(token)
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            route = route_template(scope)
            if route == UNMATCHED and replayed:
                route = REPLAYED
            REQUESTS.labels(method, route, str(status or CLIENT_CLOSED)).inc()
            LATENCY.labels(method, route).observe(elapsed)
            STATEMENTS.labels(method, route).observe(statements.count)
