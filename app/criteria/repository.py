"""Every query of criteria sets, criteria and indicators."""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import PageParams, fetch_page
from app.criteria.models import CriteriaSet, Criterion, Indicator


async def get(session: AsyncSession, set_id: int) -> CriteriaSet | None:
    return await session.get(CriteriaSet, set_id)


async def get_by_code(session: AsyncSession, code: str, version: int | None = None) -> CriteriaSet | None:
    stmt = select(CriteriaSet).where(CriteriaSet.code == code)
    if version is not None:
        stmt = stmt.where(CriteriaSet.version == version)
    return await session.scalar(stmt.order_by(CriteriaSet.version.desc()).limit(1))


async def sets_with_codes(session: AsyncSession, codes: set[str]) -> list[CriteriaSet]:
    """Every version of the sets with these codes (the loader's one read)."""
    return list((await session.scalars(select(CriteriaSet).where(CriteriaSet.code.in_(codes)))).all())


async def page(
    session: AsyncSession, where: list[ColumnElement[bool]], params: PageParams
) -> tuple[list[CriteriaSet], int]:
    stmt = select(CriteriaSet).where(*where).order_by(CriteriaSet.code, CriteriaSet.version)
    return await fetch_page(session, stmt, params)


async def criteria_of(session: AsyncSession, set_id: int) -> list[Criterion]:
    stmt = select(Criterion).where(Criterion.set_id == set_id).order_by(Criterion.number)
    return list((await session.scalars(stmt)).all())


async def indicators_of(session: AsyncSession, set_id: int) -> list[Indicator]:
    stmt = select(Indicator).where(Indicator.set_id == set_id).order_by(Indicator.number)
    return list((await session.scalars(stmt)).all())


async def active_sets_for_group(session: AsyncSession, group: str) -> list[CriteriaSet]:
    stmt = select(CriteriaSet).where(CriteriaSet.group == group, CriteriaSet.status == "active")
    return list((await session.scalars(stmt.order_by(CriteriaSet.version.desc()))).all())


async def active_sets_for_title(session: AsyncSession, title: str) -> list[CriteriaSet]:
    stmt = select(CriteriaSet).where(CriteriaSet.recognises == title, CriteriaSet.status == "active")
    return list((await session.scalars(stmt.order_by(CriteriaSet.version.desc()))).all())


async def clear_structure(session: AsyncSession, set_id: int) -> None:
    await session.execute(delete(Indicator).where(Indicator.set_id == set_id))
    await session.execute(delete(Criterion).where(Criterion.set_id == set_id))


async def freeze(session: AsyncSession, set_id: int) -> None:
    await session.execute(
        update(CriteriaSet)
        .where(CriteriaSet.id == set_id, CriteriaSet.frozen.is_(False))
        .values(frozen=True)
        .execution_options(synchronize_session=False)
    )
