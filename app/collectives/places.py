"""Where households and clans are placed, through time: moving everything placed in a unit that ends
into its successor (a reorganisation), as people's memberships move (``people.repository``)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.collectives.models import Collective, CollectivePlace
from app.core.dates import move_dated


async def placed_in(session: AsyncSession, unit_id: int, on: date) -> list[int]:
    """Households and clans placed in ``unit_id`` on or after ``on``."""
    stmt = (
        select(CollectivePlace.collective_id)
        .where(
            CollectivePlace.org_unit_id == unit_id,
            or_(CollectivePlace.valid_to.is_(None), CollectivePlace.valid_to >= on),
        )
        .distinct()
    )
    return sorted((await session.scalars(stmt)).all())


async def move_places(session: AsyncSession, unit_id: int, into_id: int, on: date) -> None:
    """Everything placed in ``unit_id`` from ``on`` on is placed in ``into_id`` instead (periods that
    began before ``on`` are split there); today's placement follows."""
    await move_dated(session, CollectivePlace, unit_id, into_id, on, CollectivePlace.collective_id)
    await session.execute(
        update(Collective)
        .where(Collective.org_unit_id == unit_id)
        .values(org_unit_id=into_id)
        .execution_options(synchronize_session=False)
    )
