"""Every query of the aggregates: counts of people in subtrees, and the plans that apply to units.

The counts come from ``aggregate_counts``, the rolled-up counters kept in the same transaction as every
change they depend on (``counters.py``): for the units in ``roots`` (the unit itself for progress and
trend, its direct children for a breakdown) it is one indexed read, whatever the size of the subtree.
Metrics then sum the cells they select (``metrics.total``), so their percentages are ratios of sums by
construction.

:func:`naive.naive_recount` is the independent check the tests and the benchmark compare against.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import epochs
from app.aggregates import metrics as _metrics
from app.aggregates.metrics import Cells, Count, Kind, Metric
from app.aggregates.models import AggregateCount, AggregateVersion
from app.auth.scope import ReadAlong
from app.core.db import rows_of
from app.core.slots import bound, one_of, one_of_fixed, width
from app.orgs import history
from app.orgs.models import OrgUnit, OrgUnitClosure, OrgUnitLink
from app.plans.models import Plan, Target

_KINDS = {k.value: k for k in Kind}


class Child(NamedTuple):
    id: int
    name: str
    kind: str
    valid_from: date | None
    valid_to: date | None


async def children_on(session: AsyncSession, unit_id: int, day: date) -> list[Child]:
    """The unit's children as the tree stood on ``day``, with the names they had then."""
    name = history.name_on(day).label("name")
    stmt = (
        select(OrgUnit.id, name, OrgUnit.kind, OrgUnit.valid_from, OrgUnit.valid_to)
        .where(history.children_on(unit_id, day))
        .order_by(name, OrgUnit.id)
    )
    return [Child(*r) for r in await rows_of(session, stmt)]


def _merge(into: Cells, cells: Cells) -> None:
    for key, n in cells.items():
        into[key] = into.get(key, 0) + n


@dataclass
class Tally:
    """The counted cells: the change kinds (people, collectives) as changes per (root, year) (their
    running sum is the year's count, ``counters.py``), the other kinds per (root, year)."""

    changes: dict[int, dict[int, dict[Kind, Cells]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    )
    by_year: dict[tuple[int, int], dict[Kind, Cells]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(dict))
    )

    def cells(self, root: int, year: int) -> dict[Kind, Cells]:
        summed: dict[Kind, Cells] = defaultdict(dict)
        for change_year, by_kind in self.changes.get(root, {}).items():
            if change_year <= year:
                for kind, cells in by_kind.items():
                    _merge(summed[kind], cells)
        return {**summed, **self.by_year.get((root, year), {})}

    def combined(self, roots: Sequence[int], year: int) -> dict[Kind, Cells]:
        """The cells of several roots added up (a unit and its predecessors, for ``basis=lineage``)."""
        total: dict[Kind, Cells] = defaultdict(dict)
        for root in roots:
            for kind, cells in self.cells(root, year).items():
                _merge(total[kind], cells)
        return total


_CHANGES = sorted(k.value for k in _metrics.CHANGE_KINDS)
_IS_CHANGE = frozenset(_CHANGES)
_COUNTS = AggregateCount.__table__.c


@functools.lru_cache(maxsize=128)
def _count_statement(
    one_year: bool, per_year: tuple[str, ...], changes: tuple[str, ...], roots: int, groups: int | None
) -> Select[Any]:
    """The read of :func:`count`, built once per shape and kinds (a dashboard asks the same kinds every
    time), with the other values as parameters: dashboards run it on every request, and building it cost
    more than running it. ``roots`` and ``groups`` (None: every group) are the widths of the slots those
    lists are bound in (``core/slots.py``). Core columns, not the ORM's: rows, not entities, come back."""
    c = _COUNTS
    in_years = c.year.between(bindparam("from_year"), bindparam("to_year"))
    cond = [and_(one_of_fixed(c.kind, per_year), in_years)]
    if changes:
        cond.append(and_(one_of_fixed(c.kind, changes), c.year <= bindparam("to_year")))
    where = [one_of(c.org_unit_id, "roots", roots), or_(*cond), c.n != 0]
    if groups is not None:
        where.append(or_(one_of(c.grp, "groups", groups), c.kind == Kind.EVALUATED.value))
    # One year: the changes are summed by the database (a breakdown of hundreds of children then reads
    # one row per cell instead of one per cell and year). The same CASE stands in the select list and the
    # GROUP BY with the same parameters, which PostgreSQL numbers once: one expression for the database.
    year = (
        c.year
        if not one_year
        else case((one_of_fixed(c.kind, _CHANGES), bindparam("year_of_changes", type_=Integer)), else_=c.year)
    )
    keys = (c.org_unit_id, year, c.kind, c.grp, c.level, c.born)
    return select(*keys, func.sum(c.n)).where(*where).group_by(*keys)


