"""Every query of households and clans: the collectives, where they are placed, and their dated sets
(people in households, households in clans), read through one :class:`Relation` for both."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.collectives.models import ClanHousehold, Collective, CollectivePlace, HouseholdMember
from app.core.dates import ONE_DAY
from app.core.pagination import PageParams, fetch_page
from app.orgs.models import OrgUnit

LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class Relation:
    """A dated set: ``owner`` (the household, the clan) holds ``member`` (a person, a household)."""

    model: type[HouseholdMember] | type[ClanHousehold]
    owner: Any
    member: Any

    def row(self, owner_id: int, member_id: int, valid_from: date) -> HouseholdMember | ClanHousehold:
        if self.model is HouseholdMember:
            return HouseholdMember(household_id=owner_id, person_id=member_id, valid_from=valid_from)
        return ClanHousehold(clan_id=owner_id, household_id=member_id, valid_from=valid_from)


MEMBERS = Relation(HouseholdMember, HouseholdMember.household_id, HouseholdMember.person_id)
CLAN_HOUSEHOLDS = Relation(ClanHousehold, ClanHousehold.clan_id, ClanHousehold.household_id)


def _chunked(ids: Iterable[Any]) -> list[list[Any]]:
    items = sorted(set(ids))
    return [items[i : i + LOOKUP_CHUNK] for i in range(0, len(items), LOOKUP_CHUNK)]


async def get(session: AsyncSession, collective_id: int, kind: str) -> Collective | None:
    found = await session.get(Collective, collective_id)
    return found if found is not None and found.kind == kind else None


async def get_by_code(session: AsyncSession, kind: str, code: str) -> Collective | None:
    return await session.scalar(select(Collective).where(Collective.kind == kind, Collective.code == code))


async def by_codes(session: AsyncSession, kind: str, codes: Iterable[str]) -> dict[str, Collective]:
    found: dict[str, Collective] = {}
    for part in _chunked(codes):
        stmt = select(Collective).where(Collective.kind == kind, Collective.code.in_(part))
        found.update({c.code or "": c for c in (await session.scalars(stmt)).all()})
    return found


async def page(
    session: AsyncSession, where: list[ColumnElement[bool]], params: PageParams
) -> tuple[list[Collective], int]:
    stmt = select(Collective).where(*where).order_by(Collective.name, Collective.id)
    return await fetch_page(session, stmt, params)


async def open_place(session: AsyncSession, collective_id: int) -> CollectivePlace | None:
    stmt = select(CollectivePlace).where(
        CollectivePlace.collective_id == collective_id, CollectivePlace.valid_to.is_(None)
    )
    return await session.scalar(stmt)


# --- dated sets -----------------------------------------------------------------------------------------


async def periods_of(session: AsyncSession, rel: Relation, owner_ids: Sequence[int]) -> list[Any]:
    """Every period of the owners' sets, oldest first."""
    rows: list[Any] = []
    for part in _chunked(owner_ids):
        stmt = (
            select(rel.model)
            .where(rel.owner.in_(part))
            .order_by(rel.owner, rel.model.valid_from, rel.member, rel.model.id)
        )
        rows.extend((await session.scalars(stmt)).all())
    return rows


async def open_rows(session: AsyncSession, rel: Relation, owner_id: int) -> list[Any]:
    stmt = select(rel.model).where(rel.owner == owner_id, rel.model.valid_to.is_(None))
    return list((await session.scalars(stmt)).all())


async def last_change(session: AsyncSession, rel: Relation, owner_id: int) -> date | None:
    """The last day the owner's set changed: the latest start, or the day after the latest end."""
    starts, ends = (
        await session.execute(
            select(func.max(rel.model.valid_from), func.max(rel.model.valid_to)).where(rel.owner == owner_id)
        )
    ).one()
    days = [d for d in (starts, ends + ONE_DAY if ends is not None else None) if d is not None]
    return max(days) if days else None


async def belonging_from(
    session: AsyncSession, rel: Relation, member_ids: Iterable[int], on: date, *, besides: int | None
) -> list[Any]:
    """Periods of ``member_ids`` in owners other than ``besides`` that are still running on ``on`` or
    later (open, or ending on or after it): belonging there from ``on`` would overlap them."""
    rows: list[Any] = []
    for part in _chunked(member_ids):
        stmt = select(rel.model).where(
            rel.member.in_(part), or_(rel.model.valid_to.is_(None), rel.model.valid_to >= on)
        )
        if besides is not None:
            stmt = stmt.where(rel.owner != besides)
        rows.extend(
            (await session.scalars(stmt.order_by(rel.model.valid_to.is_not(None), rel.model.id))).all()
        )
    return rows


async def open_owner_of(session: AsyncSession, rel: Relation, member_ids: Sequence[int]) -> dict[int, int]:
    """member → the owner it belongs to today (its open period)."""
    found: dict[int, int] = {}
    for part in _chunked(member_ids):
        stmt = select(rel.member, rel.owner).where(rel.member.in_(part), rel.model.valid_to.is_(None))
        found.update({member: owner for member, owner in (await session.execute(stmt)).all()})
    return found


async def people_of_households(session: AsyncSession, household_ids: Sequence[int]) -> list[int]:
    """Everyone who ever belonged to ``household_ids`` (any period)."""
    found: set[int] = set()
    for part in _chunked(household_ids):
        stmt = select(HouseholdMember.person_id).where(HouseholdMember.household_id.in_(part)).distinct()
        found.update((await session.scalars(stmt)).all())
    return sorted(found)


async def units_matching(
    session: AsyncSession, unit_ids: Iterable[int], rule: ColumnElement[bool]
) -> set[int]:
    """Of ``unit_ids``, those that match ``rule`` (a scope filter on ``OrgUnit.id``)."""
    found: set[int] = set()
    for part in _chunked(unit_ids):
        found.update((await session.scalars(select(OrgUnit.id).where(OrgUnit.id.in_(part), rule))).all())
    return found


async def units_by_id(session: AsyncSession, unit_ids: Iterable[int]) -> dict[int, OrgUnit]:
    found: dict[int, OrgUnit] = {}
    for part in _chunked(unit_ids):
        found.update(
            {u.id: u for u in (await session.scalars(select(OrgUnit).where(OrgUnit.id.in_(part)))).all()}
        )
    return found
