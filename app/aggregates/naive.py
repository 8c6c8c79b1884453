"""The naive recount: every metric of a unit and year straight from the definition, written out by hand
in Python over a few plain queries — independent of the counters, the closure and the metric registry. It
is the check the tests and the benchmark compare the served numbers against (slow: never on a request)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import and_, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import metrics as _metrics
from app.collectives.models import ClanHousehold, Collective, CollectivePlace, HouseholdMember
from app.core.dates import covers, year_end
from app.decisions.models import RecognitionDecision
from app.evaluations.models import Evaluation, Status
from app.orgs import history
from app.orgs.models import OrgUnit, OrgUnitLink
from app.people.models import Group, Membership, Person
from app.trainings.models import Attendance, TrainingSession


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
    session: AsyncSession, unit_id: int, year: int, adult_age: int = 15
) -> tuple[dict[str, tuple[int, int]], int]:
    """(numerator, denominator) of each metric of the registry, and the number of subjects with an
    evaluation of the year, straight from the definition: the unit's reference day, its subtree that day
    through the parent links, the memberships and placements that day, and each subject's evaluation,
    recognition and training of the year, each metric written out by hand in Python — independent of the
    counters, the closure and the metric registry (slow: for tests and benchmarks)."""
    # Read the columns afresh: the caller's session may hold the unit as it was before a change.
    lifetime = select(OrgUnit.valid_from, OrgUnit.valid_to).where(OrgUnit.id == unit_id)
    valid_from, valid_to = (await session.execute(lifetime)).one()
    day = year_end(year) if valid_to is None else min(year_end(year), valid_to)
    zero = {m.code: (0, 0) for m in _metrics.METRICS}
    if (valid_from is not None and valid_from > day) or (valid_to is not None and valid_to.year < year):
        return zero, 0
    units = await _naive_subtree(session, unit_id, day)
    people = {
        person_id: (group, born)
        for person_id, group, born in await session.execute(
            select(Membership.person_id, Membership.group, Person.birth_year)
            .join(Person, Person.id == Membership.person_id)
            .where(Membership.org_unit_id.in_(units), covers(Membership.valid_from, Membership.valid_to, day))
        )
    }
    active = and_(Evaluation.status == Status.RECOGNISED.value, RecognitionDecision.status == "active")
    recognised = dict(
        (
            await session.execute(
                select(Evaluation.person_id, Evaluation.digital_level)
                .join(RecognitionDecision, RecognitionDecision.id == Evaluation.decision_id)
                .where(active, Evaluation.year == year, Evaluation.person_id.is_not(None))
            )
        ).all()
    )
    evaluated = set(
        await session.scalars(
            select(Evaluation.person_id).where(Evaluation.year == year, Evaluation.person_id.is_not(None))
        )
    )
    trained = set(
        await session.scalars(
            select(Attendance.person_id)
            .join(TrainingSession, TrainingSession.id == Attendance.session_id)
            .where(TrainingSession.year == year)
        )
    )
    in_collective = await _naive_in_collectives(session, year)
    in_learning_unit = await _naive_under_recognised(session, year, "learning_unit")

    def count(groups: Sequence[str], *conditions: Any, adults: bool = False) -> int:
        return sum(
            1
            for person_id, (group, born) in people.items()
            if group in groups
            and (not adults or born is None or year - born >= adult_age)
            and all(c(person_id) for c in conditions)
        )

    def is_recognised(p: int) -> bool:
        return p in recognised

    def collective(p: int) -> bool:
        return p in in_collective

    def learning_unit(p: int) -> bool:
        return p in in_learning_unit

    def digital(*levels: str) -> Any:
        return lambda p: recognised.get(p) in levels

    residents, staff, everyone = ["resident"], ["staff", "worker"], [g.value for g in Group]
    subjects = await _naive_collective_subjects(session, units, day)
    titles = await _naive_recognised_titles(session, year)
    evaluated_subjects = set(
        (
            await session.execute(
                select(Evaluation.collective_id, Evaluation.subject_unit_id).where(
                    Evaluation.year == year, Evaluation.person_id.is_(None)
                )
            )
        ).all()
    )

    def share(kinds: Sequence[str], title: str) -> tuple[int, int]:
        mine = [key for key, kind in subjects.items() if kind in kinds]
        return sum(1 for key in mine if titles.get(key) == title), len(mine)

    numbers = {
        "adults_recognised_pct": (
            count(residents, is_recognised, adults=True),
            count(residents, adults=True),
        ),
        "adults_in_learning_collectives_recognised_pct": (
            count(residents, collective, is_recognised, adults=True),
            count(residents, collective, adults=True),
        ),
        "staff_recognised_pct": (count(staff, is_recognised), count(staff)),
        "staff_in_learning_units_recognised_pct": (
            count(staff, learning_unit, is_recognised),
            count(staff, learning_unit),
        ),
        "students_recognised_pct": (count(["student"], is_recognised), count(["student"])),
        "digital_skills_pct": (
            count(everyone, digital("basic", "proficient")),
            count(everyone, is_recognised),
        ),
        "digital_proficient_pct": (count(everyone, digital("proficient")), count(everyone, is_recognised)),
        "trained_pct": (count(staff, lambda p: p in trained), count(staff)),
        "learning_families_pct": share(["household"], "learning_family"),
        "learning_clans_pct": share(["clan"], "learning_clan"),
        "learning_communities_pct": share(["village"], "learning_community"),
        "learning_units_pct": share(["school", "agency", "enterprise"], "learning_unit"),
    }
    with_evaluation = count(everyone, lambda p: p in evaluated) + sum(
        1
        for (collective_id, subject_unit_id) in evaluated_subjects
        if ("collective", collective_id) in subjects or ("unit", subject_unit_id) in subjects
    )
    return numbers, with_evaluation


async def _naive_subtree(session: AsyncSession, unit_id: int, day: date) -> Any:
    """The ids of the subtree that day, as a subquery (the nation's ~100,000 would not fit as bound
    parameters)."""
    tree = _subtree_on(unit_id, day)
    return select(tree.c.id).scalar_subquery()


def _last_day(year: int, valid_to: date | None) -> date:
    return year_end(year) if valid_to is None else min(year_end(year), valid_to)


async def _naive_recognised(session: AsyncSession, year: int, title: str) -> list[Any]:
    """(collective_id, subject_unit_id) of the evaluations of ``title`` recognised for ``year``."""
    stmt = (
        select(Evaluation.collective_id, Evaluation.subject_unit_id)
        .join(RecognitionDecision, RecognitionDecision.id == Evaluation.decision_id)
        .where(
            Evaluation.title == title,
            Evaluation.year == year,
            Evaluation.status == Status.RECOGNISED.value,
            RecognitionDecision.status == "active",
        )
    )
    return list((await session.execute(stmt)).all())


async def _naive_in_collectives(session: AsyncSession, year: int) -> set[int]:
    """People in a recognised learning family, a household of a recognised learning clan, or below a
    recognised learning community, that year."""
    found: set[int] = set()
    for household_id, _ in await _naive_recognised(session, year, "learning_family"):
        household = await session.get(Collective, household_id)
        assert household is not None
        found |= await _naive_members(session, household_id, _last_day(year, household.valid_to))
    for clan_id, _ in await _naive_recognised(session, year, "learning_clan"):
        clan = await session.get(Collective, clan_id)
        assert clan is not None
        on = _last_day(year, clan.valid_to)
        households = await session.scalars(
            select(ClanHousehold.household_id).where(
                ClanHousehold.clan_id == clan_id, covers(ClanHousehold.valid_from, ClanHousehold.valid_to, on)
            )
        )
        for household_id in households.all():
            found |= await _naive_members(session, household_id, on)
    return found | await _naive_under_recognised(session, year, "learning_community")


async def _naive_members(session: AsyncSession, household_id: int, on: date) -> set[int]:
    stmt = select(HouseholdMember.person_id).where(
        HouseholdMember.household_id == household_id,
        covers(HouseholdMember.valid_from, HouseholdMember.valid_to, on),
    )
    return set(await session.scalars(stmt))


async def _naive_under_recognised(session: AsyncSession, year: int, title: str) -> set[int]:
    """People who belong that year to a unit recognised with ``title``, or to a unit below it."""
    found: set[int] = set()
    for _, unit_id in await _naive_recognised(session, year, title):
        unit = await session.get(OrgUnit, unit_id)
        assert unit is not None
        on = _last_day(year, unit.valid_to)
        below = await _naive_subtree(session, unit_id, on)
        stmt = select(Membership.person_id).where(
            Membership.org_unit_id.in_(below), covers(Membership.valid_from, Membership.valid_to, on)
        )
        found |= set(await session.scalars(stmt))
    return found


async def _naive_collective_subjects(
    session: AsyncSession, units: Any, day: date
) -> dict[tuple[str, int], str]:
    """The households, clans, villages, schools, agencies and enterprises of the subtree that day, by
    key, with their kind."""
    placed = await session.execute(
        select(CollectivePlace.collective_id, Collective.kind)
        .join(Collective, Collective.id == CollectivePlace.collective_id)
        .where(
            CollectivePlace.org_unit_id.in_(units),
            covers(CollectivePlace.valid_from, CollectivePlace.valid_to, day),
        )
    )
    alive = await session.execute(
        select(OrgUnit.id, OrgUnit.kind).where(
            OrgUnit.id.in_(units),
            OrgUnit.kind.in_(["village", "school", "agency", "enterprise"]),
            covers(OrgUnit.valid_from, OrgUnit.valid_to, day),
        )
    )
    return {("collective", i): k for i, k in placed.all()} | {("unit", i): k for i, k in alive.all()}


async def _naive_recognised_titles(session: AsyncSession, year: int) -> dict[tuple[str, int], str]:
    stmt = (
        select(Evaluation.collective_id, Evaluation.subject_unit_id, Evaluation.title)
        .join(RecognitionDecision, RecognitionDecision.id == Evaluation.decision_id)
        .where(
            Evaluation.year == year,
            Evaluation.person_id.is_(None),
            Evaluation.status == Status.RECOGNISED.value,
            RecognitionDecision.status == "active",
        )
    )
    titles: dict[tuple[str, int], str] = {}
    for c, u, title in (await session.execute(stmt)).all():
        # No person: the evaluation's check constraint leaves exactly one of the two set.
        if c is not None:
            titles[("collective", c)] = title
        elif u is not None:
            titles[("unit", u)] = title
    return titles
