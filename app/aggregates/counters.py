"""Keeping ``aggregate_counts`` equal to a recount, in the transaction of every change it depends on.

What a cell means (API.md "Counting through time"): year Y of unit U counts each subject — a person, a
household or clan, or a unit that a collective title may recognise (a village, a school, an agency, an
enterprise) — where it was placed on U's reference day (31 December of Y, or U's last day if U ended
during Y; the current year's 31 December stands for today: nothing is dated after today), rolled up
through the tree as it stood that day (``org_unit_links``), with the facts of Y about it.

How it is stored, so that a year never needs to be "opened" and a past year never moves:

- ``people`` and ``collectives`` cells are **changes**: the count of (U, Y) is the sum of U's cells of
  every year ≤ Y (year 0 stands for "since always"). A membership or tree link that starts in 2025 adds
  +1 at 2025; one that ends before the 31 December of 2026 adds −1 at 2026.
- every other kind holds the year's own count: ``recognised`` (level: the digital level),
  ``evaluated``, ``trained``; ``in_collective`` (people in a recognised learning family, clan or
  community) and ``in_lu`` (people of a recognised learning unit), each with its ``_rec`` kind for those
  of them recognised themselves; ``collectives_rec`` (level: the title recognised).
- ``grp`` is the person's group, or ``household``/``clan``, or the unit's kind; ``born`` the person's
  birth year when after ``metrics.BORN_FLOOR`` (adults are counted by age when read).

The definition lives in :func:`change_rows` (where each subject is placed, :class:`Place`) and the fact
queries (:func:`person_facts`, :func:`subject_facts`), attached to the tree by :func:`fact_rows`.
Every change applies them to the subjects it touches, with −1 before and +1 after (or, for facts, once for
the facts that changed), and :func:`rebuild` applies them to everything. A subtree that moves is the
exception (a province holds millions of people): its own cells are shifted from the ancestors it leaves to
those it joins, from the move's year on (:func:`subtree_moved`).

Concurrent writers meet on the ancestors' rows (the nation's above all); each statement's rows come in
key order, so they queue rather than deadlock. How a statement writes the cells is ``cell_writes.py``; who
else a change concerns (the members of a collective whose recognition changes), ``affected.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, case, delete, func, literal, or_, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.aggregates import affected, versions, waiting
from app.aggregates.cell_writes import IDS, apply_built, apply_rows, chunks, upsert, write
from app.aggregates.cells import (
    belonging_facts,
    change_rows,
    collective_place,
    fact,
    fact_rows,
    in_collective,
    person_facts,
    person_place,
    subject_facts,
    under_unit,
    unit_place,
    with_own_recognition,
)
from app.aggregates.metrics import CHANGE_KINDS, Kind
from app.aggregates.models import AggregateCount, CounterState
from app.collectives.models import CollectivePlace
from app.evaluations.models import Evaluation, Title
from app.orgs.models import OrgUnit, OrgUnitLink
from app.people.models import Membership
from app.trainings.models import Attendance, TrainingSession

# Bump when what a cell means changes: ``cdht migrate`` then recounts every counter (``ensure_current``).
DEFINITION = "2026-12-02 collectives, adults by birth year"
_CHANGES = sorted(k.value for k in CHANGE_KINDS)


async def belonging_counted(session: AsyncSession, person_ids: Sequence[int], sign: int) -> None:
    """Add or remove only the facts of belonging to recognised collectives of ``person_ids``: what a
    household's, clan's, village's or unit's recognition changes for its members (−1 before, +1 after)."""
    await session.flush()

    def build() -> list[list[Select[Any]]]:
        facts = union_all(*belonging_facts(lambda column: [column.in_(IDS)])).subquery("facts")
        return [fact_rows(facts, person_place())]

    for ids in chunks(person_ids):
        await apply_built(session, "belonging", build, sign, ids)


async def people_counted(session: AsyncSession, person_ids: Sequence[int], sign: int) -> None:
    """Add (+1) or remove (−1) everything ``person_ids`` count in: call with −1 before changing their
    memberships, households or anything their facts depend on, and +1 after."""
    await session.flush()

    def build() -> list[list[Select[Any]]]:
        place = person_place()
        return [
            change_rows(Kind.PEOPLE, place, [Membership.person_id.in_(IDS)]),
            fact_rows(person_facts(IDS), place),
        ]

    for ids in chunks(person_ids):
        await apply_built(session, "people", build, sign, ids)


async def collectives_counted(session: AsyncSession, collective_ids: Sequence[int], sign: int) -> None:
    """Add or remove the households' and clans' own cells (where they are placed, their evaluations)."""
    await session.flush()

    def build() -> list[list[Select[Any]]]:
        place = collective_place()
        facts = subject_facts(Evaluation.collective_id, [Evaluation.collective_id.in_(IDS)])
        return [
            change_rows(Kind.COLLECTIVES, place, [CollectivePlace.collective_id.in_(IDS)]),
            fact_rows(facts, place),
        ]

    for ids in chunks(collective_ids):
        await apply_built(session, "collectives", build, sign, ids)


async def units_counted(session: AsyncSession, unit_ids: Sequence[int], sign: int) -> None:
    """Add or remove the cells of villages, schools, agencies and enterprises as subjects of the
    collective titles (their place in the tree, their evaluations): around a unit's creation or end."""
    await session.flush()

    def build() -> list[list[Select[Any]]]:
        place = unit_place()
        facts = subject_facts(Evaluation.subject_unit_id, [Evaluation.subject_unit_id.in_(IDS)])
        return [change_rows(Kind.COLLECTIVES, place, [place.subject.in_(IDS)]), fact_rows(facts, place)]

    for ids in chunks(unit_ids):
        await apply_built(session, "units", build, sign, ids)