async def count(
    session: AsyncSession,
    roots: Sequence[int],
    from_year: int,
    to_year: int,
    kinds: frozenset[Kind],
    groups: frozenset[str] | None = None,
) -> Tally:
    """The cells of ``kinds`` (of ``groups`` only, when given) for each of ``roots``: one indexed read of
    the counters (``evaluated`` is always read: it decides whether a year has data)."""
    tally = Tally()
    if not roots:
        return tally
    asked = {k.value for k in kinds | {Kind.EVALUATED}}
    changes = tuple(sorted(asked & _IS_CHANGE))
    per_year = tuple(sorted(asked - _IS_CHANGE))
    params: dict[str, Any] = {
        **bound("roots", roots),
        "from_year": from_year,
        "to_year": to_year,
        "year_of_changes": to_year,
    }
    if groups is not None:
        params.update(bound("groups", sorted(groups)))
    group_slots = None if groups is None else width(len(groups))
    stmt = _count_statement(from_year == to_year, per_year, changes, width(len(roots)), group_slots)
    for unit_id, at, kind, group, level, born, n in await rows_of(session, stmt, params):
        cell = (group, level or None, born)  # the cells store '' for no digital level
        if kind in _IS_CHANGE:
            by_kind = tally.changes[unit_id][at][_KINDS[kind]]
            by_kind[cell] = by_kind.get(cell, 0) + int(n)
        else:
            tally.by_year[(unit_id, at)][_KINDS[kind]][cell] = int(n)
    return tally


def _cells_of(count: Count, year: int) -> ColumnElement[bool]:
    """The counter rows a count sums for a year (change kinds: every change up to the year)."""
    cond = [AggregateCount.kind == count.kind.value]
    if count.groups is not None:
        cond.append(AggregateCount.grp.in_(sorted(count.groups)))
    cond.append(
        AggregateCount.year <= year if count.kind in _metrics.CHANGE_KINDS else AggregateCount.year == year
    )
    if count.levels is not None:
        cond.append(AggregateCount.level.in_(sorted(count.levels)))
    if count.adult_age is not None:
        cond.append(or_(AggregateCount.born == 0, AggregateCount.born <= year - count.adult_age))
    return and_(*cond)


async def metric_totals(
    session: AsyncSession, roots: Sequence[int], year: int, metric: Metric
) -> dict[int, tuple[int, int, int]]:
    """(numerator, denominator, people evaluated) of one metric for each of ``roots`` in one year, summed
    by the database: one row per root (a breakdown of hundreds of children)."""
    if not roots:
        return {}
    numerator = _cells_of(metric.count_numerator, year)
    denominator = _cells_of(metric.count_denominator, year)
    evaluated = and_(AggregateCount.kind == Kind.EVALUATED.value, AggregateCount.year == year)

    def total(cond: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((cond, AggregateCount.n), else_=0)), 0)

    stmt = (
        select(AggregateCount.org_unit_id, total(numerator), total(denominator), total(evaluated))
        .where(AggregateCount.org_unit_id.in_(list(roots)), or_(numerator, denominator, evaluated))
        .group_by(AggregateCount.org_unit_id)
    )
    return {u: (int(n), int(d), int(e)) for u, n, d, e in await rows_of(session, stmt)}


class PlanRow(NamedTuple):
    """A plan that applies to ``unit_id`` (its unit is ``depth`` levels above), with one of its targets
    (metric None when the plan sets none of those asked). A named tuple: cheaper to make by the thousand
    than a frozen dataclass."""

    unit_id: int
    depth: int
    plan_id: int
    start_year: int
    end_year: int
    metric: str | None
    year: int | None
    value: Any


