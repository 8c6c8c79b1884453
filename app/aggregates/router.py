"""Metric registry and aggregate endpoints (the dashboards)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response

from app.aggregates import freshness, service
from app.aggregates.schemas import Basis, Breakdown, MetricRead, Progress, Trend
from app.auth.deps import CurrentSubject, ReadSession
from app.core import conditional
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID

router = ScopedRouter(tags=["aggregates"])

UnitId = Annotated[int, Query(ge=1, le=MAX_ID, description="The unit whose subtree is counted.")]
Year = Annotated[int, Query(ge=2000, le=2100)]
BasisQuery = Annotated[
    Basis,
    Query(description="as_was: the tree as it stood that year; lineage: re-based on today's units."),
]
MetricCode = Annotated[str, Query(min_length=1, max_length=64, description="A code from GET /metrics.")]


@router.get("/metrics", response_model=list[MetricRead])
async def list_metrics(subject: CurrentSubject) -> list[MetricRead]:
    """The metric registry: what each percentage counts."""
    return service.registry()


@router.get("/aggregates/progress", response_model=Progress, responses=conditional.NOT_MODIFIED)
async def progress(
    org_unit_id: UnitId,
    year: Year,
    subject: CurrentSubject,
    session: ReadSession,
    request: Request,
    response: Response,
    basis: BasisQuery = Basis.AS_WAS,
) -> Response:
    """Every metric of the unit's subtree for the year against its effective target. Answers with an
    ``ETag``; ``If-None-Match`` with it gets ``304`` while nothing counted has changed."""
    return await freshness.answered(
        request,
        response,
        session,
        subject,
        service.progress,
        org_unit_id,
        year,
        basis,
        lineage=basis is Basis.LINEAGE,
    )


@router.get("/aggregates/breakdown", response_model=Breakdown, responses=conditional.NOT_MODIFIED)
async def breakdown(
    org_unit_id: UnitId,
    year: Year,
    metric: MetricCode,
    subject: CurrentSubject,
    session: ReadSession,
    request: Request,
    response: Response,
    basis: BasisQuery = Basis.AS_WAS,
) -> Response:
    """One row per direct child unit, each against its own effective target (``ETag`` as progress)."""
    return await freshness.answered(
        request,
        response,
        session,
        subject,
        service.breakdown,
        org_unit_id,
        year,
        metric,
        basis,
        lineage=basis is Basis.LINEAGE,
    )


@router.get("/aggregates/trend", response_model=Trend, responses=conditional.NOT_MODIFIED)
async def trend(
    org_unit_id: UnitId,
    metric: MetricCode,
    from_year: Year,
    to_year: Year,
    subject: CurrentSubject,
    session: ReadSession,
    request: Request,
    response: Response,
    basis: BasisQuery = Basis.AS_WAS,
) -> Response:
    """One row per year from ``from_year`` to ``to_year`` (at most 50 years; ``ETag`` as progress)."""
    return await freshness.answered(
        request,
        response,
        session,
        subject,
        service.trend,
        org_unit_id,
        metric,
        from_year,
        to_year,
        basis,
        lineage=basis is Basis.LINEAGE,
    )
