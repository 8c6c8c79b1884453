"""Who a change of the counters concerns beyond its own subjects (read-only): the people whose belonging to
a recognised household, clan, community or learning unit moves when that collective's recognition
changes, or when a subtree leaves or joins a recognised unit. ``counters.py`` recounts them around the
change."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.collectives.models import ClanHousehold, HouseholdMember
from app.evaluations.models import Evaluation, Status
from app.orgs.models import OrgUnitLink
from app.people.models import Membership


async def people_of_collective_evaluations(session: AsyncSession, evaluation_ids: Sequence[int]) -> list[int]:
    """Everyone whose belonging to a recognised collective may change with these collective
    evaluations' recognition: every member (any period) of the household, of the clan's households,
    or of the unit's subtree."""
    if not evaluation_ids:
        return []
    ids = sorted(evaluation_ids)
    e = aliased(Evaluation)
    families = (
        select(HouseholdMember.person_id)
        .join(e, e.collective_id == HouseholdMember.household_id)
        .where(e.id.in_(ids))
    )
    clans = (
        select(HouseholdMember.person_id)
        .join(ClanHousehold, ClanHousehold.household_id == HouseholdMember.household_id)
        .join(e, e.collective_id == ClanHousehold.clan_id)
        .where(e.id.in_(ids))
    )
    units = (
        select(Membership.person_id)
        .join(OrgUnitLink, OrgUnitLink.descendant_id == Membership.org_unit_id)
        .join(e, e.subject_unit_id == OrgUnitLink.ancestor_id)
        .where(e.id.in_(ids))
    )
    return sorted(set((await session.scalars(union(families, clans, units))).all()))


async def people_leaving_recognised_units(
    session: AsyncSession, unit_id: int, ancestors: Sequence[int], from_year: int
) -> list[int]:
    """The people below ``unit_id`` whose belonging to a recognised community or learning unit changes
    when the subtree leaves or joins ``ancestors`` from ``from_year`` on: everyone below, if one of the
    ancestors holds such a recognition of that year or later; else nobody (the usual case)."""
    if not ancestors:
        return []
    held = select(
        select(Evaluation.id)
        .where(
            Evaluation.subject_unit_id.in_(sorted(ancestors)),
            Evaluation.status == Status.RECOGNISED.value,
            Evaluation.year >= from_year,
        )
        .exists()
    )
    if not await session.scalar(held):
        return []
    below = (
        select(Membership.person_id)
        .join(OrgUnitLink, OrgUnitLink.descendant_id == Membership.org_unit_id)
        .where(OrgUnitLink.ancestor_id == unit_id)
        .distinct()
    )
    return sorted((await session.scalars(below)).all())
