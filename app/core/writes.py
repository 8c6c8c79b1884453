"""The tables a session's transaction wrote, noted as it runs, for what must move when it commits.

Noted: ORM flushes (and, when asked, the objects a commit is about to flush: the session does not
autoflush) and statements run through the session: ``insert``/``update``/``delete`` by their table, SQL
text that writes as ``None``, "some table" (so a reader treats it as every table). Statements run on a
connection outside any session are not seen; the code that runs them says what it changed.

Two readers:

- the change epochs (``aggregates/epochs.py``), as the transaction commits (:func:`written`), in the same
  transaction;
- the process-shared generations (``core/generations.py``), once the transaction *has* committed
  (:func:`on_committed`): a cache in another process must not re-read before the commit is visible.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import Any

from sqlalchemy import TextClause, event
from sqlalchemy.orm import (
    InstanceState,
    ORMExecuteState,
    PassiveFlag,
    Session,
    SessionTransaction,
    object_mapper,
)
from sqlalchemy.orm.attributes import instance_state

WRITTEN = "cdht.written_tables"  # session.info: the tables this transaction wrote (None: unknown)
_DML = ("INSERT", "UPDATE", "DELETE", "WITH", "REPLACE")

Tables = frozenset[str | None]
_committed_hooks: list[Callable[[Tables], None]] = []


def on_committed(hook: Callable[[Tables], None]) -> None:
    """Call ``hook`` with the tables of every transaction that committed writes, after its commit."""
    _committed_hooks.append(hook)


def _note(session: Session, table: str | None) -> None:
    noted: set[str | None] = session.info.setdefault(WRITTEN, set())
    noted.add(table)


def _table_of(entity: Any) -> str | None:
    name = getattr(object_mapper(entity).local_table, "name", None)
    return name if isinstance(name, str) else None


def _changed(state: InstanceState[Any]) -> bool:
    """Whether a dirty object would be updated: what ``Session.is_modified(o, include_collections=False)``
    answers, asking only the attributes that were set (the others have no history), not all of them."""
    for key in state.committed_state:
        impl = state.manager[key].impl
        if hasattr(impl, "get_collection"):
            continue
        added, _, deleted = impl.get_history(state, state.dict, passive=PassiveFlag.NO_CHANGE)
        if added or deleted:
            return True
    return False


def _note_objects(session: Session) -> None:
    dirty = (o for o in session.dirty if _changed(instance_state(o)))
    for entity in chain(session.new, dirty, session.deleted):
        _note(session, _table_of(entity))


def written(session: Session) -> Tables:
    """The tables this transaction wrote so far, the objects its commit will flush included."""
    _note_objects(session)
    return frozenset(session.info.get(WRITTEN, ()))


@event.listens_for(Session, "before_flush")
def _flushing(session: Session, _context: Any, _instances: Any) -> None:
    _note_objects(session)


@event.listens_for(Session, "do_orm_execute")
def _executing(state: ORMExecuteState) -> None:
    statement = state.statement
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(getattr(statement, "table", None), "name", None)
        _note(state.session, table if isinstance(table, str) else None)
    elif isinstance(statement, TextClause) and statement.text.lstrip().upper().startswith(_DML):
        _note(state.session, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(WRITTEN, None)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    tables: set[str | None] | None = session.info.pop(WRITTEN, None)
    if tables:
        frozen = frozenset(tables)
        for hook in _committed_hooks:
            hook(frozen)
