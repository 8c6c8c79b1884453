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

The definition lives in :func:`_change_rows` (where each subject is placed, :class:`Place`) and the fact
queries (:func:`_person_facts`, :func:`_subject_facts`), attached to the tree by :func:`_fact_rows`.
Every change applies them to the subjects it touches, with −1 before and +1 after (or, for facts, once for
the facts that changed), and :func:`rebuild` applies them to everything. A subtree that moves is the
exception (a province holds millions of people): its own cells are shifted from the ancestors it leaves to
those it joins, from the move's year on (:func:`subtree_moved`).

Concurrent writers meet on the ancestors' rows (the nation's above all); each statement's rows come in
key order, so they queue rather than deadlock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    union,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, join

from app.aggregates.metrics import BORN_FLOOR, CHANGE_KINDS, Kind
from app.aggregates.models import AggregateCount, CounterState
from app.collectives.models import ClanHousehold, Collective, CollectivePlace, HouseholdMember
from app.core.dates import covers, dec31, earlier_of, is_year_end, later_of, year_of
from app.evaluations.models import UNIT_SUBJECT_KINDS, Evaluation, RecognitionDecision, Status, Title
from app.orgs.models import OrgUnit, OrgUnitLink
from app.people.models import Membership, Person
from app.trainings.models import Attendance, TrainingSession

# Bump when what a cell means changes: ``cdht migrate`` then recounts every counter (``ensure_current``).
DEFINITION = "2026-12-02 collectives, adults by birth year"
NO_LEVEL = ""
COLUMNS = ["org_unit_id", "year", "kind", "grp", "level", "born", "n"]
KEYS = COLUMNS[:-1]
CHUNK = 5000  # subjects per statement: well under the drivers' bound-parameter limits
_CHANGES = sorted(k.value for k in CHANGE_KINDS)


def _upsert(session: AsyncSession, rows: Select[Any]) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(AggregateCount).from_select(COLUMNS, rows)
    return stmt.on_conflict_do_update(index_elements=KEYS, set_={"n": AggregateCount.n + stmt.excluded.n})


def _inline(value: str | int) -> Any:
    # Rendered inline, not bound: PostgreSQL matches SELECT and GROUP BY expressions only when they are
    # identical, and two bound parameters are not.
    return literal(value, literal_execute=True)


def _capped(year: Any, valid_to: Any) -> ColumnElement[Any]:
    """The reference day of a year for something that may have ended: 31 December, or its last day."""
    return case((and_(valid_to.is_not(None), valid_to < dec31(year)), valid_to), else_=dec31(year))


# --- where subjects are placed --------------------------------------------------------------------------


class Place(NamedTuple):
    """Where a kind of subject sits in the tree, dated: the tables, the subject's id, the unit it sits
    in, the group and birth year it counts with, and the period."""

    tables: Any  # what to select from: a table, an alias or a join
    subject: Any
    unit: Any
    grp: Any
    born: Any
    valid_from: Any
    valid_to: Any
    where: tuple[ColumnElement[bool], ...] = ()


def person_place() -> Place:
    m, p = Membership, Person
    born = case((p.birth_year > BORN_FLOOR, p.birth_year), else_=0)
    return Place(
        join(m, p, p.id == m.person_id), m.person_id, m.org_unit_id, m.group, born, m.valid_from, m.valid_to
    )


def collective_place() -> Place:
    cp, c = CollectivePlace, Collective
    return Place(
        join(cp, c, c.id == cp.collective_id),
        cp.collective_id,
        cp.org_unit_id,
        c.kind,
        _inline(0),
        cp.valid_from,
        cp.valid_to,
    )


def unit_place() -> Place:
    """Units a collective title may recognise, each placed at itself for its lifetime."""
    u = aliased(OrgUnit, name="subject_unit")
    return Place(
        u,
        u.id,
        u.id,
        u.kind,
        _inline(0),
        u.valid_from,
        u.valid_to,
        (u.kind.in_(sorted(UNIT_SUBJECT_KINDS)),),
    )


