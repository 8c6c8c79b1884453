"""Training session endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, status

from app.auth.deps import CurrentSubject
from app.core.db import DbSession
from app.core.pagination import Page, Pagination
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID, IdPath, if_match
from app.trainings import service
from app.trainings.schemas import AttendeesReplace, TrainingSessionCreate, TrainingSessionRead

router = ScopedRouter(prefix="/training-sessions", tags=["training sessions"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TrainingSessionRead)
async def create_session(
    body: TrainingSessionCreate, subject: CurrentSubject, session: DbSession
) -> TrainingSessionRead:
    """Record a training session (tập huấn / quán triệt) held by ``org_unit_id`` and who attended it
    (people of that unit's subtree; 409 otherwise, nothing written)."""
    return await service.create(session, subject, body)


@router.get("", response_model=Page[TrainingSessionRead])
async def list_sessions(
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    org_unit_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> object:
    items, total = await service.list_sessions(session, subject, page, org_unit_id=org_unit_id, year=year)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{session_id}", response_model=TrainingSessionRead)
async def get_session(session_id: IdPath, subject: CurrentSubject, session: DbSession) -> TrainingSessionRead:
    return await service.get(session, subject, session_id)


@router.put("/{session_id}/attendees", response_model=TrainingSessionRead)
async def replace_attendees(
    session_id: IdPath,
    body: AttendeesReplace,
    subject: CurrentSubject,
    session: DbSession,
    expected: Annotated[int | None, Depends(if_match)],
) -> TrainingSessionRead:
    """Replace the list of attendees."""
    return await service.replace_attendees(session, subject, session_id, body, expected)