async def memberships_added(session: AsyncSession, after_id: int) -> None:
    """Count the memberships with an id above ``after_id`` (people just created in bulk: no facts yet)."""
    await session.flush()
    await apply_rows(session, [change_rows(Kind.PEOPLE, person_place(), [Membership.id > after_id])], +1)


async def recognition_changed(
    session: AsyncSession, evaluation_ids: Sequence[int], sign: int, *, belonging: bool = True
) -> None:
    """+1 (recognised) or −1 (recognition withdrawn) for each personal evaluation, as a recognised person
    and (``belonging``) as a recognised member of a learning family, clan, community or unit. Call it
    while the evaluations are recognised under an active decision (after recognising, before revoking)."""
    if not evaluation_ids:
        return
    await session.flush()

    def build() -> list[list[Select[Any]]]:
        e = aliased(Evaluation)
        # The evaluations as they are named, whatever their status at this instant: the caller counts them
        # in (or out) around the change of status.
        recognised = select(
            *fact(e.person_id, e.year, Kind.RECOGNISED, func.coalesce(e.digital_level, ""))
        ).where(e.id.in_(IDS))
        people = select(Evaluation.person_id).where(Evaluation.id.in_(IDS)).scalar_subquery()

        def named(column: Any) -> list[ColumnElement[bool]]:
            return [column.in_(people)]

        parts = [recognised]
        if belonging:
            parts += [
                with_own_recognition(in_collective(named), Kind.IN_COLLECTIVE_RECOGNISED, IDS),
                with_own_recognition(
                    under_unit(Title.LEARNING_UNIT, named), Kind.IN_LEARNING_UNIT_RECOGNISED, IDS
                ),
            ]
        return [fact_rows(union_all(*parts).subquery("facts"), person_place())]

    for ids in chunks(evaluation_ids):
        await apply_built(session, f"recognition:{belonging}", build, sign, ids)


