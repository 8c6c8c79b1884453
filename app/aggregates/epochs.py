"""Keeping ``change_epochs``: one change counter for the tables the dashboards read besides the counters
(``reference``: the tree, plans and targets, reporting calendars and submissions) and one for the records
behind the annual report (``records``: people, evaluations, decisions, households, trainings…).

The counters' own changes are kept per unit and year by ``versions.py``; these two cover the rest, so a
dashboard's ETag (``freshness.py``) changes whenever anything its body reads has changed:

- every write of a session is noted by table (``core/writes.py``: ORM flushes, the objects a commit is
  about to flush, and statements run through the session; SQL text counts as both kinds);
- when the transaction commits, the noted kinds' epochs go up by one, in one statement, after the
  counters' versions (``versions._bump_before_commit`` calls :func:`flush_pending`: one lock order for
  every process).

Tables that no dashboard reads (sign-in, idempotency, audit, jobs, webhooks, the counters themselves) move
nothing; an unknown table moves both, so a table added later errs on the side of a fresh answer.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.aggregates.models import ChangeEpoch
from app.core import writes

REFERENCE = "reference"
RECORDS = "records"
KINDS = (REFERENCE, RECORDS)

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


def kinds_of(table: str | None) -> tuple[str, ...]:
    """The epochs a write to ``table`` moves (``None``: a table not known, so both)."""
    if table is None:
        return KINDS
    if table in IGNORED_TABLES:
        return ()
    return (REFERENCE,) if table in REFERENCE_TABLES else (RECORDS,)


_EPOCHS = cast(Table, ChangeEpoch.__table__)  # declarative types it as any FromClause
# Every writing commit runs it: built once, on the table rather than the entity (the ORM's bulk UPDATE
# costs a third more in Python, for rows no session holds).
_BUMP = (
    update(_EPOCHS)
    .where(_EPOCHS.c.kind.in_(bindparam("kinds", expanding=True)))
    .values(epoch=_EPOCHS.c.epoch + 1)
)


def flush_pending(session: Session) -> None:
    """Move the epochs of the tables this transaction wrote (called as it commits, by ``versions.py``).
    The objects still to be flushed count too: the commit flushes them after this."""
    pending = {kind for table in writes.written(session) for kind in kinds_of(table)}
    if pending:
        session.execute(_BUMP, {"kinds": sorted(pending)})


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
