"""Every query of the org tree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import waiting
from app.core.pagination import Paged, PageParams, fetch_page_rows, paged
from app.orgs.models import OrgUnit, OrgUnitClosure

# What a page of units reads of each (``service.rows_to_reads`` unpacks a row by position, in this order; its
# parent and level come from the unit's history on the day asked): columns, not entities — no ORM object
# and no identity map for a page of 50.
UNIT_COLUMNS = (
    OrgUnit.id,
    OrgUnit.name,
    OrgUnit.kind,
    OrgUnit.code,
    OrgUnit.valid_from,
    OrgUnit.valid_to,
    OrgUnit.version,
    OrgUnit.created_at,
    OrgUnit.updated_at,
)


async def get(session: AsyncSession, unit_id: int) -> OrgUnit | None:
    return await session.get(OrgUnit, unit_id)


async def get_by_code(session: AsyncSession, code: str) -> OrgUnit | None:
    return await session.scalar(select(OrgUnit).where(OrgUnit.code == code))


def paged_units(where: list[ColumnElement[bool]], depth: ColumnElement[int]) -> Paged:
    """The units ``where`` selects, the higher levels first (``depth``: the level to sort by), to page
    through (built once per shape by the service, its values bound)."""
    return paged(select(*UNIT_COLUMNS).where(*where).order_by(depth, OrgUnit.name, OrgUnit.id))


async def page(
    session: AsyncSession, stmt: Paged, values: dict[str, Any], params: PageParams
) -> tuple[list[Sequence[Any]], int]:
    """A page of :func:`paged_units`' units as rows of :data:`UNIT_COLUMNS`, its bound ``values`` given."""
    rows, total = await fetch_page_rows(session, stmt, params, values)
    return [row[:-1] for row in rows], total  # less the page's count


def descendants_of(unit_id: int, *, include_self: bool = False) -> Select[int]:
    stmt = select(OrgUnitClosure.descendant_id).where(OrgUnitClosure.ancestor_id == unit_id)
    if not include_self:
        stmt = stmt.where(OrgUnitClosure.depth > 0)
    return stmt


async def is_in_subtree(session: AsyncSession, root_id: int, unit_id: int) -> bool:
    stmt = select(
        exists().where(OrgUnitClosure.ancestor_id == root_id, OrgUnitClosure.descendant_id == unit_id)
    )
    return bool(await session.scalar(stmt))


async def ancestor_ids(session: AsyncSession, unit_id: int) -> list[int]:
    """Ancestors of a unit including itself, nearest first."""
    stmt = (
        select(OrgUnitClosure.ancestor_id)
        .where(OrgUnitClosure.descendant_id == unit_id)
        .order_by(OrgUnitClosure.depth)
    )
    return list((await session.scalars(stmt)).all())


async def link_new_unit(session: AsyncSession, unit: OrgUnit) -> None:
    """Closure rows of a freshly inserted unit: itself, plus each ancestor of its parent one level further."""
    own = select(literal(unit.id), literal(unit.id), literal(0))
    rows: Select[int, int, int] | CompoundSelect[int, int, int] = own
    if unit.parent_id is not None:
        rows = own.union_all(
            select(OrgUnitClosure.ancestor_id, literal(unit.id), OrgUnitClosure.depth + 1).where(
                OrgUnitClosure.descendant_id == unit.parent_id
            )
        )
    await session.execute(insert(OrgUnitClosure).from_select(["ancestor_id", "descendant_id", "depth"], rows))


async def move_subtree(session: AsyncSession, unit: OrgUnit, new_parent: OrgUnit) -> None:
    """Re-hang ``unit``'s subtree under ``new_parent``: drop the links to the old ancestors, add the new
    ones, shift depths. The caller has checked that new_parent is not inside the subtree. The review
    queue's counts follow the subtree (``aggregates.waiting``)."""
    old = set(await ancestor_ids(session, unit.id)) - {unit.id}
    new = set(await ancestor_ids(session, new_parent.id))
    await waiting.subtree_moved(session, unit.id, sorted(old - new), sorted(new - old))
    subtree = select(OrgUnitClosure.descendant_id).where(OrgUnitClosure.ancestor_id == unit.id)
    old_ancestors = select(OrgUnitClosure.ancestor_id).where(
        OrgUnitClosure.descendant_id == unit.id, OrgUnitClosure.ancestor_id != unit.id
    )
    await session.execute(
        delete(OrgUnitClosure).where(
            OrgUnitClosure.descendant_id.in_(subtree.scalar_subquery()),
            OrgUnitClosure.ancestor_id.in_(old_ancestors.scalar_subquery()),
        )
    )
    above = select(OrgUnitClosure).where(OrgUnitClosure.descendant_id == new_parent.id).subquery("above")
    below = select(OrgUnitClosure).where(OrgUnitClosure.ancestor_id == unit.id).subquery("below")
    await session.execute(
        insert(OrgUnitClosure).from_select(
            ["ancestor_id", "descendant_id", "depth"],
            select(above.c.ancestor_id, below.c.descendant_id, above.c.depth + below.c.depth + 1).select_from(
                above.join(below, literal(True))
            ),
        )
    )
    delta = new_parent.depth + 1 - unit.depth
    if delta:
        await session.execute(
            update(OrgUnit)
            .where(OrgUnit.id.in_(subtree.scalar_subquery()), OrgUnit.id != unit.id)
            .values(depth=OrgUnit.depth + delta)
            .execution_options(synchronize_session=False)
        )
    unit.parent_id = new_parent.id
    unit.depth = new_parent.depth + 1


async def count_children(session: AsyncSession, unit_id: int) -> int:
    return int(await session.scalar(select(func.count()).where(OrgUnit.parent_id == unit_id)) or 0)


async def delete_unit(session: AsyncSession, unit: OrgUnit) -> None:
    await session.execute(delete(OrgUnitClosure).where(OrgUnitClosure.descendant_id == unit.id))
    await session.delete(unit)


async def covering_unit(session: AsyncSession, unit_ids: set[int]) -> int | None:
    """The deepest unit that is an ancestor (or self) of every one of ``unit_ids`` in today's tree."""
    common: set[int] | None = None
    depth: dict[int, int] = {}
    ids = sorted(unit_ids)
    for start in range(0, len(ids), 5000):
        stmt = select(OrgUnitClosure.descendant_id, OrgUnitClosure.ancestor_id, OrgUnitClosure.depth).where(
            OrgUnitClosure.descendant_id.in_(ids[start : start + 5000])
        )
        above: dict[int, set[int]] = {}
        for descendant, ancestor, levels in (await session.execute(stmt)).all():
            above.setdefault(descendant, set()).add(ancestor)
            if descendant == ids[0]:
                depth[ancestor] = levels
        for ancestors in above.values():
            common = ancestors if common is None else common & ancestors
    if not common:
        return None
    return min(common, key=lambda a: depth.get(a, 0))
