"""Reorganisation endpoints: apply one (or try it: ``dry_run``), list and read them."""

from __future__ import annotations

from fastapi import Response, status

from app.auth.deps import CurrentSubject
from app.core.db import DbSession
from app.core.pagination import Page, Pagination
from app.core.routing import ScopedRouter
from app.core.schemas import IdPath
from app.reorganisations import service
from app.reorganisations.schemas import ReorganisationCreate, ReorganisationRead

router = ScopedRouter(prefix="/reorganisations", tags=["reorganisations"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ReorganisationRead)
async def apply_reorganisation(
    body: ReorganisationCreate, subject: CurrentSubject, session: DbSession, response: Response
) -> ReorganisationRead:
    """Apply the steps in order, all or nothing, effective ``effective_on`` (today or earlier). A dry run
    answers 200 with what would happen and keeps nothing."""
    result = await service.apply(session, subject, body)
    if body.dry_run:
        response.status_code = status.HTTP_200_OK
    return result


@router.get("", response_model=Page[ReorganisationRead])
async def list_reorganisations(subject: CurrentSubject, session: DbSession, page: Pagination) -> object:
    """Reorganisations whose units the caller may read, the latest first."""
    items, total = await service.list_reorganisations(session, subject, page)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{reorganisation_id}", response_model=ReorganisationRead)
async def get_reorganisation(
    reorganisation_id: IdPath, subject: CurrentSubject, session: DbSession
) -> object:
    return await service.get(session, subject, reorganisation_id)
