"""Recognition decision endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, status

from app.auth.deps import CurrentSubject
from app.core.db import DbSession
from app.core.pagination import Page, Pagination
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID, IdPath
from app.decisions import service as decisions
from app.decisions.schemas import DecisionCreate, DecisionRead, DecisionRevoke

router = ScopedRouter(prefix="/recognition-decisions", tags=["recognition decisions"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DecisionRead)
async def sign_decision(body: DecisionCreate, subject: CurrentSubject, session: DbSession) -> DecisionRead:
    """Approver at the unit: every listed evaluation must be reviewed, passed and in the unit's subtree,
    or nothing changes (409 naming which)."""
    return await decisions.create(session, subject, body)


@router.get("", response_model=Page[DecisionRead])
async def list_decisions(
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    org_unit_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> object:
    items, total = await decisions.list_decisions(session, subject, page, org_unit_id, year)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{decision_id}", response_model=DecisionRead)
async def get_decision(decision_id: IdPath, subject: CurrentSubject, session: DbSession) -> DecisionRead:
    return await decisions.get(session, subject, decision_id)


@router.post("/{decision_id}/revoke", response_model=DecisionRead)
async def revoke_decision(
    decision_id: IdPath, body: DecisionRevoke, subject: CurrentSubject, session: DbSession
) -> DecisionRead:
    """Withdraw the title: the decision's evaluations go back to reviewed."""
    return await decisions.revoke(session, subject, decision_id, body.reason)