async def evaluation_created(session: AsyncSession, evaluation: Evaluation) -> None:
    await session.flush()
    if evaluation.person_id is not None:
        facts = select(*fact(Evaluation.person_id, Evaluation.year, Kind.EVALUATED)).where(
            Evaluation.id == evaluation.id
        )
        await apply_rows(session, [fact_rows(facts.subquery("facts"), person_place())], +1)
        return
    subject, place = (
        (Evaluation.collective_id, collective_place())
        if evaluation.collective_id is not None
        else (Evaluation.subject_unit_id, unit_place())
    )
    facts = select(*fact(subject, Evaluation.year, Kind.EVALUATED)).where(Evaluation.id == evaluation.id)
    await apply_rows(session, [fact_rows(facts.subquery("facts"), place)], +1)


async def training_counted(
    session: AsyncSession, session_id: int, person_ids: Sequence[int], sign: int
) -> None:
    """Add or remove the ``trained`` cells of ``person_ids`` for the year of training ``session_id``
    (call with the people whose "trained that year" changes, once before and once after)."""
    if not person_ids:
        return
    await session.flush()
    year = select(TrainingSession.year).where(TrainingSession.id == session_id).scalar_subquery()
    facts = (
        select(*fact(Attendance.person_id, TrainingSession.year, Kind.TRAINED))
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .where(Attendance.person_id.in_(sorted(set(person_ids))), TrainingSession.year == year)
        .distinct()
        .subquery("facts")
    )
    await apply_rows(session, [fact_rows(facts, person_place())], sign)


async def collective_recognition_changed(
    session: AsyncSession, evaluation_ids: Sequence[int], sign: int
) -> None:
    """+1 or −1 for the ``collectives_rec`` cells of collective evaluations (as :func:`recognition_changed`:
    call while they are recognised). Their members' cells are the caller's: :func:`people_counted` of
    :func:`affected.people_of_collective_evaluations`, −1 before the change and +1 after."""
    if not evaluation_ids:
        return
    await session.flush()
    ids = sorted(evaluation_ids)
    for column, place in (
        (Evaluation.collective_id, collective_place()),
        (Evaluation.subject_unit_id, unit_place()),
    ):
        facts = (
            select(*fact(column, Evaluation.year, Kind.COLLECTIVES_RECOGNISED, Evaluation.title))
            .where(Evaluation.id.in_(ids), column.is_not(None))
            .subquery("facts")
        )
        await apply_rows(session, [fact_rows(facts, place)], sign)


async def subtree_moved(
    session: AsyncSession, unit_id: int, left: Sequence[int], joined: Sequence[int], year: int
) -> None:
    """``unit_id``'s subtree leaves the units ``left`` and comes under ``joined`` from ``year`` on: each
    loses (and gains) the subtree's counts of every year ≥ ``year``."""
    for targets, sign in ((left, -1), (joined, +1)):
        if not targets:
            continue
        await session.flush()
        own = (
            select(AggregateCount)
            .where(
                AggregateCount.org_unit_id == unit_id,
                or_(AggregateCount.kind.in_(_CHANGES), AggregateCount.year >= year),
            )
            .subquery("own")
        )
        # Changes before the year are folded into the year: the subtree's whole count at the year.
        at = case((own.c.year < year, year), else_=own.c.year)
        keys = (OrgUnit.id, at, own.c.kind, own.c.grp, own.c.level, own.c.born)
        rows = (
            select(*keys, func.sum(own.c.n) * sign)
            .select_from(OrgUnit)
            .join(own, literal(True))
            .where(OrgUnit.id.in_(sorted(targets)))
            .group_by(*keys)
            .order_by(*keys)
        )
        await write(session, upsert(session, rows))


