"""Every query and write of the tree through time: unit lifetimes, the dated closure
(``org_unit_links``), successions, and the dated moves and endings that reorganisations are made of.

Rules kept here:
- a dated move or ending only goes forward: it may not be dated before the unit's own last change (its
  creation or its last move), so each pair's periods follow one another (the caller checks
  :func:`last_change` first);
- nothing alive ever sits under an ended unit in ``org_unit_closure`` (an ended unit is re-hung under its
  successor), so the scope of whoever holds the successor covers the history they inherited.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from functools import lru_cache

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import affected, counters
from app.core.dates import ONE_DAY, covers, later_of
from app.evaluations.models import UNIT_SUBJECT_KINDS
from app.orgs import repository as repo
from app.orgs.models import FormerName, OrgUnit, OrgUnitLink, Succession

# The dated conditions below are pure functions of the day, built for every list of units: built once per
# day instead (today's, and the few past days a user asks ``as_of``); SQL constructs are immutable.
DAYS_REMEMBERED = 64


@lru_cache(maxsize=DAYS_REMEMBERED)
def name_on(day: date) -> ColumnElement[str]:
    """``OrgUnit``'s name on ``day``: the former name whose period still covered it (the earliest to end),
    else today's (``past.as_of`` reads the same rule for a page of units)."""
    former = (
        select(FormerName.name)
        .where(FormerName.org_unit_id == OrgUnit.id, FormerName.valid_to >= day)
        .order_by(FormerName.valid_to)
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(former, OrgUnit.name)


# A day, or a day bound at execution (a statement built once: ``bindparam("day", type_=Date())``).
Day = date | ColumnElement[date]
UnitId = int | ColumnElement[int]


@lru_cache(maxsize=DAYS_REMEMBERED)
def alive_on(day: Day) -> ColumnElement[bool]:
    return covers(OrgUnit.valid_from, OrgUnit.valid_to, day)


@lru_cache(maxsize=DAYS_REMEMBERED)
def link_on(day: Day) -> ColumnElement[bool]:
    return covers(OrgUnitLink.valid_from, OrgUnitLink.valid_to, day)


async def link_new_unit(session: AsyncSession, unit: OrgUnit) -> None:
    """Closure rows of a new unit, today's and dated (from ``unit.valid_from``, or from when each
    ancestor link of its parent began, whichever is later)."""
    await repo.link_new_unit(session, unit)
    own = select(
        literal(unit.id), literal(unit.id), literal(0), literal(unit.valid_from, OrgUnit.valid_from.type)
    )
    rows: Select[int, int, int, date] | CompoundSelect[int, int, int, date] = own
    if unit.parent_id is not None:
        since = literal(unit.valid_from, OrgUnit.valid_from.type)
        rows = own.union_all(
            select(
                OrgUnitLink.ancestor_id,
                literal(unit.id),
                OrgUnitLink.depth + 1,
                later_of(since, OrgUnitLink.valid_from),
            ).where(OrgUnitLink.descendant_id == unit.parent_id, OrgUnitLink.valid_to.is_(None))
        )
    await session.execute(
        insert(OrgUnitLink).from_select(["ancestor_id", "descendant_id", "depth", "valid_from"], rows)
    )
    if unit.kind in UNIT_SUBJECT_KINDS:  # a village, school, agency or enterprise counts as such
        await counters.units_counted(session, [unit.id], +1)


async def last_change(session: AsyncSession, unit_id: int) -> date | None:
    """The day the unit took its present place (created or last moved), None if always there."""
    stmt = select(func.max(OrgUnitLink.valid_from)).where(
        OrgUnitLink.descendant_id == unit_id, OrgUnitLink.valid_to.is_(None)
    )
    return await session.scalar(stmt)


async def move(session: AsyncSession, unit: OrgUnit, new_parent: OrgUnit, on: date) -> None:
    """Re-hang ``unit``'s subtree under ``new_parent`` from ``on``: counters first (the subtree's counts
    leave the ancestors it no longer has and reach the new ones, from the year of ``on``), then the dated
    links (closed the day before, or dropped if they began on or after ``on``), then today's closure."""
    old = set(await repo.ancestor_ids(session, unit.id)) - {unit.id}
    new = set(await repo.ancestor_ids(session, new_parent.id))
    gone = select(OrgUnit.id).where(OrgUnit.id.in_(sorted(old - new)), OrgUnit.valid_to.is_(None))
    alive_gone = list((await session.scalars(gone)).all())
    # People who leave (or come under) a recognised community or learning unit are recounted whole.
    regrouped = await affected.people_leaving_recognised_units(session, unit.id, sorted(old ^ new), on.year)
    await counters.people_counted(session, regrouped, -1)
    await counters.subtree_moved(session, unit.id, alive_gone, sorted(new - old), on.year)
    # Every link above the subtree is renewed, those of the ancestors it keeps too: their depth changes
    # (a district abolished: its communes are one level nearer the province). A kept ancestor's two
    # periods meet at ``on``, so its counts do not change.
    left, joined = sorted(old), sorted(new)
    subtree = select(OrgUnitLink.descendant_id).where(
        OrgUnitLink.ancestor_id == unit.id, OrgUnitLink.valid_to.is_(None)
    )
    leaving = and_(
        OrgUnitLink.valid_to.is_(None),
        OrgUnitLink.ancestor_id.in_(left),
        OrgUnitLink.descendant_id.in_(subtree.scalar_subquery()),
    )
    if left:
        await session.execute(
            delete(OrgUnitLink)
            .where(leaving, OrgUnitLink.valid_from >= on)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(OrgUnitLink)
            .where(leaving)
            .values(valid_to=on - ONE_DAY)
            .execution_options(synchronize_session=False)
        )
    if joined:
        above = (
            select(OrgUnitLink.ancestor_id, OrgUnitLink.depth)
            .where(
                OrgUnitLink.descendant_id == new_parent.id,
                OrgUnitLink.valid_to.is_(None),
                OrgUnitLink.ancestor_id.in_(joined),
            )
            .subquery("above")
        )
        below = (
            select(OrgUnitLink.descendant_id, OrgUnitLink.depth, OrgUnitLink.valid_from)
            .where(OrgUnitLink.ancestor_id == unit.id, OrgUnitLink.valid_to.is_(None))
            .subquery("below")
        )
        since = literal(on, OrgUnit.valid_from.type)
        await session.execute(
            insert(OrgUnitLink).from_select(
                ["ancestor_id", "descendant_id", "depth", "valid_from"],
                select(
                    above.c.ancestor_id,
                    below.c.descendant_id,
                    above.c.depth + below.c.depth + 1,
                    later_of(since, below.c.valid_from),
                ).select_from(above.join(below, literal(True))),
            )
        )
    # Today's tree: re-linked as a whole (its depths follow).
    await repo.move_subtree(session, unit, new_parent)
    await counters.people_counted(session, regrouped, +1)


async def end(
    session: AsyncSession, unit: OrgUnit, successor: OrgUnit, on: date, reorganisation_id: int | None
) -> date:
    """``unit`` ends the day before ``on`` and ``successor`` takes over. The caller has moved its alive
    children and its people already. Its own counters are recounted, so its last year stands as it was
    on its last day; in today's tree it is re-hung under the successor. Answers its last day."""
    subject = unit.kind in UNIT_SUBJECT_KINDS
    if subject:
        await counters.units_counted(session, [unit.id], -1)
    last_day = unit.valid_to = on - ONE_DAY
    session.add(
        Succession(
            predecessor_id=unit.id,
            successor_id=successor.id,
            effective_on=on,
            reorganisation_id=reorganisation_id,
        )
    )
    await session.flush()
    if subject:
        await counters.units_counted(session, [unit.id], +1)
    await counters.recount_units(session, [unit.id])
    if unit.parent_id != successor.id:
        await repo.move_subtree(session, unit, successor)
    return last_day


async def alive_children(session: AsyncSession, unit_id: int) -> list[OrgUnit]:
    stmt = (
        select(OrgUnit).where(OrgUnit.parent_id == unit_id, OrgUnit.valid_to.is_(None)).order_by(OrgUnit.id)
    )
    return list((await session.scalars(stmt)).all())


@lru_cache(maxsize=DAYS_REMEMBERED)
def depth_on(day: Day) -> ColumnElement[int]:
    """The level of ``OrgUnit`` on ``day`` (0 for a root), for sorting."""
    levels = select(func.coalesce(func.max(OrgUnitLink.depth), 0)).where(
        OrgUnitLink.descendant_id == OrgUnit.id, link_on(day)
    )
    return levels.scalar_subquery()


def children_on(parent_id: UnitId, day: Day) -> ColumnElement[bool]:
    """``OrgUnit`` rows that were children of ``parent_id`` on ``day`` (and existed then)."""
    links = select(OrgUnitLink.descendant_id).where(
        OrgUnitLink.ancestor_id == parent_id, OrgUnitLink.depth == 1, link_on(day)
    )
    return and_(OrgUnit.id.in_(links.scalar_subquery()), alive_on(day))


def descendants_on(unit_id: UnitId, day: Day) -> ColumnElement[bool]:
    links = select(OrgUnitLink.descendant_id).where(
        OrgUnitLink.ancestor_id == unit_id, OrgUnitLink.depth > 0, link_on(day)
    )
    return and_(OrgUnit.id.in_(links.scalar_subquery()), alive_on(day))


async def successions(
    session: AsyncSession, unit_ids: Iterable[int]
) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """(predecessor ids, successor ids) of each unit."""
    ids = list(unit_ids)
    preds: dict[int, list[int]] = {u: [] for u in ids}
    succs: dict[int, list[int]] = {u: [] for u in ids}
    if not ids:
        return preds, succs
    stmt = (
        select(Succession.predecessor_id, Succession.successor_id)
        .where(or_(Succession.predecessor_id.in_(ids), Succession.successor_id.in_(ids)))
        .order_by(Succession.id)
    )
    for pred, succ in (await session.execute(stmt)).all():
        if succ in preds:
            preds[succ].append(pred)
        if pred in succs:
            succs[pred].append(succ)
    return preds, succs


async def lineage_links(
    session: AsyncSession, unit_ids: Sequence[int]
) -> list[tuple[int, int, date | None, date | None]]:
    """Dated (ancestor, descendant) pairs among ``unit_ids`` (to drop predecessors nested in another)."""
    if len(unit_ids) < 2:
        return []
    stmt = select(
        OrgUnitLink.ancestor_id, OrgUnitLink.descendant_id, OrgUnitLink.valid_from, OrgUnitLink.valid_to
    ).where(
        OrgUnitLink.ancestor_id.in_(list(unit_ids)),
        OrgUnitLink.descendant_id.in_(list(unit_ids)),
        OrgUnitLink.depth > 0,
    )
    return [(a, d, f, t) for a, d, f, t in (await session.execute(stmt)).all()]


async def predecessors_of(session: AsyncSession, unit_ids: Sequence[int]) -> dict[int, list[int]]:
    """The succession graph above ``unit_ids``: each unit's direct predecessors, recursively."""
    graph: dict[int, list[int]] = {}
    frontier = sorted(set(unit_ids))
    while frontier:
        stmt = select(Succession.successor_id, Succession.predecessor_id).where(
            Succession.successor_id.in_(frontier)
        )
        rows = (await session.execute(stmt)).all()
        for unit in frontier:
            graph.setdefault(unit, [])
        nxt = []
        for succ, pred in rows:
            graph[succ].append(pred)
            if pred not in graph:
                nxt.append(pred)
        frontier = sorted(set(nxt))
    return graph


async def renamed(session: AsyncSession, unit: OrgUnit, name: str, code: str | None, on: date) -> None:
    """The unit is called ``name`` (``code``) from ``on``; what it was called until then is kept. A second
    rename dated the same day (or earlier than the last one) replaces the name without a new period."""
    if (name, code) == (unit.name, unit.code):
        return
    last = await session.scalar(
        select(func.max(FormerName.valid_to)).where(FormerName.org_unit_id == unit.id)
    )
    if last is None or last < on - ONE_DAY:
        session.add(FormerName(org_unit_id=unit.id, name=unit.name, code=unit.code, valid_to=on - ONE_DAY))
    unit.name, unit.code = name, code