def _change_rows(kind: Kind, place: Place, where: Sequence[ColumnElement[bool]]) -> list[Select[Any]]:
    """The change cells of the placements selected by ``where`` (ungrouped)."""
    link, above = OrgUnitLink, aliased(OrgUnit)
    start, end = later_of(place.valid_from, link.valid_from), earlier_of(place.valid_to, link.valid_to)
    joined = (
        select()
        .select_from(place.tables)
        .join(link, link.descendant_id == place.unit)
        .join(above, above.id == link.ancestor_id)
        .where(*place.where, *where, or_(start.is_(None), end.is_(None), start <= end))
    )
    begins = joined.add_columns(
        link.ancestor_id.label("unit"),
        case((start.is_(None), 0), else_=year_of(start)).label("year"),
        _inline(kind.value).label("kind"),
        place.grp.label("grp"),
        _inline(NO_LEVEL).label("level"),
        place.born.label("born"),
        literal(1).label("n"),
    )
    # Gone from the first 31 December after the period ends — except from a unit that ended with it,
    # which counts its subjects as they were on its own last day.
    ends = joined.add_columns(
        link.ancestor_id,
        year_of(end) + case((is_year_end(end), 1), else_=0),
        _inline(kind.value),
        place.grp,
        _inline(NO_LEVEL),
        place.born,
        literal(-1),
    ).where(end.is_not(None), or_(above.valid_to.is_(None), end < above.valid_to))
    return [begins, ends]


def _fact_rows(facts: Any, place: Place, where: Sequence[ColumnElement[bool]] = ()) -> list[Select[Any]]:
    """The per-year cells of ``facts`` (subject_id, year, kind, level): each counts in every unit above
    the one its subject was placed in on that unit's reference day, with the subject's group of that day."""
    link, above = OrgUnitLink, aliased(OrgUnit)
    day = _capped(facts.c.year, above.valid_to)
    return [
        select(
            link.ancestor_id.label("unit"),
            facts.c.year.label("year"),
            facts.c.kind.label("kind"),
            place.grp.label("grp"),
            facts.c.level.label("level"),
            place.born.label("born"),
            literal(1).label("n"),
        )
        .select_from(place.tables)
        .join(facts, facts.c.subject_id == place.subject)
        .join(link, link.descendant_id == place.unit)
        .join(above, above.id == link.ancestor_id)
        .where(
            *place.where,
            *where,
            or_(above.valid_to.is_(None), year_of(above.valid_to) >= facts.c.year),
            covers(place.valid_from, place.valid_to, day),
            covers(link.valid_from, link.valid_to, day),
        )
    ]


# --- facts ----------------------------------------------------------------------------------------------


def _fact(subject: Any, year: Any, kind: Kind, level: Any = None) -> list[Any]:
    return [
        subject.label("subject_id"),
        year.label("year"),
        _inline(kind.value).label("kind"),
        (level if level is not None else _inline(NO_LEVEL)).label("level"),
    ]


def _recognised(e: Any) -> tuple[Select[Any], ColumnElement[bool]]:
    """Evaluations ``e`` recognised under a decision that is not revoked."""
    d = aliased(RecognitionDecision)
    return select().select_from(e).join(d, d.id == e.decision_id), and_(
        e.status == Status.RECOGNISED.value, d.status == "active"
    )


def _in_collective(person_where: Any) -> Select[Any]:
    """(person_id, year): people who belong in the year to a household recognised as a learning family,
    a household of a clan recognised as a learning clan, or a village recognised as a learning community
    (on 31 December, or the subject's last day if it ended that year)."""
    e = aliased(Evaluation)
    base, recognised = _recognised(e)
    h, hm = aliased(Collective), aliased(HouseholdMember)
    day = _capped(e.year, h.valid_to)
    families = (
        base.add_columns(hm.person_id.label("person_id"), e.year.label("year"))
        .join(h, h.id == e.collective_id)
        .join(hm, hm.household_id == h.id)
        .where(e.title == Title.LEARNING_FAMILY.value, recognised, covers(hm.valid_from, hm.valid_to, day))
        .where(*person_where(hm.person_id))
    )
    c, ch, chm = aliased(Collective), aliased(ClanHousehold), aliased(HouseholdMember)
    day = _capped(e.year, c.valid_to)
    clans = (
        base.add_columns(chm.person_id, e.year)
        .join(c, c.id == e.collective_id)
        .join(ch, ch.clan_id == c.id)
        .join(chm, chm.household_id == ch.household_id)
        .where(
            e.title == Title.LEARNING_CLAN.value,
            recognised,
            covers(ch.valid_from, ch.valid_to, day),
            covers(chm.valid_from, chm.valid_to, day),
        )
        .where(*person_where(chm.person_id))
    )
    return union(families, clans, _under_unit(Title.LEARNING_COMMUNITY, person_where))


