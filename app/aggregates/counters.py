"""Keeping ``aggregate_counts`` equal to a recount, in the transaction of every change it depends on.

Each unit's row holds its whole subtree, so the dashboards read a handful of rows whatever the size of
the tree (the nation's progress is one unit's cells; a breakdown is one row set per child). A change to
one person adds ±1 to the cells of every ancestor of their unit (≤ 7 rows: one statement per cell,
``INSERT … SELECT ancestors … ON CONFLICT DO UPDATE n = n + delta``). Who calls what:

- a person is created → :func:`person_added`; their unit or group changes → :func:`person_changed`;
- a decision recognises or is revoked → :func:`recognition_changed` (before the evaluations change);
- training attendance changes → :func:`attendance_changed`;
- a subtree moves → :func:`subtree_detached` before the closure rewrite, :func:`subtree_attached` after;
- bulk loads (imports, the benchmark generator) and repairs → :func:`rebuild` (``cdht rebuild-aggregates``).

Concurrent writers meet on the ancestors' rows (the nation's above all); each takes its row locks in the
same order (sorted cells), so they queue rather than deadlock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Select, and_, delete, func, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates.models import AggregateCount
from app.evaluations.models import Evaluation, RecognitionDecision, Status
from app.orgs.models import OrgUnitClosure
from app.people.models import Person
from app.trainings.models import Attendance, TrainingSession

PEOPLE, RECOGNISED, TRAINED = "people", "recognised", "trained"
NO_LEVEL = ""
COLUMNS = ["org_unit_id", "year", "kind", "grp", "level", "n"]

# (year, kind, group, level) → change in the number of people
Cell = tuple[int, str, str, str]


def _upsert(session: AsyncSession, rows: Select) -> object:  # type: ignore[type-arg]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(AggregateCount).from_select(COLUMNS, rows)
    return stmt.on_conflict_do_update(
        index_elements=["org_unit_id", "year", "kind", "grp", "level"],
        set_={"n": AggregateCount.n + stmt.excluded.n},
    )


async def add(session: AsyncSession, unit_id: int, cells: Mapping[Cell, int]) -> None:
    """Add each cell's delta to ``unit_id`` and every unit above it."""
    for (year, kind, group, level), delta in sorted(cells.items()):
        if not delta:
            continue
        rows = select(
            OrgUnitClosure.ancestor_id,
            literal(year),
            literal(kind),
            literal(group),
            literal(level),
            literal(delta),
        ).where(OrgUnitClosure.descendant_id == unit_id)
        await session.execute(_upsert(session, rows))


async def add_many(session: AsyncSession, changes: Iterable[tuple[int, Cell, int]]) -> None:
    """Group (unit, cell, delta) changes by unit and cell, then apply them."""
    totals: Counter[tuple[int, Cell]] = Counter()
    for unit_id, cell, delta in changes:
        totals[(unit_id, cell)] += delta
    by_unit: dict[int, dict[Cell, int]] = {}
    for (unit_id, cell), delta in totals.items():
        by_unit.setdefault(unit_id, {})[cell] = delta
    for unit_id in sorted(by_unit):
        await add(session, unit_id, by_unit[unit_id])


async def person_added(session: AsyncSession, unit_id: int, group: str, count: int = 1) -> None:
    await add(session, unit_id, {(0, PEOPLE, group, NO_LEVEL): count})


async def _contribution(session: AsyncSession, person_id: int, group: str) -> dict[Cell, int]:
    """Every cell one person counts in (as a member of ``group``)."""
    cells: Counter[Cell] = Counter({(0, PEOPLE, group, NO_LEVEL): 1})
    recognised = (
        select(Evaluation.year, Evaluation.digital_level)
        .join(RecognitionDecision, RecognitionDecision.id == Evaluation.decision_id)
        .where(
            Evaluation.person_id == person_id,
            Evaluation.status == Status.RECOGNISED.value,
            RecognitionDecision.status == "active",
        )
    )
    for year, level in (await session.execute(recognised)).all():
        cells[(year, RECOGNISED, group, level or NO_LEVEL)] += 1
    trained = (
        select(TrainingSession.year)
        .join(Attendance, Attendance.session_id == TrainingSession.id)
        .where(Attendance.person_id == person_id)
        .distinct()
    )
    for year in (await session.scalars(trained)).all():
        cells[(year, TRAINED, group, NO_LEVEL)] += 1
    return dict(cells)


async def person_changed(
    session: AsyncSession, person_id: int, old: tuple[int, str], new: tuple[int, str]
) -> None:
    """Move everything a person counts in from their old (unit, group) to the new one."""
    if old == new:
        return
    await add_many(
        session,
        [(old[0], cell, -n) for cell, n in (await _contribution(session, person_id, old[1])).items()]
        + [(new[0], cell, n) for cell, n in (await _contribution(session, person_id, new[1])).items()],
    )


