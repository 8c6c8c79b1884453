"""Criteria set endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, status

from app.auth.deps import CurrentSubject
from app.core.db import DbSession
from app.core.pagination import Page, Pagination
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID, IdPath
from app.criteria import service
from app.criteria.schemas import CriteriaSetRead, CriteriaSetSummary, CriteriaVariantCreate
from app.evaluations.models import Title
from app.people.models import Group

router = ScopedRouter(prefix="/criteria-sets", tags=["criteria"])


@router.get("", response_model=Page[CriteriaSetSummary])
async def list_sets(
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    group: Group | None = None,
    org_unit_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    recognises: Title | None = None,
) -> object:
    items, total = await service.list_sets(
        session, page, group, org_unit_id, recognises.value if recognises else None
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{set_id}", response_model=CriteriaSetRead)
async def get_set(set_id: IdPath, subject: CurrentSubject, session: DbSession) -> CriteriaSetRead:
    return await service.read(session, set_id)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CriteriaSetRead)
async def create_variant(
    body: CriteriaVariantCreate, subject: CurrentSubject, session: DbSession
) -> CriteriaSetRead:
    """Derive a local variant from a parent set, replacing some indicators (org_admin of the unit)."""
    return await service.create_variant(session, subject, body)
