"""``GET /alerts``: the computed alerts of a unit and its descendants (see ``service.py`` for the rules)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import Query

from app.alerts import service
from app.alerts.schemas import AlertKind, AlertPage
from app.auth.deps import CurrentSubject, ReadSession
from app.core.deps import AppSettings
from app.core.pagination import Pagination
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID

router = ScopedRouter(prefix="/alerts", tags=["alerts"])


@router.get("", response_model=AlertPage)
async def list_alerts(
    settings: AppSettings,
    org_unit_id: Annotated[int, Query(ge=1, le=MAX_ID, description="The unit whose alerts are listed.")],
    year: Annotated[int, Query(ge=2000, le=2100)],
    subject: CurrentSubject,
    session: ReadSession,
    page: Pagination,
    depth: Annotated[
        int,
        Query(
            ge=0,
            le=service.MAX_DEPTH,
            description="Levels below the unit that are listed too (0: the unit alone; 1: its children).",
        ),
    ] = 1,
    kind: Annotated[AlertKind | None, Query(description="Only alerts of this kind.")] = None,
    tolerance: Annotated[
        Decimal,
        Query(
            ge=0,
            le=100,
            max_digits=5,
            decimal_places=2,
            description="Percentage points below the trajectory that are still on track.",
        ),
    ] = service.DEFAULT_TOLERANCE,
    review_days: Annotated[
        int | None,
        Query(ge=0, le=3650, description="Days after submission an evaluation may wait for review."),
    ] = None,
) -> AlertPage:
    """Units behind their plan's trajectory, reports overdue and evaluations waiting too long for review,
    for the unit and its descendants down to ``depth`` levels."""
    options = service.Options(
        depth=depth,
        tolerance=tolerance,
        review_days=settings.review_waiting_days if review_days is None else review_days,
        kinds=frozenset(AlertKind) if kind is None else frozenset({kind}),
    )
    return await service.list_alerts(session, subject, org_unit_id, year, options, page)
