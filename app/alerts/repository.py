"""Every query of the alerts: the units a request lists, the plans inside them, the counted numbers of
several metrics and years at once, and the alerts already raised (the review queue is
``aggregates.waiting``'s).

Lists of unit ids are bound in chunks (:data:`CHUNK`): a request may list tens of thousands of units
(``depth=3`` at the nation), more than PostgreSQL's driver binds in one statement, while a list of ids
lets PostgreSQL read each unit's rows by index.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates.metrics import Kind, Metric
from app.aggregates.models import AggregateCount
from app.aggregates.repository import PlanRow
from app.aggregates.repository import _cells_of as cells_of  # the dashboards' cells, not a copy
from app.alerts.models import RaisedAlert
from app.orgs import history
from app.orgs.models import OrgUnit, OrgUnitLink
from app.plans.models import Plan, Target

CHUNK = 5_000


def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


class Listed(NamedTuple):
    """A unit an alert request covers, as the tree stood on the day: ``level`` below the requested unit
    (0 for itself) and its parent then (None for the requested unit)."""

    id: int
    name: str
    kind: str
    valid_from: date | None
    valid_to: date | None
    level: int
    parent_id: int | None


def _descendants(root_id: int, day: date, depth: int) -> Any:
    """The links from ``root_id`` to its descendants down to ``depth`` levels on ``day``."""
    return select(OrgUnitLink.descendant_id, OrgUnitLink.depth).where(
        OrgUnitLink.ancestor_id == root_id,
        OrgUnitLink.depth.between(1, depth),
        history.link_on(day),
    )


async def units_below(session: AsyncSession, root_id: int, day: date, depth: int) -> list[Listed]:
    """The descendants of ``root_id`` down to ``depth`` levels as the tree stood on ``day`` (alive that
    day), each with its parent that day; by level, then name. Three small reads instead of one join:
    PostgreSQL misjudges how many links a unit has at one depth (24,793 for the nation's 34 provinces)
    and hashes whole tables for a join it would do with a few index probes."""
    levels = dict((await session.execute(_descendants(root_id, day, depth))).all())
    if not levels:
        return []
    parents = dict.fromkeys(levels, root_id)
    deeper = [unit_id for unit_id, level in levels.items() if level > 1]
    for ids in chunks(deeper):
        stmt = select(OrgUnitLink.descendant_id, OrgUnitLink.ancestor_id).where(
            OrgUnitLink.descendant_id.in_(ids), OrgUnitLink.depth == 1, history.link_on(day)
        )
        parents.update(dict((await session.execute(stmt)).all()))
    found: list[Listed] = []
    for ids in chunks(sorted(levels)):
        alive = select(OrgUnit.id, OrgUnit.name, OrgUnit.kind, OrgUnit.valid_from, OrgUnit.valid_to).where(
            OrgUnit.id.in_(ids), history.alive_on(day)
        )
        found += [
            Listed(*row, levels[row[0]], parents[row[0]]) for row in (await session.execute(alive)).all()
        ]
    return sorted(found, key=lambda u: (u.level, u.name, u.id))


async def plans_below(
    session: AsyncSession, root_id: int, day: date, depth: int, metric_codes: Sequence[str]
) -> list[PlanRow]:
    """The plans of the listed descendants of ``root_id`` with all their targets for ``metric_codes``
    (depth 0: to their own unit). Plans are few, so one subquery beats naming thousands of units."""
    units = _descendants(root_id, day, depth).with_only_columns(OrgUnitLink.descendant_id)
    stmt = (
        select(
            Plan.org_unit_id,
            literal(0),
            Plan.id,
            Plan.start_year,
            Plan.end_year,
            Target.metric,
            Target.year,
            Target.value,
        )
        .outerjoin(Target, and_(Target.plan_id == Plan.id, Target.metric.in_(list(metric_codes))))
        .where(Plan.org_unit_id.in_(units.scalar_subquery()))
    )
    return [PlanRow(*row) for row in (await session.execute(stmt)).all()]


async def evaluated(
    session: AsyncSession, unit_ids: Sequence[int], years: Iterable[int]
) -> dict[int, dict[int, int]]:
    """People (and collectives) evaluated per unit and year: a year without any has no data, so the
    metrics' counters need not be read for it (one light read of the ``evaluated`` cells first)."""
    found: dict[int, dict[int, int]] = defaultdict(dict)
    years = sorted(set(years))
    for ids in chunks(unit_ids):
        stmt = (
            select(AggregateCount.org_unit_id, AggregateCount.year, func.sum(AggregateCount.n))
            .where(
                AggregateCount.org_unit_id.in_(ids),
                AggregateCount.year.in_(years),
                AggregateCount.kind == Kind.EVALUATED.value,
            )
            .group_by(AggregateCount.org_unit_id, AggregateCount.year)
        )
        for unit_id, year, n in (await session.execute(stmt)).all():
            found[unit_id][year] = int(n)
    return found


async def metric_totals(
    session: AsyncSession, unit_ids: Sequence[int], asked: Iterable[tuple[Metric, int]]
) -> dict[int, dict[tuple[str, int], tuple[int, int]]]:
    """The numerator and denominator of every asked (metric, year) for each unit, summed by the database
    as ``aggregates.repository.metric_totals`` sums one metric: one row per unit whatever the number of
    metrics and years; a count that several metrics share (the recognised) is summed once."""
    pairs = sorted(set(asked), key=lambda p: (p[0].code, p[1]))
    found: dict[int, dict[tuple[str, int], tuple[int, int]]] = {}
    if not unit_ids or not pairs:
        return found
    counts = sorted({(c, y) for m, y in pairs for c in (m.count_numerator, m.count_denominator)}, key=repr)
    column = {key: i for i, key in enumerate(counts)}
    conditions = [cells_of(c, y) for c, y in counts]
    columns = [func.coalesce(func.sum(case((cond, AggregateCount.n), else_=0)), 0) for cond in conditions]
    for ids in chunks(unit_ids):
        stmt = (
            select(AggregateCount.org_unit_id, *columns)
            .where(AggregateCount.org_unit_id.in_(ids), or_(*conditions), AggregateCount.n != 0)
            .group_by(AggregateCount.org_unit_id)
        )
        for unit_id, *values in (await session.execute(stmt)).all():
            found[unit_id] = {
                (m.code, y): (
                    int(values[column[(m.count_numerator, y)]]),
                    int(values[column[(m.count_denominator, y)]]),
                )
                for m, y in pairs
            }
    return found


async def raised(session: AsyncSession, year: int) -> list[RaisedAlert]:
    """The alerts announced for ``year``, and those of any year not yet cleared."""
    stmt = select(RaisedAlert).where(or_(RaisedAlert.year == year, RaisedAlert.cleared_at.is_(None)))
    return list((await session.scalars(stmt)).all())


def group_rows(rows: Iterable[PlanRow]) -> dict[int, list[PlanRow]]:
    by_unit: dict[int, list[PlanRow]] = defaultdict(list)
    for row in rows:
        by_unit[row.unit_id].append(row)
    return by_unit