def _under_unit(title: Title, person_where: Any) -> Select[Any]:
    """(person_id, year), each once: people who belong in the year to a unit (or below it) recognised
    with ``title`` (a person below two nested recognised units counts once)."""
    e = aliased(Evaluation)
    base, recognised = _recognised(e)
    u, link, m = aliased(OrgUnit), aliased(OrgUnitLink), aliased(Membership)
    day = _capped(e.year, u.valid_to)
    return (
        base.add_columns(m.person_id.label("person_id"), e.year.label("year"))
        .join(u, u.id == e.subject_unit_id)
        .join(link, link.ancestor_id == u.id)
        .join(m, m.org_unit_id == link.descendant_id)
        .where(
            e.title == title.value,
            recognised,
            covers(link.valid_from, link.valid_to, day),
            covers(m.valid_from, m.valid_to, day),
        )
        .where(*person_where(m.person_id))
        .distinct()
    )


def _with_own_recognition(members: Select[Any], kind: Kind, evaluation_ids: Any) -> Select[Any]:
    """Those of ``members`` recognised themselves that year (or, with ``evaluation_ids``, whose
    evaluation is one of those, whatever its status at this instant)."""
    x = members.subquery()
    pe = aliased(Evaluation)
    stmt = select(*_fact(x.c.person_id, x.c.year, kind)).join(
        pe, and_(pe.person_id == x.c.person_id, pe.year == x.c.year)
    )
    if evaluation_ids is not None:
        return stmt.where(pe.id.in_(evaluation_ids))
    d = aliased(RecognitionDecision)
    return stmt.join(d, d.id == pe.decision_id).where(
        pe.status == Status.RECOGNISED.value, d.status == "active"
    )


def _person_facts(person_ids: Any) -> Any:
    """(subject_id, year, kind, level) of every per-year fact about people (``person_ids`` only, when
    given): their recognition, evaluation and training, and their belonging to recognised collectives."""

    def only(column: Any) -> list[ColumnElement[bool]]:
        return [] if person_ids is None else [column.in_(person_ids)]

    e = aliased(Evaluation)
    base, recognised = _recognised(e)
    level = func.coalesce(e.digital_level, _inline(NO_LEVEL))
    parts: list[Select[Any]] = [
        base.add_columns(*_fact(e.person_id, e.year, Kind.RECOGNISED, level)).where(
            recognised, e.person_id.is_not(None), *only(e.person_id)
        ),
        select(*_fact(Evaluation.person_id, Evaluation.year, Kind.EVALUATED)).where(
            Evaluation.person_id.is_not(None), *only(Evaluation.person_id)
        ),
        select(*_fact(Attendance.person_id, TrainingSession.year, Kind.TRAINED))
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .where(*only(Attendance.person_id))
        .distinct(),
        *_belonging_facts(only),
    ]
    return union_all(*parts).subquery("facts")


def _belonging_facts(only: Callable[[Any], list[ColumnElement[bool]]]) -> list[Select[Any]]:
    """The facts of belonging to recognised collectives (``in_collective``, ``in_lu``), each with its
    ``_rec`` kind for the people recognised themselves, of the people ``only`` selects."""
    collective = _in_collective(only)
    learning_unit = _under_unit(Title.LEARNING_UNIT, only)
    return [
        _members_fact(collective, Kind.IN_COLLECTIVE),
        _with_own_recognition(collective, Kind.IN_COLLECTIVE_RECOGNISED, None),
        _members_fact(learning_unit, Kind.IN_LEARNING_UNIT),
        _with_own_recognition(learning_unit, Kind.IN_LEARNING_UNIT_RECOGNISED, None),
    ]


