"""What a counter cell means (``counters.py`` applies it): where each kind of subject is placed in the
tree, dated (:class:`Place`: people by their memberships, households and clans by their places, villages,
schools, agencies and enterprises at themselves), the change rows of those placements
(:func:`change_rows`), the per-year facts about subjects (:func:`person_facts`, :func:`subject_facts`,
:func:`belonging_facts`), and how a fact attaches to every unit above its subject on that unit's
reference day (:func:`fact_rows`). Everything here builds statements; nothing executes them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    SelectBase,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.orm import aliased, join

from app.aggregates.metrics import BORN_FLOOR, Kind
from app.collectives.models import ClanHousehold, Collective, CollectivePlace, HouseholdMember
from app.core.dates import covers, dec31, earlier_of, is_year_end, later_of, year_of
from app.decisions.models import RecognitionDecision
from app.evaluations.models import UNIT_SUBJECT_KINDS, Evaluation, Status, Title
from app.orgs.models import OrgUnit, OrgUnitLink
from app.people.models import Membership, Person
from app.trainings.models import Attendance, TrainingSession

NO_LEVEL = ""


def inline(value: str | int) -> Any:
    # Rendered inline, not bound: PostgreSQL matches SELECT and GROUP BY expressions only when they are
    # identical, and two bound parameters are not.
    return literal(value, literal_execute=True)


def capped(year: Any, valid_to: Any) -> ColumnElement[Any]:
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
        inline(0),
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
        inline(0),
        u.valid_from,
        u.valid_to,
        (u.kind.in_(sorted(UNIT_SUBJECT_KINDS)),),
    )


def change_rows(kind: Kind, place: Place, where: Sequence[ColumnElement[bool]]) -> list[Select[Any]]:
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
        inline(kind.value).label("kind"),
        place.grp.label("grp"),
        inline(NO_LEVEL).label("level"),
        place.born.label("born"),
        literal(1).label("n"),
    )
    # Gone from the first 31 December after the period ends — except from a unit that ended with it,
    # which counts its subjects as they were on its own last day.
    ends = joined.add_columns(
        link.ancestor_id,
        year_of(end) + case((is_year_end(end), 1), else_=0),
        inline(kind.value),
        place.grp,
        inline(NO_LEVEL),
        place.born,
        literal(-1),
    ).where(end.is_not(None), or_(above.valid_to.is_(None), end < above.valid_to))
    return [begins, ends]


def fact_rows(facts: Any, place: Place, where: Sequence[ColumnElement[bool]] = ()) -> list[Select[Any]]:
    """The per-year cells of ``facts`` (subject_id, year, kind, level): each counts in every unit above
    the one its subject was placed in on that unit's reference day, with the subject's group of that day."""
    link, above = OrgUnitLink, aliased(OrgUnit)
    day = capped(facts.c.year, above.valid_to)
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


def fact(subject: Any, year: Any, kind: Kind, level: Any = None) -> list[Any]:
    return [
        subject.label("subject_id"),
        year.label("year"),
        inline(kind.value).label("kind"),
        (level if level is not None else inline(NO_LEVEL)).label("level"),
    ]


def recognised_evaluations(e: Any) -> tuple[Select[Any], ColumnElement[bool]]:
    """Evaluations ``e`` recognised under a decision that is not revoked."""
    d = aliased(RecognitionDecision)
    return select().select_from(e).join(d, d.id == e.decision_id), and_(
        e.status == Status.RECOGNISED.value, d.status == "active"
    )


def in_collective(person_where: Any) -> SelectBase:
    """(person_id, year): people who belong in the year to a household recognised as a learning family,
    a household of a clan recognised as a learning clan, or a village recognised as a learning community
    (on 31 December, or the subject's last day if it ended that year)."""
    e = aliased(Evaluation)
    base, recognised = recognised_evaluations(e)
    h, hm = aliased(Collective), aliased(HouseholdMember)
    day = capped(e.year, h.valid_to)
    families = (
        base.add_columns(hm.person_id.label("person_id"), e.year.label("year"))
        .join(h, h.id == e.collective_id)
        .join(hm, hm.household_id == h.id)
        .where(e.title == Title.LEARNING_FAMILY.value, recognised, covers(hm.valid_from, hm.valid_to, day))
        .where(*person_where(hm.person_id))
    )
    c, ch, chm = aliased(Collective), aliased(ClanHousehold), aliased(HouseholdMember)
    day = capped(e.year, c.valid_to)
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
    return union(families, clans, under_unit(Title.LEARNING_COMMUNITY, person_where))


def under_unit(title: Title, person_where: Any) -> Select[Any]:
    """(person_id, year), each once: people who belong in the year to a unit (or below it) recognised
    with ``title`` (a person below two nested recognised units counts once)."""
    e = aliased(Evaluation)
    base, recognised = recognised_evaluations(e)
    u, link, m = aliased(OrgUnit), aliased(OrgUnitLink), aliased(Membership)
    day = capped(e.year, u.valid_to)
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


def with_own_recognition(members: SelectBase, kind: Kind, evaluation_ids: Any) -> Select[Any]:
    """Those of ``members`` recognised themselves that year (or, with ``evaluation_ids``, whose
    evaluation is one of those, whatever its status at this instant)."""
    x = members.subquery()
    pe = aliased(Evaluation)
    stmt = select(*fact(x.c.person_id, x.c.year, kind)).join(
        pe, and_(pe.person_id == x.c.person_id, pe.year == x.c.year)
    )
    if evaluation_ids is not None:
        return stmt.where(pe.id.in_(evaluation_ids))
    d = aliased(RecognitionDecision)
    return stmt.join(d, d.id == pe.decision_id).where(
        pe.status == Status.RECOGNISED.value, d.status == "active"
    )


def person_facts(person_ids: Any) -> Any:
    """(subject_id, year, kind, level) of every per-year fact about people (``person_ids`` only, when
    given): their recognition, evaluation and training, and their belonging to recognised collectives."""

    def only(column: Any) -> list[ColumnElement[bool]]:
        return [] if person_ids is None else [column.in_(person_ids)]

    e = aliased(Evaluation)
    base, recognised = recognised_evaluations(e)
    level = func.coalesce(e.digital_level, inline(NO_LEVEL))
    parts: list[Select[Any]] = [
        base.add_columns(*fact(e.person_id, e.year, Kind.RECOGNISED, level)).where(
            recognised, e.person_id.is_not(None), *only(e.person_id)
        ),
        select(*fact(Evaluation.person_id, Evaluation.year, Kind.EVALUATED)).where(
            Evaluation.person_id.is_not(None), *only(Evaluation.person_id)
        ),
        select(*fact(Attendance.person_id, TrainingSession.year, Kind.TRAINED))
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .where(*only(Attendance.person_id))
        .distinct(),
        *belonging_facts(only),
    ]
    return union_all(*parts).subquery("facts")


def belonging_facts(only: Callable[[Any], list[ColumnElement[bool]]]) -> list[Select[Any]]:
    """The facts of belonging to recognised collectives (``in_collective``, ``in_lu``), each with its
    ``_rec`` kind for the people recognised themselves, of the people ``only`` selects."""
    collective = in_collective(only)
    learning_unit = under_unit(Title.LEARNING_UNIT, only)
    return [
        members_fact(collective, Kind.IN_COLLECTIVE),
        with_own_recognition(collective, Kind.IN_COLLECTIVE_RECOGNISED, None),
        members_fact(learning_unit, Kind.IN_LEARNING_UNIT),
        with_own_recognition(learning_unit, Kind.IN_LEARNING_UNIT_RECOGNISED, None),
    ]


def members_fact(members: SelectBase, kind: Kind) -> Select[Any]:
    x = members.subquery()
    return select(*fact(x.c.person_id, x.c.year, kind))


def subject_facts(subject: Any, where: Sequence[ColumnElement[bool]]) -> Any:
    """(subject_id, year, kind, level) of collective evaluations whose subject is ``subject`` (a column
    of Evaluation: ``collective_id`` or ``subject_unit_id``): evaluated, and recognised with the title."""
    e, column = Evaluation, subject
    base, recognised = recognised_evaluations(e)
    return union_all(
        select(*fact(column, e.year, Kind.EVALUATED)).where(column.is_not(None), *where),
        base.add_columns(*fact(column, e.year, Kind.COLLECTIVES_RECOGNISED, e.title)).where(
            recognised, column.is_not(None), *where
        ),
    ).subquery("facts")
