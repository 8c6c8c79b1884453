"""Every query of plans and targets."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import PageParams, fetch_page
from app.orgs.models import OrgUnitClosure
from app.plans.models import Plan, Target


async def get(session: AsyncSession, plan_id: int) -> Plan | None:
    return await session.get(Plan, plan_id)


async def get_by_key(session: AsyncSession, key: str) -> Plan | None:
    return await session.scalar(select(Plan).where(Plan.key == key))


async def is_strictly_above(session: AsyncSession, ancestor_id: int, unit_id: int) -> bool:
    stmt = select(
        exists().where(
            OrgUnitClosure.ancestor_id == ancestor_id,
            OrgUnitClosure.descendant_id == unit_id,
            OrgUnitClosure.depth > 0,
        )
    )
    return bool(await session.scalar(stmt))


async def page(
    session: AsyncSession, where: list[ColumnElement[bool]], params: PageParams
) -> tuple[list[Plan], int]:
    stmt = select(Plan).where(*where).order_by(Plan.start_year.desc(), Plan.title, Plan.id)
    return await fetch_page(session, stmt, params)


async def targets_of(session: AsyncSession, plan_ids: Sequence[int]) -> dict[int, list[Target]]:
    found: dict[int, list[Target]] = defaultdict(list)
    if not plan_ids:
        return found
    stmt = (
        select(Target)
        .where(Target.plan_id.in_(list(plan_ids)))
        .order_by(Target.plan_id, Target.metric, Target.year)
    )
    for target in (await session.scalars(stmt)).all():
        found[target.plan_id].append(target)
    return found


async def replace_targets(session: AsyncSession, plan: Plan, targets: Sequence[Target]) -> None:
    await session.execute(delete(Target).where(Target.plan_id == plan.id))
    session.add_all(targets)
    await session.flush()


async def years_outside(session: AsyncSession, plan_id: int, start_year: int, end_year: int) -> list[int]:
    stmt = (
        select(Target.year)
        .where(Target.plan_id == plan_id, or_(Target.year < start_year, Target.year > end_year))
        .distinct()
        .order_by(Target.year)
    )
    return list((await session.scalars(stmt)).all())


async def count_children(session: AsyncSession, plan_id: int) -> int:
    return int(await session.scalar(select(func.count()).where(Plan.parent_plan_id == plan_id)) or 0)


async def delete_plan(session: AsyncSession, plan: Plan) -> None:
    await session.execute(delete(Target).where(Target.plan_id == plan.id))
    await session.delete(plan)
    await session.flush()
