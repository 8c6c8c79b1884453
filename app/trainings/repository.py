"""Every query of training sessions and attendance."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.scope import subtree_ids
from app.core.pagination import PageParams, fetch_page
from app.people.models import Person
from app.trainings.models import Attendance, TrainingSession


async def get(session: AsyncSession, session_id: int) -> TrainingSession | None:
    return await session.get(TrainingSession, session_id)


async def page(
    session: AsyncSession, where: list[ColumnElement[bool]], params: PageParams
) -> tuple[list[TrainingSession], int]:
    stmt = (
        select(TrainingSession)
        .where(*where)
        .order_by(TrainingSession.held_on.desc(), TrainingSession.id.desc())
    )
    return await fetch_page(session, stmt, params)


async def attendees_of(session: AsyncSession, session_ids: Sequence[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = defaultdict(list)
    if not session_ids:
        return found
    stmt = (
        select(Attendance.session_id, Attendance.person_id)
        .where(Attendance.session_id.in_(list(session_ids)))
        .order_by(Attendance.session_id, Attendance.person_id)
    )
    for session_id, person_id in (await session.execute(stmt)).all():
        found[session_id].append(person_id)
    return found


async def people_in_subtree(session: AsyncSession, unit_id: int, person_ids: Sequence[int]) -> set[int]:
    """Which of ``person_ids`` are people of ``unit_id``'s subtree."""
    if not person_ids:
        return set()
    stmt = select(Person.id).where(
        Person.id.in_(list(person_ids)), Person.org_unit_id.in_(subtree_ids([unit_id]))
    )
    return set((await session.scalars(stmt)).all())


async def replace_attendees(session: AsyncSession, session_id: int, person_ids: Sequence[int]) -> None:
    await session.execute(delete(Attendance).where(Attendance.session_id == session_id))
    if person_ids:
        await session.execute(
            insert(Attendance), [{"session_id": session_id, "person_id": p} for p in person_ids]
        )
