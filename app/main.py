"""``create_app()``: routers, error handlers, middleware — nothing else; ``serve_app()``: the same for a
serving process (``cdht serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib import metadata

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.aggregates.router import router as aggregates_router
from app.alerts.router import router as alerts_router
from app.auth.login import AuthContext
from app.auth.router import router as auth_router
from app.auth.subjects import SubjectCache
from app.auth.throttle import LoginThrottle
from app.auth.users_router import router as users_router
from app.collectives.router import router as collectives_router
from app.core import conditional, generations, heap, openapi
from app.core.config import Settings, get_settings
from app.core.db import make_engine, make_sessionmaker
from app.core.errors import install_error_handlers
from app.core.i18n import LanguageMiddleware
from app.core.idempotency import IdempotencyMiddleware
from app.core.middleware import BodyLimitMiddleware, RequestIdMiddleware
from app.core.query_params import reject_unknown_query_params
from app.core.replicas import ReplicaRouter
from app.core.routing import ScopedRouter
from app.core.tokens import TokenCodec
from app.criteria import terms as criteria_terms
from app.criteria.router import router as criteria_router
from app.dashboard.router import router as dashboard_router
from app.decisions.router import router as decisions_router
from app.evaluations.router import router as evaluations_router
from app.evaluations.storage import EvidenceStore
from app.imports.router import router as imports_router
from app.imports.runner import ImportJobRunner
from app.observability import metrics
from app.observability import replicas as replica_metrics
from app.observability.router import router as metrics_router
from app.orgs import service as orgs_service
from app.orgs.router import router as orgs_router
from app.people.router import router as people_router
from app.plans.router import router as plans_router
from app.reorganisations.router import router as reorganisations_router
from app.reporting.router import router as reporting_router
from app.reports.router import exports_router, reports_router
from app.trainings.router import router as trainings_router
from app.webhooks.deliverer import WebhookDeliverer
from app.webhooks.router import router as webhooks_router
from app.webhooks.worker import scan_alerts_forever

API_PREFIX = "/api/v1"
log = logging.getLogger("cdht.health")


def create_app(
    settings: Settings | None = None,
    engine: AsyncEngine | None = None,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
) -> FastAPI:
    """The app; ``sessionmaker`` replaces the engine's own (the tests bind it to a rolled-back connection)."""
    settings = settings or get_settings()
    owns_engine = engine is None
    engine = engine or make_engine(settings.effective_database_url, settings=settings)
    sessionmaker = sessionmaker or make_sessionmaker(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        sessionmaker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
        import_jobs: ImportJobRunner = app.state.import_jobs
        webhooks: WebhookDeliverer = app.state.webhooks
        metrics.forget_dead_processes()  # a worker replacing one that died: its gauges leave the totals
        workers: list[asyncio.Task[None]] = []
        if settings.import_worker:
            workers.append(asyncio.create_task(import_jobs.run_forever(), name="cdht-import-jobs"))
        if settings.webhook_worker:
            workers.append(asyncio.create_task(webhooks.run_forever(), name="cdht-webhooks"))
            workers.append(
                asyncio.create_task(scan_alerts_forever(settings, sessionmaker), name="cdht-alert-scan")
            )
        yield
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        await webhooks.aclose()
        metrics.process_exiting()
        await app.state.replicas.aclose()
        if owns_engine:
            await app.state.engine.dispose()

    app = FastAPI(
        title=openapi.TITLE,
        version=metadata.version("cdht"),
        description=openapi.DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
        docs_url=None,  # openapi.install serves /docs and /redoc with packaged assets, not a CDN's
        redoc_url=None,
    )
    metrics.count_statements()
    install_state(app, settings, engine, sessionmaker)
    _health_routes(app)  # first: load balancers poll them, and routes are matched in order

    install_error_handlers(app)
    routers: tuple[ScopedRouter, ...] = (  # each rules itself out by its paths (core/routing.py)
        auth_router,
        users_router,
        orgs_router,
        reorganisations_router,
        people_router,
        collectives_router,
        criteria_router,
        evaluations_router,
        decisions_router,
        plans_router,
        trainings_router,
        aggregates_router,
        imports_router,
        reports_router,
        exports_router,
        reporting_router,
        alerts_router,
        webhooks_router,
    )
    # Each router is included in the app itself, not in an ``/api/v1`` router first: FastAPI matches a
    # request against an included router's routes once to choose it and again inside it, so one level of
    # nesting less is one pass over every route less per request (``bench/run_http.py``).
    for router in routers:
        app.include_router(router, prefix=API_PREFIX, dependencies=[Depends(reject_unknown_query_params)])
    app.include_router(dashboard_router)  # /dashboard/: the web page (issue #17), outside the API
    app.include_router(metrics_router)  # /metrics: Prometheus, outside the API and its schema
    openapi.install(app)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "Idempotency-Key", "Accept-Language"],
        )
    app.add_middleware(conditional.NotModifiedMiddleware)  # innermost: a poll's 304 skips the routing
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(metrics.MetricsMiddleware)  # outside the others: their own answers are counted too
    app.add_middleware(LanguageMiddleware)  # outermost: every answer, the middlewares' own too, is translated
    logging.getLogger("cdht").setLevel(logging.INFO)
    return app


