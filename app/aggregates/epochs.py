"""Keeping ``change_epochs``: one change counter for the tables the dashboards read besides the counters
(``reference``: the tree, plans and targets, reporting calendars and submissions) and one for the records
behind the annual report (``records``: people, evaluations, decisions, households, trainings…).

The counters' own changes are kept per unit and year by ``versions.py``; these two cover the rest, so a
dashboard's ETag (``freshness.py``) changes whenever anything its body reads has changed:

- every write of a session is noted by table: ORM flushes (the objects a commit is about to flush, too —
  the session does not autoflush) and statements run through the session (``insert``/``update``/
  ``delete``, or SQL text, which counts as both kinds);
- when the transaction commits, the noted kinds' epochs go up by one, in one statement, after the
  counters' versions (``versions._bump_before_commit`` calls :func:`flush_pending`: one lock order for
  every process).

Tables that no dashboard reads (sign-in, idempotency, audit, jobs, webhooks, the counters themselves) move
nothing; an unknown table moves both, so a table added later errs on the side of a fresh answer.
"""

from __future__ import annotations

import functools
from itertools import chain
from typing import Any

from sqlalchemy import TextClause, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, object_mapper

from app.aggregates.models import ChangeEpoch

REFERENCE = "reference"
RECORDS = "records"
KINDS = (REFERENCE, RECORDS)
PENDING = "cdht.change_epochs"

# What progress, breakdown, trend and completeness read besides aggregate_counts (grep their repositories:
# aggregates, orgs.history, plans, reporting).
REFERENCE_TABLES = frozenset(
    {
        "org_units",
        "org_unit_links",
        "org_unit_closure",
        "org_unit_former_names",
        "org_unit_successions",
        "reorganisations",
        "reorganisation_units",
        "plans",
        "plan_targets",
        "reporting_calendars",
        "report_submissions",
        "counter_state",
    }
)
# Never in a dashboard's body: the counters (their versions move instead), who may sign in and how, and
# the bookkeeping of requests, jobs, alerts and webhooks.
IGNORED_TABLES = frozenset(
    {
        "aggregate_counts",
        "aggregate_versions",
        "change_epochs",
        "review_queue_counts",
        "users",
        "role_assignments",
        "refresh_tokens",
        "login_attempts",
        "idempotency_records",
        "audit_entries",
        "import_jobs",
        "import_records",
        "raised_alerts",
        "webhook_subscriptions",
        "webhook_events",
        "webhook_deliveries",
    }
)
_DML = ("INSERT", "UPDATE", "DELETE", "WITH", "REPLACE")


def kinds_of(table: str | None) -> tuple[str, ...]:
    """The epochs a write to ``table`` moves (``None``: a table not known, so both)."""
    if table is None:
        return KINDS
    if table in IGNORED_TABLES:
        return ()
    return (REFERENCE,) if table in REFERENCE_TABLES else (RECORDS,)


def _note(session: Session, kinds: tuple[str, ...]) -> None:
    if kinds:
        pending: set[str] = session.info.setdefault(PENDING, set())
        pending.update(kinds)


def _table_of(entity: Any) -> str | None:
    name = getattr(object_mapper(entity).local_table, "name", None)
    return name if isinstance(name, str) else None


def _note_objects(session: Session) -> None:
    dirty = (o for o in session.dirty if session.is_modified(o, include_collections=False))
    for entity in chain(session.new, dirty, session.deleted):
        _note(session, kinds_of(_table_of(entity)))


@event.listens_for(Session, "before_flush")
def _flushing(session: Session, _context: Any, _instances: Any) -> None:
    _note_objects(session)


@event.listens_for(Session, "do_orm_execute")
def _executing(state: ORMExecuteState) -> None:
    statement = state.statement
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(statement, "table", None)
        _note(state.session, kinds_of(getattr(table, "name", None)))
    elif isinstance(statement, TextClause) and statement.text.lstrip().upper().startswith(_DML):
        _note(state.session, KINDS)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(PENDING, None)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    session.info.pop(PENDING, None)  # noted by the commit's own flush, already counted


def flush_pending(session: Session) -> None:
    """Move the epochs this transaction's writes noted (called as it commits, by ``versions.py``). The
    objects still to be flushed count too: the commit flushes them after this."""
    _note_objects(session)
    pending: set[str] | None = session.info.pop(PENDING, None)
    if pending:
        session.execute(
            update(ChangeEpoch)
            .where(ChangeEpoch.kind.in_(sorted(pending)))
            .values(epoch=ChangeEpoch.epoch + 1)
            .execution_options(synchronize_session=False)
        )


async def bump_all(session: AsyncSession) -> None:
    """Every epoch moves: with a full rebuild of the counters (``versions.bump_all``), which follows bulk
    loads that bypassed the session (the benchmarks' COPY)."""
    await session.execute(update(ChangeEpoch).values(epoch=ChangeEpoch.epoch + 1))


@functools.cache
def current() -> dict[str, Any]:
    """The epochs as scalar subqueries, built once: a dashboard's ETag reads them (``change_counters``)."""
    return {
        kind: select(ChangeEpoch.epoch).where(ChangeEpoch.kind == kind).scalar_subquery() for kind in KINDS
    }
