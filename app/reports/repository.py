"""Every query of the reports and exports: the evaluation funnel per unit and group, and the rows of the
CSV exports (read in keyset batches)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Row, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.scope import subtree_ids
from app.core.dates import covers, dec31
from app.criteria.models import Indicator
from app.decisions.models import DecisionItem, RecognitionDecision
from app.evaluations.models import Evaluation, Evidence, Score
from app.orgs.models import OrgUnit, OrgUnitLink
from app.people.models import Membership, Person

# (root unit, group, status, passed) → number of people
FunnelCells = dict[tuple[int, str, str, bool | None], int]


async def funnel(session: AsyncSession, days: dict[int, date], year: int) -> FunnelCells:
    """People who belonged to each root's subtree on its reference day (``days``) and have an evaluation
    for ``year``, counted by the group they had that day, status and pass: one grouped query over the
    dated closure per distinct day (like the counters)."""
    found: FunnelCells = {}
    by_day: dict[date, list[int]] = {}
    for root, day in days.items():
        by_day.setdefault(day, []).append(root)
    for day, roots in sorted(by_day.items()):
        ancestor = OrgUnitLink.ancestor_id  # not ``root``: the loop above has an int of that name
        stmt = (
            select(ancestor, Membership.group, Evaluation.status, Evaluation.passed, func.count())
            .select_from(OrgUnitLink)
            .join(Membership, Membership.org_unit_id == OrgUnitLink.descendant_id)
            .join(Evaluation, and_(Evaluation.person_id == Membership.person_id, Evaluation.year == year))
            .where(
                ancestor.in_(sorted(roots)),
                covers(OrgUnitLink.valid_from, OrgUnitLink.valid_to, day),
                covers(Membership.valid_from, Membership.valid_to, day),
            )
            .group_by(ancestor, Membership.group, Evaluation.status, Evaluation.passed)
        )
        found.update({(r, g, s, p): n for r, g, s, p, n in (await session.execute(stmt)).all()})
    return found


async def unit_rows(session: AsyncSession, unit_ids: Sequence[int]) -> dict[int, OrgUnit]:
    found = await session.scalars(select(OrgUnit).where(OrgUnit.id.in_(list(unit_ids))))
    return {u.id: u for u in found.all()}


def _group_in_year() -> Any:
    """The group the evaluated person had on 31 December of the evaluation's year (their group then, not
    today's: a later transfer does not rewrite a past year's exports)."""
    then = (
        select(Membership.group)
        .where(
            Membership.person_id == Evaluation.person_id,
            covers(Membership.valid_from, Membership.valid_to, dec31(Evaluation.year)),
        )
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(then, Person.group)


def _evaluation_columns() -> tuple[Any, ...]:
    return (
        Evaluation.id,
        Evaluation.person_id,
        Person.citizen_id,
        Person.full_name,
        OrgUnit.code,
        _group_in_year(),
        Evaluation.year,
        Evaluation.status,
        Evaluation.total_halves,
        Evaluation.passed,
        Evaluation.digital_level,
        RecognitionDecision.number,
    )


async def evaluations_batch(
    session: AsyncSession, unit_id: int, year: int, after_id: int, limit: int
) -> Sequence[Row[Any]]:
    """The next ``limit`` evaluations of the subtree and year with an id above ``after_id``."""
    stmt = (
        select(*_evaluation_columns())
        .join(Person, Person.id == Evaluation.person_id)
        .join(OrgUnit, OrgUnit.id == Evaluation.org_unit_id)
        .outerjoin(RecognitionDecision, RecognitionDecision.id == Evaluation.decision_id)
        .where(
            Evaluation.org_unit_id.in_(subtree_ids([unit_id])),
            Evaluation.year == year,
            Evaluation.id > after_id,
        )
        .order_by(Evaluation.id)
        .limit(limit)
    )
    return (await session.execute(stmt)).all()


async def scores_of(
    session: AsyncSession, evaluation_ids: Sequence[int]
) -> tuple[list[tuple[int, int, int, int | None, int | None]], set[tuple[int, int]]]:
    """(evaluation, indicator id, indicator number, self, review) for the batch, and the (evaluation,
    indicator) pairs with evidence that was not rejected."""
    scores = (
        select(
            Score.evaluation_id, Score.indicator_id, Indicator.number, Score.self_halves, Score.review_halves
        )
        .join(Indicator, Indicator.id == Score.indicator_id)
        .where(Score.evaluation_id.in_(list(evaluation_ids)))
    )
    evidence = (
        select(Evidence.evaluation_id, Evidence.indicator_id)
        .where(Evidence.evaluation_id.in_(list(evaluation_ids)), Evidence.rejected.is_(False))
        .distinct()
    )
    rows = [(e, i, n, s, r) for e, i, n, s, r in (await session.execute(scores)).all()]
    return rows, {(e, i) for e, i in (await session.execute(evidence)).all()}


async def decision_people(session: AsyncSession, decision_id: int) -> Sequence[Row[Any]]:
    """Everyone a decision listed, with their evaluation and unit, by name."""
    stmt = (
        select(
            Evaluation.id,
            Evaluation.person_id,
            Person.citizen_id,
            Person.full_name,
            Person.birth_year,
            Person.gender,
            OrgUnit.code,
            _group_in_year(),
            Evaluation.year,
            Evaluation.total_halves,
            Evaluation.digital_level,
            Evaluation.status,
        )
        .select_from(DecisionItem)
        .join(Evaluation, Evaluation.id == DecisionItem.evaluation_id)
        .join(Person, Person.id == Evaluation.person_id)
        .join(OrgUnit, OrgUnit.id == Evaluation.org_unit_id)
        .where(DecisionItem.decision_id == decision_id)
        .order_by(Person.full_name, Person.id)
    )
    return (await session.execute(stmt)).all()
