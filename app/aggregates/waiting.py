"""Keeping ``review_queue_counts`` (the evaluations waiting for the committee, per subtree, year and day
submitted) equal to a recount.

The queue is read by the ``review_waiting`` alert for every listed unit at once; counting the waiting rows
of a subtree (a province holds hundreds of thousands in November) cannot be fast, summing a few hundred
rolled-up days can. It follows two things:

- **the evaluations' rows**: whatever path changes one (a workflow step, a demo, a repair), the session's
  flush brings the change here (:func:`_follow`): the row's old place in the queue (read from the
  database, as it is before the flush) counts −1, its new place +1, at its unit and every ancestor of
  today's tree;
- **today's tree**: a subtree that moves takes its own rows from the ancestors it leaves to those it joins
  (:func:`subtree_moved`, called by ``orgs.repository.move_subtree``).

:func:`rebuild` recounts everything (``cdht rebuild-aggregates``, ``counters.rebuild``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, delete, event, func, inspect, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from app.aggregates.models import ReviewQueueCount
from app.core.dates import utc_date
from app.evaluations.models import Evaluation, Status
from app.orgs.models import OrgUnit, OrgUnitClosure

WAITING = frozenset({Status.SUBMITTED.value, Status.IN_REVIEW.value})
COLUMNS = ["org_unit_id", "year", "submitted_on", "n"]
KEYS = COLUMNS[:-1]
# What places an evaluation in the queue: a change to any of these moves it.
FOLLOWED = ("status", "submitted_at", "org_unit_id", "year")
CHUNK = 500  # places per statement


class Place(NamedTuple):
    """Where one waiting evaluation counts: its unit (and every ancestor), its year, its day submitted."""

    org_unit_id: int
    year: int
    submitted_on: date


@dataclass(frozen=True)
class Waiting:
    """A NamedTuple could not name a field ``count`` (it would hide ``tuple.count``)."""

    count: int
    oldest: date


def place(
    status: str | None, org_unit_id: int | None, year: int | None, submitted_at: datetime | None
) -> Place | None:
    if status not in WAITING or org_unit_id is None or year is None or submitted_at is None:
        return None
    return Place(org_unit_id, year, submitted_at.astimezone(UTC).date())


def _upsert(dialect_name: str, rows: Select[*tuple[Any, ...]]) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(ReviewQueueCount).from_select(COLUMNS, rows)
    return stmt.on_conflict_do_update(index_elements=KEYS, set_={"n": ReviewQueueCount.n + stmt.excluded.n})


def _deltas_statement(dialect_name: str, deltas: Sequence[tuple[Place, int]]) -> Any:
    """The places' deltas added at each place's unit and every ancestor of today's tree, in key order."""
    given = union_all(
        *(
            select(
                literal(p.org_unit_id).label("unit"),
                literal(p.year).label("year"),
                literal(p.submitted_on, ReviewQueueCount.submitted_on.type).label("day"),
                literal(n).label("n"),
            )
            for p, n in deltas
        )
    ).subquery("given")
    rows = (
        select(OrgUnitClosure.ancestor_id, given.c.year, given.c.day, func.sum(given.c.n))
        .join(given, OrgUnitClosure.descendant_id == given.c.unit)
        .group_by(OrgUnitClosure.ancestor_id, given.c.year, given.c.day)
        .order_by(OrgUnitClosure.ancestor_id, given.c.year, given.c.day)
    )
    return _upsert(dialect_name, rows)


def _apply(session: Session, deltas: Counter[Place]) -> None:
    changed = sorted((p, n) for p, n in deltas.items() if n)
    for start in range(0, len(changed), CHUNK):
        session.execute(_deltas_statement(session.get_bind().dialect.name, changed[start : start + CHUNK]))