async def recognition_changed(session: AsyncSession, evaluation_ids: Sequence[int], sign: int) -> None:
    """+1 (recognised) or −1 (recognition withdrawn) for each evaluation, in its person's unit and group.
    Call it while the evaluations still hold the year and digital level being counted."""
    if not evaluation_ids:
        return
    stmt = (
        select(Person.org_unit_id, Person.group, Evaluation.year, Evaluation.digital_level)
        .join(Person, Person.id == Evaluation.person_id)
        .where(Evaluation.id.in_(list(evaluation_ids)))
    )
    await add_many(
        session,
        (
            (unit, (year, RECOGNISED, group, level or NO_LEVEL), sign)
            for unit, group, year, level in await session.execute(stmt)
        ),
    )


async def trained_people(session: AsyncSession, person_ids: Sequence[int], year: int) -> set[int]:
    """Of ``person_ids``, those who attended at least one session held in ``year``."""
    if not person_ids:
        return set()
    stmt = (
        select(Attendance.person_id)
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .where(Attendance.person_id.in_(list(person_ids)), TrainingSession.year == year)
        .distinct()
    )
    return set((await session.scalars(stmt)).all())


async def attendance_changed(session: AsyncSession, year: int, before: set[int], after: set[int]) -> None:
    """``before``/``after``: who among the affected people counted as trained in ``year``."""
    changed = (after - before) | (before - after)
    if not changed:
        return
    stmt = select(Person.id, Person.org_unit_id, Person.group).where(Person.id.in_(changed))
    await add_many(
        session,
        (
            (unit, (year, TRAINED, group, NO_LEVEL), 1 if pid in after else -1)
            for pid, unit, group in await session.execute(stmt)
        ),
    )


async def _shift(session: AsyncSession, unit_id: int, sign: int) -> None:
    """Add (sign=+1) or remove (−1) the subtree's own cells to/from every unit strictly above it."""
    own = select(AggregateCount).where(AggregateCount.org_unit_id == unit_id).subquery("own")
    rows = (
        select(OrgUnitClosure.ancestor_id, own.c.year, own.c.kind, own.c.grp, own.c.level, own.c.n * sign)
        .select_from(OrgUnitClosure)
        .join(own, literal(True))
        .where(OrgUnitClosure.descendant_id == unit_id, OrgUnitClosure.depth > 0)
        .order_by(OrgUnitClosure.ancestor_id)
    )
    await session.execute(_upsert(session, rows))


async def subtree_detached(session: AsyncSession, unit_id: int) -> None:
    await _shift(session, unit_id, -1)


async def subtree_attached(session: AsyncSession, unit_id: int) -> None:
    await _shift(session, unit_id, +1)


async def rebuild(session: AsyncSession) -> None:
    """Recompute every counter from the tables: per unit first (small), then rolled up the closure."""
    await session.flush()
    await session.execute(delete(AggregateCount))
    # The '' is rendered inline, not bound: PostgreSQL matches the SELECT and GROUP BY expressions only when
    # they are identical, and two bound parameters ($2, $5) are not.
    level = func.coalesce(Evaluation.digital_level, literal(NO_LEVEL, literal_execute=True))
    direct = [
        select(
            Person.org_unit_id.label("unit"),
            literal(0).label("year"),
            literal(PEOPLE).label("kind"),
            Person.group.label("grp"),
            literal(NO_LEVEL).label("level"),
            func.count().label("n"),
        ).group_by(Person.org_unit_id, Person.group),
        select(
            Person.org_unit_id,
            Evaluation.year,
            literal(RECOGNISED),
            Person.group,
            level,
            func.count(),
        )
        .select_from(Evaluation)
        .join(Person, Person.id == Evaluation.person_id)
        .join(RecognitionDecision, RecognitionDecision.id == Evaluation.decision_id)
        .where(and_(Evaluation.status == Status.RECOGNISED.value, RecognitionDecision.status == "active"))
        .group_by(
            Person.org_unit_id,
            Evaluation.year,
            Person.group,
            level,
        ),
    ]
    trained_pairs = (
        select(Attendance.person_id.label("person_id"), TrainingSession.year.label("year"))
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .distinct()
        .subquery("trained_pairs")
    )
    direct.append(
        select(
            Person.org_unit_id,
            trained_pairs.c.year,
            literal(TRAINED),
            Person.group,
            literal(NO_LEVEL),
            func.count(),
        )
        .select_from(trained_pairs)
        .join(Person, Person.id == trained_pairs.c.person_id)
        .group_by(Person.org_unit_id, trained_pairs.c.year, Person.group)
    )
    # One statement, in key order: each unit's cells land together on a page or two of the heap, so the
    # dashboards' reads (one unit's cells, or those of each child) touch few pages.
    d = union_all(*direct).subquery("direct")
    cells = (d.c.year, d.c.kind, d.c.grp, d.c.level)
    rolled = (
        select(OrgUnitClosure.ancestor_id, *cells, func.sum(d.c.n))
        .select_from(d)
        .join(OrgUnitClosure, OrgUnitClosure.descendant_id == d.c.unit)
        .where(literal(True))
        .group_by(OrgUnitClosure.ancestor_id, *cells)
        .order_by(OrgUnitClosure.ancestor_id, *cells)
    )
    await session.execute(_upsert(session, rolled))