async def belonging_counted(session: AsyncSession, person_ids: Sequence[int], sign: int) -> None:
    """Add or remove only the facts of belonging to recognised collectives of ``person_ids``: what a
    household's, clan's, village's or unit's recognition changes for its members (−1 before, +1 after)."""
    await session.flush()

    def build() -> list[list[Select[Any]]]:
        facts = union_all(*_belonging_facts(lambda column: [column.in_(IDS)])).subquery("facts")
        return [_fact_rows(facts, person_place())]

    for ids in _chunks(person_ids):
        await _apply_built(session, "belonging", build, sign, ids)


def _members_fact(members: Select[Any], kind: Kind) -> Select[Any]:
    x = members.subquery()
    return select(*_fact(x.c.person_id, x.c.year, kind))


def _subject_facts(subject: Any, where: Sequence[ColumnElement[bool]]) -> Any:
    """(subject_id, year, kind, level) of collective evaluations whose subject is ``subject`` (a column
    of Evaluation: ``collective_id`` or ``subject_unit_id``): evaluated, and recognised with the title."""
    e, column = Evaluation, subject
    base, recognised = _recognised(e)
    return union_all(
        select(*_fact(column, e.year, Kind.EVALUATED)).where(column.is_not(None), *where),
        base.add_columns(*_fact(column, e.year, Kind.COLLECTIVES_RECOGNISED, e.title)).where(
            recognised, column.is_not(None), *where
        ),
    ).subquery("facts")


# --- applying -------------------------------------------------------------------------------------------


def _statement(session: AsyncSession, parts: Sequence[list[Select[Any]]], sign: int) -> Any:
    selects = [part for group in parts for part in group]
    rows = union_all(*selects).subquery("cells")
    keys = (rows.c.unit, rows.c.year, rows.c.kind, rows.c.grp, rows.c.level, rows.c.born)
    grouped = select(*keys, func.sum(rows.c.n) * sign).where(literal(True)).group_by(*keys).order_by(*keys)
    return _upsert(session, grouped)


async def _apply(session: AsyncSession, parts: Sequence[list[Select[Any]]], sign: int) -> None:
    if any(parts):
        await session.execute(_statement(session, parts, sign))


# The statements of the hot write paths (a decision, a collective's recognition), built once per dialect
# and sign with the ids as an expanding parameter: building these unions costs more than running them.
IDS = bindparam("ids", expanding=True)
_BUILT: dict[tuple[str, str, int], Any] = {}


async def _apply_built(
    session: AsyncSession,
    name: str,
    build: Callable[[], Sequence[list[Select[Any]]]],
    sign: int,
    ids: Sequence[int],
) -> None:
    key = (session.get_bind().dialect.name, name, sign)
    if key not in _BUILT:
        _BUILT[key] = _statement(session, build(), sign)
    # On the connection: the session would read a parameter dictionary as the rows of a bulk insert.
    await (await session.connection()).execute(_BUILT[key], {"ids": list(ids)})


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    everyone = sorted(set(ids))
    return [everyone[start : start + CHUNK] for start in range(0, len(everyone), CHUNK)]


async def people_counted(session: AsyncSession, person_ids: Sequence[int], sign: int) -> None:
    """Add (+1) or remove (−1) everything ``person_ids`` count in: call with −1 before changing their
    memberships, households or anything their facts depend on, and +1 after."""
    await session.flush()
    for ids in _chunks(person_ids):
        place = person_place()
        await _apply(
            session,
            [
                _change_rows(Kind.PEOPLE, place, [Membership.person_id.in_(ids)]),
                _fact_rows(_person_facts(ids), place),
            ],
            sign,
        )