async def recount_units(session: AsyncSession, unit_ids: Sequence[int]) -> None:
    """Recompute the cells of ``unit_ids`` alone from the definition (a unit that just ended: its last
    year is counted on its last day)."""
    if not unit_ids:
        return
    await session.flush()
    ids = sorted(unit_ids)
    gone = delete(AggregateCount).where(AggregateCount.org_unit_id.in_(ids))
    await write(session, gone.returning(AggregateCount.org_unit_id, AggregateCount.year))
    mine = [OrgUnitLink.ancestor_id.in_(ids)]
    below = select(OrgUnitLink.descendant_id).where(*mine).scalar_subquery()
    # Only the facts of subjects that were ever below these units (not every fact in the country).
    people = select(Membership.person_id).where(Membership.org_unit_id.in_(below)).scalar_subquery()
    collectives = select(CollectivePlace.collective_id).where(CollectivePlace.org_unit_id.in_(below))
    persons, groups, units = person_place(), collective_place(), unit_place()
    await apply_rows(
        session,
        [
            change_rows(Kind.PEOPLE, persons, mine),
            fact_rows(person_facts(people), persons, mine),
            change_rows(Kind.COLLECTIVES, groups, mine),
            fact_rows(
                subject_facts(
                    Evaluation.collective_id, [Evaluation.collective_id.in_(collectives.scalar_subquery())]
                ),
                groups,
                mine,
            ),
            change_rows(Kind.COLLECTIVES, units, mine),
            fact_rows(
                subject_facts(Evaluation.subject_unit_id, [Evaluation.subject_unit_id.in_(below)]),
                units,
                mine,
            ),
        ],
        +1,
    )


async def rebuild(session: AsyncSession) -> None:
    """Recompute every counter from the tables (``cdht rebuild-aggregates``, bulk loads, repairs, and a
    change of :data:`DEFINITION`)."""
    await session.flush()
    if session.get_bind().dialect.name == "postgresql":
        # Fresh statistics first: after a bulk load, a plan made without them can join every unit with
        # every evaluation (seen: minutes and gigabytes of temporary files instead of two minutes).
        await session.execute(
            text(
                "ANALYZE memberships, people, org_unit_links, evaluations, training_attendance, "
                "collectives, collective_places, household_members, clan_households"
            )
        )
    await session.execute(delete(AggregateCount))
    persons, groups, units = person_place(), collective_place(), unit_place()
    await apply_rows(
        session,
        [
            change_rows(Kind.PEOPLE, persons, []),
            fact_rows(person_facts(None), persons),
            change_rows(Kind.COLLECTIVES, groups, []),
            fact_rows(subject_facts(Evaluation.collective_id, []), groups),
            change_rows(Kind.COLLECTIVES, units, []),
            fact_rows(subject_facts(Evaluation.subject_unit_id, []), units),
        ],
        +1,
        follow=False,
    )
    await versions.bump_all(session)
    await waiting.rebuild(session)
    await session.execute(delete(CounterState))
    session.add(CounterState(id=1, definition=DEFINITION))
    await session.flush()


async def ensure_current(session: AsyncSession) -> bool:
    """Recount everything if the counters were built with another definition (or never): True if that
    counted anything (an empty database only records the definition)."""
    state = await session.get(CounterState, 1)
    if state is not None and state.definition == DEFINITION:
        return False
    await rebuild(session)
    return bool(await session.scalar(select(func.count()).select_from(AggregateCount)))


async def recognitions_changed(
    session: AsyncSession, evaluations: Sequence[Evaluation], sign: int, change: Callable[[], Awaitable[None]]
) -> None:
    """Run ``change``, which recognises (``sign`` +1) or un-recognises (−1) ``evaluations`` — personal
    and collective alike — and keep the counters: the members' belonging to recognised collectives is
    recounted around it, the rest is added or removed as facts."""
    collective = [e.id for e in evaluations if e.person_id is None]
    members = await affected.people_of_collective_evaluations(session, collective)
    inside = set(members)
    personal = [e for e in evaluations if e.person_id is not None]
    # A member's belonging (with their own recognition) is recounted whole; the others' is a fact.
    outside = [e.id for e in personal if e.person_id not in inside]
    within = [e.id for e in personal if e.person_id in inside]

    async def apply(sign: int) -> None:
        await recognition_changed(session, outside, sign)
        await recognition_changed(session, within, sign, belonging=False)
        await collective_recognition_changed(session, collective, sign)

    await belonging_counted(session, members, -1)
    if sign < 0:  # counted out while still recognised
        await apply(-1)
    await change()
    await session.flush()
    if sign > 0:
        await apply(+1)
    await belonging_counted(session, members, +1)
