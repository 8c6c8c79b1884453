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
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, case, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates.metrics import Cells, Kind
from app.aggregates.models import AggregateCount
from app.evaluations.models import DigitalLevel, Evaluation, RecognitionDecision, Status
from app.orgs.models import OrgUnit, OrgUnitClosure
from app.people.models import Group, Person
from app.plans.models import Plan, Target
from app.trainings.models import Attendance, TrainingSession

Roots = Sequence[int] | Select[tuple[int]]
_KINDS = {k.value: k for k in Kind}


async def children(session: AsyncSession, unit_id: int) -> list[tuple[int, str, str]]:
    stmt = (
        select(OrgUnit.id, OrgUnit.name, OrgUnit.kind)
        .where(OrgUnit.parent_id == unit_id)
        .order_by(OrgUnit.name, OrgUnit.id)
    )
    return [(r[0], r[1], r[2]) for r in (await session.execute(stmt)).all()]


@dataclass
class Tally:
    """The counted cells: people per root (they do not depend on the year), the rest per (root, year)."""

    people: dict[int, Cells] = field(default_factory=lambda: defaultdict(dict))
    by_year: dict[tuple[int, int], dict[Kind, Cells]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(dict))
    )

    def cells(self, root: int, year: int) -> dict[Kind, Cells]:
        return {Kind.PEOPLE: self.people.get(root, {}), **self.by_year.get((root, year), {})}


async def count(
    session: AsyncSession,
    roots: Roots,
    from_year: int,
    to_year: int,
    kinds: frozenset[Kind],
    groups: frozenset[str] | None = None,
) -> Tally:
    """The cells of ``kinds`` (of ``groups`` only, when given) for each of ``roots``: one indexed read of
    the rolled-up counters."""
    tally = Tally()
    wanted = [k.value for k in kinds if k != Kind.PEOPLE]
    cond = [and_(AggregateCount.kind.in_(wanted), AggregateCount.year.between(from_year, to_year))]
    if Kind.PEOPLE in kinds:
        cond.append(and_(AggregateCount.kind == Kind.PEOPLE.value, AggregateCount.year == 0))
    stmt = select(
        AggregateCount.org_unit_id,
        AggregateCount.year,
        AggregateCount.kind,
        AggregateCount.grp,
        AggregateCount.level,
        AggregateCount.n,
    ).where(AggregateCount.org_unit_id.in_(roots), or_(*cond), AggregateCount.n != 0)
    if groups is not None:
        stmt = stmt.where(AggregateCount.grp.in_(sorted(groups)))
    for unit_id, year, kind, group, level, n in (await session.execute(stmt)).all():
        if kind == Kind.PEOPLE.value:
            tally.people[unit_id][(group, None)] = n
        else:
            cell = (group, level or None)
            tally.by_year[(unit_id, year)][_KINDS[kind]][cell] = n
    return tally


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
    session: AsyncSession, units: Roots, metric_codes: Sequence[str], from_year: int
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
        .where(OrgUnitClosure.descendant_id.in_(units))
    )
    return [PlanRow(*row) for row in (await session.execute(stmt)).all()]


async def plans_at(
    session: AsyncSession, units: Sequence[int], metric_codes: Sequence[str], from_year: int
) -> list[PlanRow]:
    """The plans of ``units`` themselves (depth 0), with their targets as in :func:`applicable_plans`."""
    if not units:
        return []
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
        .outerjoin(
            Target,
            and_(
                Target.plan_id == Plan.id,
                Target.metric.in_(list(metric_codes)),
                Target.year >= from_year,
            ),
        )
        .where(Plan.org_unit_id.in_(list(units)))
    )
    return [PlanRow(*row) for row in (await session.execute(stmt)).all()]


def _subtree_by_parent_links(unit_id: int) -> Any:
    """The subtree by walking ``org_units.parent_id`` (a recursive CTE, not the closure table)."""
    tree = select(OrgUnit.id).where(OrgUnit.id == unit_id).cte("naive_subtree", recursive=True)
    return tree.union_all(select(OrgUnit.id).join(tree, OrgUnit.parent_id == tree.c.id))


async def naive_recount(session: AsyncSession, unit_id: int, year: int) -> dict[str, tuple[int, int]]:
    """(numerator, denominator) of each metric of API.md plus ``trained_pct``, by a plain GROUP BY over
    people left-joined to their evaluation of the year, with the subtree found through the parent links
    and each metric written out by hand: independent of the closure table and of the metric registry."""
    tree = _subtree_by_parent_links(unit_id)
    recognised = and_(Evaluation.status == Status.RECOGNISED.value, RecognitionDecision.status == "active")
    levels = (DigitalLevel.BASIC.value, DigitalLevel.PROFICIENT.value)
    trained = exists().where(
        Attendance.person_id == Person.id,
        Attendance.session_id == TrainingSession.id,
        TrainingSession.year == year,
    )
    stmt = (
        select(
            Person.group,
            func.count(Person.id),
            func.sum(case((recognised, 1), else_=0)),
            func.sum(case((and_(recognised, Evaluation.digital_level.in_(levels)), 1), else_=0)),
            func.sum(case((and_(recognised, Evaluation.digital_level == levels[1]), 1), else_=0)),
            func.sum(case((trained, 1), else_=0)),
        )
        .select_from(Person)
        .outerjoin(Evaluation, and_(Evaluation.person_id == Person.id, Evaluation.year == year))
        .outerjoin(RecognitionDecision, RecognitionDecision.id == Evaluation.decision_id)
        .where(Person.org_unit_id.in_(select(tree.c.id)))
        .group_by(Person.group)
    )
    rows = {g: [int(v or 0) for v in rest] for g, *rest in (await session.execute(stmt)).all()}
    zero = [0, 0, 0, 0, 0]

    def col(groups: Sequence[str], i: int) -> int:
        return sum(rows.get(g, zero)[i] for g in groups)

    everyone = [g.value for g in Group]
    return {
        "adults_recognised_pct": (col(["resident"], 1), col(["resident"], 0)),
        "staff_recognised_pct": (col(["staff", "worker"], 1), col(["staff", "worker"], 0)),
        "students_recognised_pct": (col(["student"], 1), col(["student"], 0)),
        "digital_skills_pct": (col(everyone, 2), col(everyone, 1)),
        "digital_proficient_pct": (col(everyone, 3), col(everyone, 1)),
        "trained_pct": (col(everyone, 4), col(everyone, 0)),
    }
