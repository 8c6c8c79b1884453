"""Write marks: when a user's requests last changed rows (``users.last_write_at``), for read-your-writes.

With read replicas (``app/core/replicas.py``) a dashboard read may be served by a replica a few seconds
behind the primary; a user who has just written must still see the write. So while replicas are
configured, an authenticated request's session is tracked (:func:`track`) and, when its transaction
commits having changed rows, the same transaction sets the caller's ``last_write_at`` to the primary's
clock. The caller's identity is read with the mark and the primary's ``now()`` (``repository.subject_rows``,
one statement), so the request knows how long ago its caller wrote at no extra round trip. A process keeps
that subject between requests (``subjects.py``): the mark writes ``users``, so every process drops its
copies once the marking transaction has committed, and a kept subject's time since the write is aged by
the time it was kept.

"Changed rows": an ORM flush that wrote something, an ORM-enabled ``insert``/``update``/``delete``
statement, or objects still pending at commit. A statement that matched no row still counts: a needless
mark only keeps that user's reads on the primary for one window.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import event, func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction

from app.auth.models import User

WRITER = "cdht.writer"  # session.info: the user whose writes are marked
WROTE = "cdht.wrote"  # session.info: this transaction changed rows


def track(session: AsyncSession, user_id: int) -> None:
    """Mark ``user_id``'s write when this session's transaction commits a change."""
    session.info[WRITER] = user_id


def _note(session: Session) -> None:
    if WRITER in session.info:
        session.info[WROTE] = True


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _flush_context: UOWTransaction) -> None:
    _note(session)  # a flush with nothing to write does not get this far


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        _note(state.session)


@event.listens_for(Session, "before_commit")
def _mark(session: Session) -> None:
    user_id = session.info.get(WRITER)
    if user_id is None:
        return
    if not (session.info.pop(WROTE, False) or session.new or session.dirty or session.deleted):
        return
    # clock_timestamp(): the moment of marking, just before COMMIT, not the transaction's start (now()),
    # which a long request would date too early. updated_at is kept: the mark is not an edit of the user.
    postgres = session.get_bind().dialect.name == "postgresql"
    stmt = (
        update(User)
        .where(User.id == user_id)
        .values(last_write_at=func.clock_timestamp() if postgres else func.now(), updated_at=User.updated_at)
        .execution_options(synchronize_session=False)
    )
    session.execute(stmt)
    session.info.pop(WROTE, None)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    session.info.pop(WROTE, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(WROTE, None)


def seconds_since(last_write_at: datetime | None, now: datetime) -> float | None:
    """How long before ``now`` (the primary's clock) the mark was set; None without a mark."""
    if last_write_at is None:
        return None
    return max(0.0, (now - last_write_at).total_seconds())
