"""Every query of the aggregates: counts of people in subtrees, and the plans that apply to units.

The counts come from ``aggregate_counts``, the rolled-up counters kept in the same transaction as every
change they depend on (``counters.py``): for the units in ``roots`` (the unit itself for progress and
trend, its direct children for a breakdown) it is one indexed read, whatever the size of the subtree.
Metrics then sum the cells they select (``metrics.total``), so their percentages are ratios of sums by
construction.

:func:`naive_recount` is the independent check the tests and the benchmark compare against.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import metrics as _metrics
from app.aggregates.metrics import Cells, Count, Kind, Metric
from app.aggregates.models import AggregateCount
from app.core.dates import covers, year_end
from app.evaluations.models import DigitalLevel, Evaluation, RecognitionDecision, Status
from app.orgs import history
from app.orgs.models import OrgUnit, OrgUnitClosure, OrgUnitLink
from app.people.models import Group, Membership
from app.plans.models import Plan, Target
from app.trainings.models import Attendance, TrainingSession

_KINDS = {k.value: k for k in Kind}


class Child(NamedTuple):
    id: int
    name: str
    kind: str
    valid_from: date | None
    valid_to: date | None


async def children_on(session: AsyncSession, unit_id: int, day: date) -> list[Child]:
    """The unit's children as the tree stood on ``day``."""
    stmt = (
        select(OrgUnit.id, OrgUnit.name, OrgUnit.kind, OrgUnit.valid_from, OrgUnit.valid_to)
        .where(history.children_on(unit_id, day))
        .order_by(OrgUnit.name, OrgUnit.id)
    )
    return [Child(*r) for r in (await session.execute(stmt)).all()]


def _merge(into: Cells, cells: Cells) -> None:
    for key, n in cells.items():
        into[key] = into.get(key, 0) + n


@dataclass
class Tally:
    """The counted cells: ``people`` as changes per (root, year) (their running sum is the year's count,
    ``counters.py``), the other kinds per (root, year)."""

    people: dict[int, dict[int, Cells]] = field(default_factory=lambda: defaultdict(dict))
    by_year: dict[tuple[int, int], dict[Kind, Cells]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(dict))
    )

    def cells(self, root: int, year: int) -> dict[Kind, Cells]:
        people: Cells = {}
        for change_year, cells in self.people.get(root, {}).items():
            if change_year <= year:
                _merge(people, cells)
        return {Kind.PEOPLE: people, **self.by_year.get((root, year), {})}

    def combined(self, roots: Sequence[int], year: int) -> dict[Kind, Cells]:
        """The cells of several roots added up (a unit and its predecessors, for ``basis=lineage``)."""
        total: dict[Kind, Cells] = defaultdict(dict)
        for root in roots:
            for kind, cells in self.cells(root, year).items():
                _merge(total[kind], cells)
        return total


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
    wanted = sorted({k.value for k in kinds | {Kind.EVALUATED}} - {Kind.PEOPLE.value})
    cond = [and_(AggregateCount.kind.in_(wanted), AggregateCount.year.between(from_year, to_year))]
    if Kind.PEOPLE in kinds:
        cond.append(and_(AggregateCount.kind == Kind.PEOPLE.value, AggregateCount.year <= to_year))
    where = [AggregateCount.org_unit_id.in_(list(roots)), or_(*cond), AggregateCount.n != 0]
    if groups is not None:
        where.append(or_(AggregateCount.grp.in_(sorted(groups)), AggregateCount.kind == Kind.EVALUATED.value))
    # One year: the people changes are summed by the database (a breakdown of hundreds of children then
    # reads one row per cell instead of one per cell and year).
    year = (
        AggregateCount.year
        if from_year != to_year
        else case(
            (AggregateCount.kind == Kind.PEOPLE.value, literal(to_year, literal_execute=True)),
            else_=AggregateCount.year,
        )
    )
    keys = (AggregateCount.org_unit_id, year, AggregateCount.kind, AggregateCount.grp, AggregateCount.level)
    stmt = select(*keys, func.sum(AggregateCount.n)).where(*where).group_by(*keys)
    for unit_id, at, kind, group, level, n in (await session.execute(stmt)).all():
        if kind == Kind.PEOPLE.value:
            tally.people[unit_id].setdefault(at, {})[(group, None)] = int(n)
        else:
            tally.by_year[(unit_id, at)][_KINDS[kind]][(group, level or None)] = int(n)
    return tally


def _cells_of(count: Count, year: int) -> ColumnElement[bool]:
    """The counter rows a count sums for a year (people: every change up to the year)."""
    cond = [AggregateCount.kind == count.kind.value, AggregateCount.grp.in_(sorted(count.groups))]
    cond.append(AggregateCount.year <= year if count.kind == Kind.PEOPLE else AggregateCount.year == year)
    if count.digital_levels is not None:
        cond.append(AggregateCount.level.in_(sorted(count.digital_levels)))
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
    return {u: (int(n), int(d), int(e)) for u, n, d, e in (await session.execute(stmt)).all()}


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