@event.listens_for(Session, "before_flush")
def _follow(session: Session, flush_context: UOWTransaction, instances: Iterable[Any] | None) -> None:
    """Before a flush writes evaluations, move them in the queue (the listener runs in the flush's
    transaction: the counts change with the rows or not at all)."""
    deltas: Counter[Place] = Counter()
    touched: dict[int, Evaluation | None] = {}
    for obj in session.new:
        if isinstance(obj, Evaluation):
            now = place(obj.status, obj.org_unit_id, obj.year, obj.submitted_at)
            if now is not None:
                deltas[now] += 1
    for obj in session.dirty:
        if isinstance(obj, Evaluation) and obj.id is not None:
            state = inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in FOLLOWED):
                touched[obj.id] = obj
    for obj in session.deleted:
        if isinstance(obj, Evaluation) and obj.id is not None:
            touched[obj.id] = None
    if touched:
        # As the rows stand before this flush (the session's own values are the new ones).
        stmt = select(
            Evaluation.id, Evaluation.status, Evaluation.org_unit_id, Evaluation.year, Evaluation.submitted_at
        ).where(Evaluation.id.in_(sorted(touched)))
        with session.no_autoflush:
            before = session.execute(stmt).all()
        for evaluation_id, status, org_unit_id, year, submitted_at in before:
            old = place(status, org_unit_id, year, submitted_at)
            if old is not None:
                deltas[old] -= 1
            obj = touched[evaluation_id]
            new = None if obj is None else place(obj.status, obj.org_unit_id, obj.year, obj.submitted_at)
            if new is not None:
                deltas[new] += 1
    if deltas:
        _apply(session, deltas)


async def subtree_moved(
    session: AsyncSession, unit_id: int, left: Sequence[int], joined: Sequence[int]
) -> None:
    """``unit_id``'s subtree leaves the ancestors ``left`` and joins ``joined`` in today's tree: its own
    rows (its subtree's queue) are taken from the first and added to the second."""
    dialect = session.get_bind().dialect.name
    own = select(ReviewQueueCount).where(ReviewQueueCount.org_unit_id == unit_id, ReviewQueueCount.n != 0)
    mine = own.subquery("mine")
    for ids, sign in ((left, -1), (joined, +1)):
        if not ids:
            continue
        rows = (
            select(OrgUnit.id, mine.c.year, mine.c.submitted_on, mine.c.n * sign)
            .select_from(OrgUnit)
            .join(mine, literal(True))
            .where(OrgUnit.id.in_(sorted(ids)))
            .order_by(OrgUnit.id, mine.c.year, mine.c.submitted_on)
        )
        await session.execute(_upsert(dialect, rows))


async def rebuild(session: AsyncSession) -> None:
    """Recount the whole queue from the evaluations."""
    await session.flush()
    await session.execute(delete(ReviewQueueCount))
    day = utc_date(Evaluation.submitted_at)
    rows = (
        select(OrgUnitClosure.ancestor_id, Evaluation.year, day, func.count())
        .join(Evaluation, Evaluation.org_unit_id == OrgUnitClosure.descendant_id)
        .where(Evaluation.status.in_(sorted(WAITING)), Evaluation.submitted_at.is_not(None))
        .group_by(OrgUnitClosure.ancestor_id, Evaluation.year, day)
    )
    await session.execute(_upsert(session.get_bind().dialect.name, rows))


async def totals(
    session: AsyncSession, unit_ids: Sequence[int], year: int, last_day: date
) -> dict[int, Waiting]:
    """For each of ``unit_ids``, the evaluations of ``year`` in its subtree submitted on or before
    ``last_day`` and still waiting, with the day the oldest of them was submitted."""
    found: dict[int, Waiting] = {}
    for start in range(0, len(unit_ids), 5_000):
        stmt = (
            select(
                ReviewQueueCount.org_unit_id,
                func.sum(ReviewQueueCount.n),
                func.min(ReviewQueueCount.submitted_on),
            )
            .where(
                ReviewQueueCount.org_unit_id.in_(list(unit_ids[start : start + 5_000])),
                ReviewQueueCount.year == year,
                ReviewQueueCount.submitted_on <= last_day,
                ReviewQueueCount.n > 0,
            )
            .group_by(ReviewQueueCount.org_unit_id)
        )
        for unit_id, n, oldest in (await session.execute(stmt)).all():
            found[unit_id] = Waiting(int(n), oldest)
    return found