@functools.lru_cache(maxsize=128)
def _plans_above(metric_codes: tuple[str, ...], units: int) -> Select[Any]:
    """:func:`applicable_plans`' read, built once per list of metrics (progress asks all of them, a
    breakdown or a trend one) and width of the units' slots (``core/slots.py``), the units and the year
    bound."""
    closure, plans, targets = OrgUnitClosure.__table__.c, Plan.__table__.c, Target.__table__.c
    return (
        select(
            closure.descendant_id,
            closure.depth,
            plans.id,
            plans.start_year,
            plans.end_year,
            targets.metric,
            targets.year,
            targets.value,
        )
        .select_from(OrgUnitClosure.__table__)
        .join(Plan.__table__, plans.org_unit_id == closure.ancestor_id)
        .outerjoin(
            Target.__table__,
            and_(
                targets.plan_id == plans.id,
                one_of_fixed(targets.metric, metric_codes),
                targets.year >= bindparam("from_year"),
            ),
        )
        .where(one_of(closure.descendant_id, "units", units))
    )


async def applicable_plans(
    session: AsyncSession, units: Sequence[int], metric_codes: Sequence[str], from_year: int
) -> list[PlanRow]:
    """Every plan at or above each of ``units``, with its targets for ``metric_codes`` from
    ``from_year`` on: one query for any number of units."""
    stmt = _plans_above(tuple(metric_codes), width(len(units)))
    params = {**bound("units", units), "from_year": from_year}
    return [PlanRow(*row) for row in await rows_of(session, stmt, params)]


def _own_plans(metric_codes: Sequence[str], from_year: int) -> Any:
    """Plans (depth 0 to their own unit) with their targets for ``metric_codes`` from ``from_year`` on."""
    return select(
        Plan.org_unit_id,
        literal(0),
        Plan.id,
        Plan.start_year,
        Plan.end_year,
        Target.metric,
        Target.year,
        Target.value,
    ).outerjoin(
        Target,
        and_(Target.plan_id == Plan.id, Target.metric.in_(list(metric_codes)), Target.year >= from_year),
    )


async def plans_below(
    session: AsyncSession, unit_id: int, metric_codes: Sequence[str], from_year: int
) -> list[PlanRow]:
    """The plans of every unit that was ever a child of ``unit_id`` (a breakdown keeps those of its
    children): plans are few, so this beats naming hundreds of children."""
    children = select(OrgUnitLink.descendant_id).where(
        OrgUnitLink.ancestor_id == unit_id, OrgUnitLink.depth == 1
    )
    stmt = _own_plans(metric_codes, from_year).where(Plan.org_unit_id.in_(children.scalar_subquery()))
    return [PlanRow(*row) for row in await rows_of(session, stmt)]


@functools.cache
def _change_counters(records: bool, lineage: bool) -> ReadAlong:
    which = (
        AggregateVersion.org_unit_id.in_(select(OrgUnit.id).where(OrgUnit.parent_id.is_(None)))
        if lineage
        else AggregateVersion.org_unit_id == bindparam("etag_unit")
    )
    counted = select(func.coalesce(func.sum(AggregateVersion.version), 0)).where(which).scalar_subquery()
    current = epochs.current()
    columns = [counted, current[epochs.REFERENCE]]
    if records:
        columns.append(current[epochs.RECORDS])
    return ReadAlong(f"change_counters:{records:d}{lineage:d}", tuple(columns))


def change_counters(unit_id: int, *, records: bool, lineage: bool) -> ReadAlong:
    """What a dashboard's ETag reads (``freshness.py``), as scalar subqueries to read with the unit: the
    unit's counter versions over every year (with ``lineage``, the tree's roots'), the ``reference`` epoch
    and, with ``records``, the ``records`` epoch. Built once per shape; the unit is bound."""
    built = _change_counters(records, lineage)
    return ReadAlong(built.key, built.columns, {} if lineage else {"etag_unit": unit_id})
