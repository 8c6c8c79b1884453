"""Every query of person records."""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, exists, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.dates import move_dated
from app.core.pagination import PageParams, fetch_page
from app.people.models import Membership, Person, Transfer


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


async def open_membership(session: AsyncSession, person_id: int) -> Membership | None:
    stmt = select(Membership).where(Membership.person_id == person_id, Membership.valid_to.is_(None))
    return await session.scalar(stmt)


async def first_membership(session: AsyncSession, person_id: int) -> Membership | None:
    """The person's earliest placement (one that began "always" first)."""
    stmt = (
        select(Membership)
        .where(Membership.person_id == person_id)
        .order_by(Membership.valid_from.is_not(None), Membership.valid_from, Membership.id)
        .limit(1)
    )
    return await session.scalar(stmt)


async def first_membership_day(session: AsyncSession, person_id: int) -> date | None:
    stmt = select(Membership.valid_from).where(Membership.person_id == person_id)
    starts = list((await session.scalars(stmt)).all())
    return None if not starts or None in starts else min(d for d in starts if d is not None)


async def transfers_page(
    session: AsyncSession, person_id: int, params: PageParams
) -> tuple[list[Transfer], int]:
    stmt = (
        select(Transfer).where(Transfer.person_id == person_id).order_by(Transfer.effective_on, Transfer.id)
    )
    return await fetch_page(session, stmt, params)


async def max_membership_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(Membership.id))) or 0)


async def add_memberships_for_new_people(session: AsyncSession, after_person_id: int, since: date) -> None:
    """Open memberships from ``since`` for the people inserted in bulk after ``after_person_id`` (those
    that have none yet: another import may have run alongside)."""
    rows = select(
        Person.id, Person.org_unit_id, Person.group, literal(since, Membership.valid_from.type)
    ).where(Person.id > after_person_id, ~exists().where(Membership.person_id == Person.id))
    await session.execute(
        insert(Membership).from_select(["person_id", "org_unit_id", "grp", "valid_from"], rows)
    )


async def people_placed_in(session: AsyncSession, unit_id: int, on: date) -> list[int]:
    """People with a membership in ``unit_id`` on or after ``on``."""
    stmt = (
        select(Membership.person_id)
        .where(
            Membership.org_unit_id == unit_id, or_(Membership.valid_to.is_(None), Membership.valid_to >= on)
        )
        .distinct()
    )
    return sorted((await session.scalars(stmt)).all())


async def move_memberships(
    session: AsyncSession, unit_id: int, into_id: int, on: date, reorganisation_id: int | None
) -> int:
    """Everyone placed in ``unit_id`` from ``on`` on is placed in ``into_id`` instead (periods that began
    before ``on`` are split there). Returns how many people had it as their unit today."""
    await move_dated(session, Membership, unit_id, into_id, on, Membership.person_id, Membership.group)
    moved = (
        select(Person.id.label("id"), Person.group.label("grp"))
        .where(Person.org_unit_id == unit_id)
        .subquery("moved")
    )
    await session.execute(
        insert(Transfer).from_select(
            [
                "person_id",
                "effective_on",
                "from_unit_id",
                "to_unit_id",
                "from_group",
                "to_group",
                "reorganisation_id",
            ],
            select(
                moved.c.id,
                literal(on, Transfer.effective_on.type),
                literal(unit_id),
                literal(into_id),
                moved.c.grp,
                moved.c.grp,
                literal(reorganisation_id),
            ),
        )
    )
    result = await session.execute(
        update(Person)
        .where(Person.org_unit_id == unit_id)
        .values(org_unit_id=into_id)
        .execution_options(synchronize_session="fetch")
    )
    # A DELETE's or UPDATE's Result is a CursorResult; AsyncSession.execute types it as Result.
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