async def collectives_counted(session: AsyncSession, collective_ids: Sequence[int], sign: int) -> None:
    """Add or remove the households' and clans' own cells (where they are placed, their evaluations)."""
    await session.flush()
    for ids in _chunks(collective_ids):
        place = collective_place()
        facts = _subject_facts(Evaluation.collective_id, [Evaluation.collective_id.in_(ids)])
        await _apply(
            session,
            [
                _change_rows(Kind.COLLECTIVES, place, [CollectivePlace.collective_id.in_(ids)]),
                _fact_rows(facts, place),
            ],
            sign,
        )


async def units_counted(session: AsyncSession, unit_ids: Sequence[int], sign: int) -> None:
    """Add or remove the cells of villages, schools, agencies and enterprises as subjects of the
    collective titles (their place in the tree, their evaluations): around a unit's creation or end."""
    await session.flush()
    for ids in _chunks(unit_ids):
        place = unit_place()
        facts = _subject_facts(Evaluation.subject_unit_id, [Evaluation.subject_unit_id.in_(ids)])
        await _apply(
            session,
            [_change_rows(Kind.COLLECTIVES, place, [place.subject.in_(ids)]), _fact_rows(facts, place)],
            sign,
        )


async def memberships_added(session: AsyncSession, after_id: int) -> None:
    """Count the memberships with an id above ``after_id`` (people just created in bulk: no facts yet)."""
    await session.flush()
    await _apply(session, [_change_rows(Kind.PEOPLE, person_place(), [Membership.id > after_id])], +1)


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
            *_fact(e.person_id, e.year, Kind.RECOGNISED, func.coalesce(e.digital_level, ""))
        ).where(e.id.in_(IDS))
        people = select(Evaluation.person_id).where(Evaluation.id.in_(IDS)).scalar_subquery()

        def named(column: Any) -> list[ColumnElement[bool]]:
            return [column.in_(people)]

        parts = [recognised]
        if belonging:
            parts += [
                _with_own_recognition(_in_collective(named), Kind.IN_COLLECTIVE_RECOGNISED, IDS),
                _with_own_recognition(
                    _under_unit(Title.LEARNING_UNIT, named), Kind.IN_LEARNING_UNIT_RECOGNISED, IDS
                ),
            ]
        return [_fact_rows(union_all(*parts).subquery("facts"), person_place())]

    for ids in _chunks(evaluation_ids):
        await _apply_built(session, f"recognition:{belonging}", build, sign, ids)


async def evaluation_created(session: AsyncSession, evaluation: Evaluation) -> None:
    await session.flush()
    if evaluation.person_id is not None:
        facts = select(*_fact(Evaluation.person_id, Evaluation.year, Kind.EVALUATED)).where(
            Evaluation.id == evaluation.id
        )
        await _apply(session, [_fact_rows(facts.subquery("facts"), person_place())], +1)
        return
    subject, place = (
        (Evaluation.collective_id, collective_place())
        if evaluation.collective_id is not None
        else (Evaluation.subject_unit_id, unit_place())
    )
    facts = select(*_fact(subject, Evaluation.year, Kind.EVALUATED)).where(Evaluation.id == evaluation.id)
    await _apply(session, [_fact_rows(facts.subquery("facts"), place)], +1)


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
        select(*_fact(Attendance.person_id, TrainingSession.year, Kind.TRAINED))
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .where(Attendance.person_id.in_(sorted(set(person_ids))), TrainingSession.year == year)
        .distinct()
        .subquery("facts")
    )
    await _apply(session, [_fact_rows(facts, person_place())], sign)


async def people_of_collective_evaluations(session: AsyncSession, evaluation_ids: Sequence[int]) -> list[int]:
    """Everyone whose belonging to a recognised collective may change with these collective
    evaluations' recognition: every member (any period) of the household, of the clan's households,
    or of the unit's subtree."""
    if not evaluation_ids:
        return []
    ids = sorted(evaluation_ids)
    e = aliased(Evaluation)
    families = (
        select(HouseholdMember.person_id)
        .join(e, e.collective_id == HouseholdMember.household_id)
        .where(e.id.in_(ids))
    )
    clans = (
        select(HouseholdMember.person_id)
        .join(ClanHousehold, ClanHousehold.household_id == HouseholdMember.household_id)
        .join(e, e.collective_id == ClanHousehold.clan_id)
        .where(e.id.in_(ids))
    )
    units = (
        select(Membership.person_id)
        .join(OrgUnitLink, OrgUnitLink.descendant_id == Membership.org_unit_id)
        .join(e, e.subject_unit_id == OrgUnitLink.ancestor_id)
        .where(e.id.in_(ids))
    )
    return sorted(set((await session.scalars(union(families, clans, units))).all()))