async def applicable_plans(
    session: AsyncSession, units: Sequence[int], metric_codes: Sequence[str], from_year: int
) -> list[PlanRow]:
    """Every plan at or above each of ``units``, with its targets for ``metric_codes`` from
    ``from_year`` on: one query for any number of units."""
    stmt = (
        select(
            OrgUnitClosure.descendant_id,
            OrgUnitClosure.depth,
            Plan.id,
            Plan.start_year,
            Plan.end_year,
            Target.metric,
            Target.year,
            Target.value,
        )
        .select_from(OrgUnitClosure)
        .join(Plan, Plan.org_unit_id == OrgUnitClosure.ancestor_id)
        .outerjoin(
            Target,
            and_(
                Target.plan_id == Plan.id,
                Target.metric.in_(list(metric_codes)),
                Target.year >= from_year,
            ),
        )
        .where(OrgUnitClosure.descendant_id.in_(list(units)))
    )
    return [PlanRow(*row) for row in (await session.execute(stmt)).all()]


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
    return [PlanRow(*row) for row in (await session.execute(stmt)).all()]


def _subtree_on(unit_id: int, day: date) -> Any:
    """The subtree as it stood on ``day``, walked through the parent links of that day (a recursive CTE
    over the depth-1 rows, not the closure's other rows)."""
    link = OrgUnitLink
    tree = select(literal(unit_id).label("id")).cte("naive_subtree", recursive=True)
    return tree.union_all(
        select(link.descendant_id)
        .join(tree, link.ancestor_id == tree.c.id)
        .where(link.depth == 1, history.link_on(day))
    )


async def naive_recount(session: AsyncSession, unit_id: int, year: int) -> dict[str, tuple[int, int]]:
    """(numerator, denominator) of each metric, by :func:`naive_counts`."""
    return (await naive_counts(session, unit_id, year))[0]


async def naive_counts(
    session: AsyncSession, unit_id: int, year: int
) -> tuple[dict[str, tuple[int, int]], int]:
    """(numerator, denominator) of each metric of API.md plus ``trained_pct``, and the number of people
    with an evaluation of the year, straight from the definition: the unit's reference day, its subtree
    that day through the parent links, the memberships that day, and each person's evaluation,
    recognition and training of the year, with each metric written out by hand — independent of the
    counters, the closure and the metric registry."""
    # Read the columns afresh: the caller's session may hold the unit as it was before a change.
    lifetime = select(OrgUnit.valid_from, OrgUnit.valid_to).where(OrgUnit.id == unit_id)
    valid_from, valid_to = (await session.execute(lifetime)).one()
    day = year_end(year) if valid_to is None else min(year_end(year), valid_to)
    zero = {m.code: (0, 0) for m in _metrics.METRICS}
    if (valid_from is not None and valid_from > day) or (valid_to is not None and valid_to.year < year):
        return zero, 0
    tree = _subtree_on(unit_id, day)
    recognised = and_(Evaluation.status == Status.RECOGNISED.value, RecognitionDecision.status == "active")
    levels = (DigitalLevel.BASIC.value, DigitalLevel.PROFICIENT.value)
    trained = exists().where(
        Attendance.person_id == Membership.person_id,
        Attendance.session_id == TrainingSession.id,
        TrainingSession.year == year,
    )
    stmt = (
        select(
            Membership.group,
            func.count(Membership.person_id),
            func.sum(case((recognised, 1), else_=0)),
            func.sum(case((and_(recognised, Evaluation.digital_level.in_(levels)), 1), else_=0)),
            func.sum(case((and_(recognised, Evaluation.digital_level == levels[1]), 1), else_=0)),
            func.sum(case((trained, 1), else_=0)),
            func.sum(case((Evaluation.id.is_not(None), 1), else_=0)),
        )
        .select_from(Membership)
        .outerjoin(Evaluation, and_(Evaluation.person_id == Membership.person_id, Evaluation.year == year))
        .outerjoin(RecognitionDecision, RecognitionDecision.id == Evaluation.decision_id)
        .where(
            Membership.org_unit_id.in_(select(tree.c.id)),
            covers(Membership.valid_from, Membership.valid_to, day),
        )
        .group_by(Membership.group)
    )
    rows = {g: [int(v or 0) for v in rest] for g, *rest in (await session.execute(stmt)).all()}
    nothing = [0, 0, 0, 0, 0, 0]

    def col(groups: Sequence[str], i: int) -> int:
        return sum(rows.get(g, nothing)[i] for g in groups)

    everyone = [g.value for g in Group]
    return {
        "adults_recognised_pct": (col(["resident"], 1), col(["resident"], 0)),
        "staff_recognised_pct": (col(["staff", "worker"], 1), col(["staff", "worker"], 0)),
        "students_recognised_pct": (col(["student"], 1), col(["student"], 0)),
        "digital_skills_pct": (col(everyone, 2), col(everyone, 1)),
        "digital_proficient_pct": (col(everyone, 3), col(everyone, 1)),
        "trained_pct": (col(everyone, 4), col(everyone, 0)),
    }, col(everyone, 5)
