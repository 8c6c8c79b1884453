"""Plan endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response, status

from app.auth.deps import CurrentSubject
from app.core.db import DbSession
from app.core.pagination import Page, Pagination
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID, IdPath, if_match
from app.plans import service
from app.plans.schemas import PlanCreate, PlanRead, PlanUpdate, TargetsReplace

router = ScopedRouter(prefix="/plans", tags=["plans"])
IfMatch = Annotated[int | None, Depends(if_match)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PlanRead)
async def create_plan(body: PlanCreate, subject: CurrentSubject, session: DbSession) -> PlanRead:
    """A plan of ``org_unit_id`` with its targets (org_admin of the unit's subtree). A parent plan must
    belong to a unit above (409 otherwise)."""
    return await service.create(session, subject, body)


@router.get("", response_model=Page[PlanRead])
async def list_plans(
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    org_unit_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    above: Annotated[
        bool, Query(description="With org_unit_id: also the plans of the units above it (those that apply).")
    ] = False,
) -> object:
    """Plans in the subtree of ``org_unit_id`` (or every plan the caller may read, including the plans
    of the units above theirs)."""
    items, total = await service.list_plans(session, subject, page, org_unit_id=org_unit_id, above=above)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{plan_id}", response_model=PlanRead)
async def get_plan(plan_id: IdPath, subject: CurrentSubject, session: DbSession) -> PlanRead:
    return await service.get(session, subject, plan_id)


@router.patch("/{plan_id}", response_model=PlanRead)
async def update_plan(
    plan_id: IdPath, body: PlanUpdate, subject: CurrentSubject, session: DbSession, expected: IfMatch
) -> PlanRead:
    return await service.update(session, subject, plan_id, body, expected)


@router.delete("/{plan_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_plan(
    plan_id: IdPath, subject: CurrentSubject, session: DbSession, expected: IfMatch
) -> Response:
    """Delete a plan and its targets (409 while another plan names it as parent)."""
    await service.delete(session, subject, plan_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{plan_id}/targets", response_model=PlanRead)
async def replace_targets(
    plan_id: IdPath, body: TargetsReplace, subject: CurrentSubject, session: DbSession, expected: IfMatch
) -> PlanRead:
    """Replace all the plan's targets; the plan's ``version`` is required (body or ``If-Match``)."""
    return await service.replace_targets(session, subject, plan_id, body, expected)
