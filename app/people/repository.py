"""Every query of person records."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import PageParams, fetch_page
from app.people.models import Person


async def get(session: AsyncSession, person_id: int) -> Person | None:
    return await session.get(Person, person_id)


async def get_by_citizen_id(session: AsyncSession, citizen_id: str) -> Person | None:
    return await session.scalar(select(Person).where(Person.citizen_id == citizen_id))


async def get_by_user(session: AsyncSession, user_id: int) -> Person | None:
    return await session.scalar(select(Person).where(Person.user_id == user_id))


async def page(
    session: AsyncSession, where: list[ColumnElement[bool]], params: PageParams
) -> tuple[list[Person], int]:
    stmt = select(Person).where(*where).order_by(Person.full_name, Person.id)
    return await fetch_page(session, stmt, params)
