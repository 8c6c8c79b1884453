"""Keeping ``aggregate_counts`` equal to a recount, in the transaction of every change it depends on.

What a cell means (API.md "Counting through time"): year Y of unit U counts each person where they
belonged, with the group they had, on U's reference day — 31 December of Y, or U's last day if U ended
during Y (the current year's 31 December stands for today: nothing is dated after today) — rolled up
through the tree as it stood that day (``org_unit_links``), with their recognition, training and
evaluation of Y.

How it is stored, so that a year never needs to be "opened" and a past year never moves:

- ``people`` cells are **changes**: the people of (U, Y) are the sum of U's people cells of every year
  ≤ Y (year 0 stands for "since always"). A membership or tree link that starts in 2025 adds +1 at 2025;
  one that ends before the 31 December of 2026 adds −1 at 2026.
- ``recognised``, ``trained`` and ``evaluated`` cells hold the year's own count.

The definition lives in two SELECTs (:func:`_people_rows`, :func:`_fact_rows`) that derive the cells of
any set of people from their memberships and facts; every change applies them with −1 before and +1
after (or, for facts, once for the facts that changed), and :func:`rebuild` applies them to everyone.
A subtree that moves is the exception (a province holds millions of people): its own cells are shifted
from the ancestors it leaves to those it joins, from the move's year on (:func:`subtree_moved`).

Concurrent writers meet on the ancestors' rows (the nation's above all); each statement's rows come in
key order, so they queue rather than deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, delete, func, literal, or_, select, text, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.aggregates.models import AggregateCount
from app.core.dates import covers, dec31, earlier_of, is_year_end, later_of, year_of
from app.evaluations.models import Evaluation, RecognitionDecision, Status
from app.orgs.models import OrgUnit, OrgUnitLink
from app.people.models import Membership
from app.trainings.models import Attendance, TrainingSession

PEOPLE, RECOGNISED, TRAINED, EVALUATED = "people", "recognised", "trained", "evaluated"
NO_LEVEL = ""
COLUMNS = ["org_unit_id", "year", "kind", "grp", "level", "n"]
CHUNK = 5000  # people per statement: well under the drivers' bound-parameter limits


def _upsert(session: AsyncSession, rows: Select[Any]) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(AggregateCount).from_select(COLUMNS, rows)
    return stmt.on_conflict_do_update(
        index_elements=["org_unit_id", "year", "kind", "grp", "level"],
        set_={"n": AggregateCount.n + stmt.excluded.n},
    )


def _inline(value: str) -> Any:
    # Rendered inline, not bound: PostgreSQL matches SELECT and GROUP BY expressions only when they are
    # identical, and two bound parameters are not.
    return literal(value, literal_execute=True)


def _people_rows(where: Sequence[ColumnElement[bool]]) -> list[Select[Any]]:
    """The ``people`` change cells of the memberships selected by ``where`` (ungrouped)."""
    m, link, above = Membership, OrgUnitLink, aliased(OrgUnit)
    start, end = later_of(m.valid_from, link.valid_from), earlier_of(m.valid_to, link.valid_to)
    joined = (
        select()
        .select_from(m)
        .join(link, link.descendant_id == m.org_unit_id)
        .join(above, above.id == link.ancestor_id)
        .where(*where, or_(start.is_(None), end.is_(None), start <= end))
    )
    begins = joined.add_columns(
        link.ancestor_id.label("unit"),
        case((start.is_(None), 0), else_=year_of(start)).label("year"),
        _inline(PEOPLE).label("kind"),
        m.group.label("grp"),
        _inline(NO_LEVEL).label("level"),
        literal(1).label("n"),
    )
    # Gone from the first 31 December after the period ends — except from a unit that ended with it,
    # which counts its people as they were on its own last day.
    ends = joined.add_columns(
        link.ancestor_id,
        year_of(end) + case((is_year_end(end), 1), else_=0),
        _inline(PEOPLE),
        m.group,
        _inline(NO_LEVEL),
        literal(-1),
    ).where(end.is_not(None), or_(above.valid_to.is_(None), end < above.valid_to))
    return [begins, ends]


def _evaluation_facts(kind: str, where: Sequence[ColumnElement[bool]]) -> Select[Any]:
    """(person_id, year, kind, level) of the evaluations selected by ``where``."""
    level = (
        func.coalesce(Evaluation.digital_level, _inline(NO_LEVEL))
        if kind == RECOGNISED
        else _inline(NO_LEVEL)
    )
    return select(
        Evaluation.person_id.label("person_id"),
        Evaluation.year.label("year"),
        _inline(kind).label("kind"),
        level.label("level"),
    ).where(*where)


def _facts(
    evaluation_where: Sequence[ColumnElement[bool]] | None = None,
    attendance_where: Sequence[ColumnElement[bool]] | None = None,
) -> Any:
    """(person_id, year, kind, level) of the facts counted per year: a recognition under a decision that
    is not revoked, an evaluation of any status, an attendance of a training held in the year."""
    parts: list[Select[Any]] = []
    if evaluation_where is not None:
        recognised = [
            *evaluation_where,
            Evaluation.status == Status.RECOGNISED.value,
            RecognitionDecision.status == "active",
        ]
        parts.append(
            _evaluation_facts(RECOGNISED, recognised).join(
                RecognitionDecision, RecognitionDecision.id == Evaluation.decision_id
            )
        )
        parts.append(_evaluation_facts(EVALUATED, evaluation_where))
    if attendance_where is not None:
        parts.append(
            select(
                Attendance.person_id.label("person_id"),
                TrainingSession.year.label("year"),
                _inline(TRAINED).label("kind"),
                _inline(NO_LEVEL).label("level"),
            )
            .join(TrainingSession, TrainingSession.id == Attendance.session_id)
            .where(*attendance_where)
            .distinct()
        )
    return union_all(*parts).subquery("facts") if parts else None


def _fact_rows(facts: Any, membership_where: Sequence[ColumnElement[bool]] = ()) -> list[Select[Any]]:
    """The per-year cells of ``facts``: each counts in every unit above the one its person belonged to
    on that unit's reference day, with the person's group of that day."""
    m, link, above = Membership, OrgUnitLink, aliased(OrgUnit)
    day = case(
        (and_(above.valid_to.is_not(None), above.valid_to < dec31(facts.c.year)), above.valid_to),
        else_=dec31(facts.c.year),
    )
    return [
        select(
            link.ancestor_id.label("unit"),
            facts.c.year.label("year"),
            facts.c.kind.label("kind"),
            m.group.label("grp"),
            facts.c.level.label("level"),
            literal(1).label("n"),
        )
        .select_from(facts)
        .join(m, m.person_id == facts.c.person_id)
        .join(link, link.descendant_id == m.org_unit_id)
        .join(above, above.id == link.ancestor_id)
        .where(
            *membership_where,
            or_(above.valid_to.is_(None), year_of(above.valid_to) >= facts.c.year),
            covers(m.valid_from, m.valid_to, day),
            covers(link.valid_from, link.valid_to, day),
        )
    ]


async def _apply(session: AsyncSession, parts: Sequence[list[Select[Any]]], sign: int) -> None:
    selects = [part for group in parts for part in group]
    if not selects:
        return
    rows = union_all(*selects).subquery("cells")
    keys = (rows.c.unit, rows.c.year, rows.c.kind, rows.c.grp, rows.c.level)
    grouped = select(*keys, func.sum(rows.c.n) * sign).where(literal(True)).group_by(*keys).order_by(*keys)
    await session.execute(_upsert(session, grouped))


async def people_counted(session: AsyncSession, person_ids: Sequence[int], sign: int) -> None:
    """Add (+1) or remove (−1) everything ``person_ids`` count in: call with −1 before changing their
    memberships and +1 after."""
    await session.flush()
    everyone = sorted(set(person_ids))
    for start in range(0, len(everyone), CHUNK):
        ids = everyone[start : start + CHUNK]
        facts = _facts([Evaluation.person_id.in_(ids)], [Attendance.person_id.in_(ids)])
        await _apply(session, [_people_rows([Membership.person_id.in_(ids)]), _fact_rows(facts)], sign)


async def memberships_added(session: AsyncSession, after_id: int) -> None:
    """Count the memberships with an id above ``after_id`` (people just created in bulk: no facts yet)."""
    await session.flush()
    await _apply(session, [_people_rows([Membership.id > after_id])], +1)


async def recognition_changed(session: AsyncSession, evaluation_ids: Sequence[int], sign: int) -> None:
    """+1 (recognised) or −1 (recognition withdrawn) for each evaluation. Call it while the evaluations
    are recognised under an active decision (after recognising, before revoking)."""
    if not evaluation_ids:
        return
    await session.flush()
    # The evaluations as they are named, whatever their status at this instant: the caller counts them in
    # (or out) around the change of status.
    facts = _evaluation_facts(RECOGNISED, [Evaluation.id.in_(sorted(evaluation_ids))]).subquery("facts")
    await _apply(session, [_fact_rows(facts)], sign)


async def evaluation_created(session: AsyncSession, evaluation_id: int) -> None:
    await session.flush()
    facts = _evaluation_facts(EVALUATED, [Evaluation.id == evaluation_id]).subquery("facts")
    await _apply(session, [_fact_rows(facts)], +1)


async def training_counted(
    session: AsyncSession, session_id: int, person_ids: Sequence[int], sign: int
) -> None:
    """Add or remove the ``trained`` cells of ``person_ids`` for the year of training ``session_id``
    (call with the people whose "trained that year" changes, once before and once after)."""
    if not person_ids:
        return
    await session.flush()
    year = select(TrainingSession.year).where(TrainingSession.id == session_id).scalar_subquery()
    facts = _facts(None, [Attendance.person_id.in_(sorted(set(person_ids))), TrainingSession.year == year])
    await _apply(session, [_fact_rows(facts)], sign)


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
                or_(AggregateCount.kind == PEOPLE, AggregateCount.year >= year),
            )
            .subquery("own")
        )
        # People cells before the year are folded into the year: the subtree's whole count at the year.
        at = case((own.c.year < year, year), else_=own.c.year)
        keys = (OrgUnit.id, at, own.c.kind, own.c.grp, own.c.level)
        rows = (
            select(*keys, func.sum(own.c.n) * sign)
            .select_from(OrgUnit)
            .join(own, literal(True))
            .where(OrgUnit.id.in_(sorted(targets)))
            .group_by(*keys)
            .order_by(*keys)
        )
        await session.execute(_upsert(session, rows))


async def recount_units(session: AsyncSession, unit_ids: Sequence[int]) -> None:
    """Recompute the cells of ``unit_ids`` alone from the definition (a unit that just ended: its last
    year is counted on its last day)."""
    if not unit_ids:
        return
    await session.flush()
    ids = sorted(unit_ids)
    await session.execute(delete(AggregateCount).where(AggregateCount.org_unit_id.in_(ids)))
    mine = [OrgUnitLink.ancestor_id.in_(ids)]
    # Only the facts of people who ever belonged below these units (not every fact in the country).
    people = (
        select(Membership.person_id)
        .join(OrgUnitLink, OrgUnitLink.descendant_id == Membership.org_unit_id)
        .where(*mine)
        .scalar_subquery()
    )
    facts = _facts([Evaluation.person_id.in_(people)], [Attendance.person_id.in_(people)])
    await _apply(session, [_people_rows(mine), _fact_rows(facts, mine)], +1)


async def rebuild(session: AsyncSession) -> None:
    """Recompute every counter from the tables (``cdht rebuild-aggregates``, bulk loads, repairs)."""
    await session.flush()
    if session.get_bind().dialect.name == "postgresql":
        # Fresh statistics first: after a bulk load, a plan made without them can join every unit with
        # every evaluation (seen: minutes and gigabytes of temporary files instead of two minutes).
        await session.execute(text("ANALYZE memberships, org_unit_links, evaluations, training_attendance"))
    await session.execute(delete(AggregateCount))
    await _apply(session, [_people_rows([]), _fact_rows(_facts([], []))], +1)