def serve_app() -> FastAPI:
    """The app as ``cdht serve`` runs it in each worker: :func:`create_app`, then the garbage collector set
    for a long-running process (``core/heap.py``)."""
    app = create_app()
    heap.settle()
    return app


def install_state(
    app: FastAPI,
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """What requests and the workers read from ``app.state``, built fresh: settings, the database (and its
    read replicas), the import and webhook workers, the evidence store, tokens and the login throttle. The
    tests build one app per process and install a fresh state, bound to the test's transaction, for each
    test."""
    app.state.settings = settings
    generations.install(generations.path_for(settings.var_dir))  # shared by this host's processes
    app.state.engine = engine
    metrics.instrument_engine(engine)  # idempotent: the tests install a state on the same engine each time
    app.state.sessionmaker = sessionmaker
    # The scoring terms of frozen criteria sets, kept for the app's sessions (app/criteria/terms.py).
    app.state.criteria_terms = criteria_terms.keep_in(sessionmaker, settings.cache_max_age_seconds)
    # The units callers may read, kept while the tree has not changed (app/orgs/service.get_visible_life).
    app.state.unit_lives = orgs_service.keep_lives_in(sessionmaker, settings.cache_max_age_seconds)
    app.state.replicas = ReplicaRouter(settings, replica_metrics.PROMETHEUS)
    for replica in app.state.replicas.replicas:
        metrics.instrument_engine(replica.engine, "replica")
    app.state.import_jobs = ImportJobRunner(settings, sessionmaker)
    app.state.webhooks = WebhookDeliverer(settings, sessionmaker)
    app.state.evidence_store = EvidenceStore(settings.effective_evidence_dir)
    app.state.auth = AuthContext(
        codec=TokenCodec(
            key=settings.signing_key(),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            lifetime=timedelta(minutes=settings.access_token_minutes),
        ),
        throttle=LoginThrottle(
            max_failures=settings.login_max_failures,
            lockout_seconds=settings.login_lockout_seconds,
            max_failures_per_address=settings.login_max_failures_per_address,
        ),
        refresh_lifetime=timedelta(days=settings.refresh_token_days),
        sessionmaker=sessionmaker,
        subjects=SubjectCache(settings.cache_max_age_seconds),
        track_writes=app.state.replicas.enabled,
    )
    codec = app.state.auth.codec
    app.state.tags = conditional.TagCache(
        settings.cache_max_age_seconds, user_of=lambda token: codec.decode_access(token).user_id
    )
    app.state.bodies = conditional.KeptBodies(
        int(settings.kept_bodies_mb * 1024 * 1024), settings.cache_max_age_seconds
    )


def _health_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> JSONResponse:
        # Twice: the first try may meet a pooled connection the server closed (there is no pre-ping).
        for _ in range(2):
            try:
                async with request.app.state.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            except Exception:  # any failure to reach the database means not ready
                log.info("readiness check could not reach the database", exc_info=True)
                continue
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable"}, status_code=503)