async def collective_recognition_changed(
    session: AsyncSession, evaluation_ids: Sequence[int], sign: int
) -> None:
    """+1 or −1 for the ``collectives_rec`` cells of collective evaluations (as :func:`recognition_changed`:
    call while they are recognised). Their members' cells are the caller's: :func:`people_counted` of
    :func:`people_of_collective_evaluations`, −1 before the change and +1 after."""
    if not evaluation_ids:
        return
    await session.flush()
    ids = sorted(evaluation_ids)
    for column, place in (
        (Evaluation.collective_id, collective_place()),
        (Evaluation.subject_unit_id, unit_place()),
    ):
        facts = (
            select(*_fact(column, Evaluation.year, Kind.COLLECTIVES_RECOGNISED, Evaluation.title))
            .where(Evaluation.id.in_(ids), column.is_not(None))
            .subquery("facts")
        )
        await _apply(session, [_fact_rows(facts, place)], sign)


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
    below = select(OrgUnitLink.descendant_id).where(*mine).scalar_subquery()
    # Only the facts of subjects that were ever below these units (not every fact in the country).
    people = select(Membership.person_id).where(Membership.org_unit_id.in_(below)).scalar_subquery()
    collectives = select(CollectivePlace.collective_id).where(CollectivePlace.org_unit_id.in_(below))
    persons, groups, units = person_place(), collective_place(), unit_place()
    await _apply(
        session,
        [
            _change_rows(Kind.PEOPLE, persons, mine),
            _fact_rows(_person_facts(people), persons, mine),
            _change_rows(Kind.COLLECTIVES, groups, mine),
            _fact_rows(
                _subject_facts(
                    Evaluation.collective_id, [Evaluation.collective_id.in_(collectives.scalar_subquery())]
                ),
                groups,
                mine,
            ),
            _change_rows(Kind.COLLECTIVES, units, mine),
            _fact_rows(
                _subject_facts(Evaluation.subject_unit_id, [Evaluation.subject_unit_id.in_(below)]),
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
    await _apply(
        session,
        [
            _change_rows(Kind.PEOPLE, persons, []),
            _fact_rows(_person_facts(None), persons),
            _change_rows(Kind.COLLECTIVES, groups, []),
            _fact_rows(_subject_facts(Evaluation.collective_id, []), groups),
            _change_rows(Kind.COLLECTIVES, units, []),
            _fact_rows(_subject_facts(Evaluation.subject_unit_id, []), units),
        ],
        +1,
    )
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
    members = await people_of_collective_evaluations(session, collective)
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


async def people_leaving_recognised_units(
    session: AsyncSession, unit_id: int, ancestors: Sequence[int], from_year: int
) -> list[int]:
    """The people below ``unit_id`` whose belonging to a recognised community or learning unit changes
    when the subtree leaves or joins ``ancestors`` from ``from_year`` on: everyone below, if one of the
    ancestors holds such a recognition of that year or later; else nobody (the usual case)."""
    if not ancestors:
        return []
    held = select(
        select(Evaluation.id)
        .where(
            Evaluation.subject_unit_id.in_(sorted(ancestors)),
            Evaluation.status == Status.RECOGNISED.value,
            Evaluation.year >= from_year,
        )
        .exists()
    )
    if not await session.scalar(held):
        return []
    below = (
        select(Membership.person_id)
        .join(OrgUnitLink, OrgUnitLink.descendant_id == Membership.org_unit_id)
        .where(OrgUnitLink.ancestor_id == unit_id)
        .distinct()
    )
    return sorted((await session.scalars(below)).all())
