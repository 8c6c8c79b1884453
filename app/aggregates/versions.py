"""Keeping ``aggregate_versions``: a change counter per unit and year of ``aggregate_counts``.

``changed_since_submission`` must say whether a subtree's counted numbers still equal those a report
submission froze. Fingerprinting the counters of every submitted child on each read costs a province's
whole counter table (~85,000 rows); comparing one number per child and year costs a few rows. So:

- every statement of ``counters.py`` that writes cells returns the (unit, year) pairs it touched, and
  :func:`touched` notes them on the session;
- when the transaction commits (:func:`_bump_before_commit`), each noted pair's version goes up by one,
  in one statement in key order, last — the hot rows (the nation's) are held only for that statement;
- :func:`totals` sums a unit's versions over the years ≤ Y (the cells year Y reads). A submission keeps
  that sum, read *before* its counts: a change committed after the sum was read bumps it again, so an
  equal sum later proves the counts are the ones the submission saw. A different sum only means "maybe":
  the reader recounts the fingerprint of those units (``reporting.repository.changed``).

:func:`bump_all` follows a full rebuild (every version moves; pairs without one get one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, event, func, literal, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app.aggregates import epochs
from app.aggregates.models import AggregateCount, AggregateVersion
from app.orgs.models import OrgUnit

PENDING = "cdht.aggregate_versions"
KEYS = ["org_unit_id", "year"]
CHUNK = 1000  # pairs per statement


def touched(session: AsyncSession | Session, pairs: Iterable[Sequence[Any]]) -> None:
    """Note (unit, year) pairs whose cells this transaction wrote (rows returned by a counters write)."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    pending: set[tuple[int, int]] = sync.info.setdefault(PENDING, set())
    pending.update((int(row[0]), int(row[1])) for row in pairs)


def _insert(dialect_name: str, rows: Select[int, int, int]) -> Any:
    """``rows`` (unit, year, 1) inserted, in key order (SQLite: an upsert's SELECT needs a WHERE)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    ordered = rows.where(literal(True)).order_by(*list(rows.selected_columns)[:2])
    return dialect.insert(AggregateVersion).from_select(["org_unit_id", "year", "version"], ordered)


def _flush_pending(session: Session) -> None:
    pending: set[tuple[int, int]] | None = session.info.pop(PENDING, None)
    if not pending:
        return
    dialect = session.get_bind().dialect.name
    ordered = sorted(pending)
    for start in range(0, len(ordered), CHUNK):
        given = union_all(
            *(
                select(literal(u).label("unit"), literal(y).label("year"))
                for u, y in ordered[start : start + CHUNK]
            )
        ).subquery("given")
        # Joined with the units: a pair noted in a savepoint that rolled back (a dry run) may name a unit
        # that no longer exists; for one that does, a needless bump only costs one recount.
        existing = select(given.c.unit, given.c.year, literal(1)).join(OrgUnit, OrgUnit.id == given.c.unit)
        stmt = _insert(dialect, existing)
        session.execute(
            stmt.on_conflict_do_update(index_elements=KEYS, set_={"version": AggregateVersion.version + 1})
        )


@event.listens_for(Session, "before_commit")
def _bump_before_commit(session: Session) -> None:
    _flush_pending(session)
    epochs.flush_pending(session)  # after the versions, in every process: one lock order


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(PENDING, None)


async def bump_all(session: AsyncSession) -> None:
    """After every counter was recounted: every version moves, and every (unit, year) with cells has one."""
    session.sync_session.info.pop(PENDING, None)
    await session.execute(update(AggregateVersion).values(version=AggregateVersion.version + 1))
    pairs = select(AggregateCount.org_unit_id, AggregateCount.year, literal(1)).group_by(
        AggregateCount.org_unit_id, AggregateCount.year
    )
    stmt = _insert(session.get_bind().dialect.name, pairs)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=KEYS))
    await epochs.bump_all(session)


async def totals(session: AsyncSession, unit_ids: Sequence[int], year: int) -> dict[int, int]:
    """Each unit's versions summed over the years ≤ ``year`` (0 for a unit never counted); this
    transaction's own pending changes are applied first, so it reads its own writes."""
    await session.run_sync(_flush_pending)
    found = {unit_id: 0 for unit_id in unit_ids}
    for start in range(0, len(unit_ids), 5_000):
        stmt = (
            select(AggregateVersion.org_unit_id, func.sum(AggregateVersion.version))
            .where(
                AggregateVersion.org_unit_id.in_(list(unit_ids[start : start + 5_000])),
                AggregateVersion.year <= year,
            )
            .group_by(AggregateVersion.org_unit_id)
        )
        for unit_id, total in (await session.execute(stmt)).all():
            found[unit_id] = int(total)
    return found
