"""Engine, sessions and the declarative ``Base``.

One transaction per request: :func:`get_session` is a *function-scoped* dependency, so its exit (the
commit) runs when the endpoint returns and before the response is sent; a failed commit therefore becomes
the response instead of being lost after a 2xx went out.

SQLite allows one writer at a time. A transaction that begins as a reader and later writes cannot wait for
the lock (SQLite answers ``database is locked`` at once, whatever the busy timeout), so every transaction
that may write begins with ``BEGIN IMMEDIATE``: it takes the write lock first, waiting its turn behind the
busy timeout, and writers queue instead of failing. Requests with unsafe methods and :func:`unit_of_work`
(workers, commands) are such transactions; GET requests stay plain readers, which WAL never blocks.

A GET, HEAD or OPTIONS request only reads (:func:`get_session`): its session refuses to write (a
:class:`ReadOnlySession` error, whatever the database, for a flush of ORM changes or an insert, update or
delete statement, through the session or :func:`rows_of`; raw ``text()`` SQL is not inspected), and on
PostgreSQL its statements run without a transaction of their own (``AUTOCOMMIT``): no ``BEGIN`` and
``COMMIT`` round trips. Each statement sees the latest committed state, as each statement of a READ
COMMITTED transaction already did.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any
from weakref import WeakKeyDictionary

from fastapi import Depends, Request
from pydantic_core import from_json
from sqlalchemy import DateTime, MetaData, event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, ORMExecuteState, Session
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeDecorator

from app.core import driver_reads, sqlite_driver
from app.core.config import Settings, to_async_url
from app.core.errors import AppError

log = logging.getLogger("cdht.db")

# The execution option that asks SQLite for ``BEGIN IMMEDIATE``: carried by the engine copy that write
# sessions are bound to (:func:`open_session`), so each of their connections has it before its BEGIN.
WRITE_OPTION = "cdht_write"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SQLITE_BUSY_TIMEOUT_MS = 30_000

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str, *, settings: Settings | None = None, pool: bool = True) -> AsyncEngine:
    """Create the async engine for a plain URL, with the per-dialect connection setup."""
    async_url = to_async_url(url)
    kwargs: dict[str, Any] = {}
    if async_url.startswith("sqlite"):
        # The driver-level connections: sqlite3 in the loop's thread instead of aiosqlite's thread hops.
        database = make_url(async_url).database or ":memory:"
        kwargs["async_creator"] = partial(
            sqlite_driver.connect, database, busy_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000
        )
    else:
        # No ``pool_pre_ping``: it costs a round trip before every checkout. A connection the server closed
        # is found dead by its first statement instead; the pool then drops it and every connection as old,
        # and the authenticated request reads its subject again on a fresh one (``auth.deps.get_subject``).
        if pool and settings is not None:
            kwargs["pool_size"] = settings.db_pool_size
            kwargs["max_overflow"] = settings.db_max_overflow
        server_settings = {"application_name": "cdht"}
        if settings is not None:
            # Bounds every statement (aggregates included) so one runaway query cannot hold the pool.
            server_settings["statement_timeout"] = str(settings.statement_timeout_ms)
        kwargs["connect_args"] = {"server_settings": server_settings}
    if not pool:
        kwargs["poolclass"] = NullPool
    # JSON columns (a result's failing indicators, audit snapshots) parsed by pydantic's core: ~0.1 µs a
    # value against ~1 µs for the standard library's json.loads (a page of 50 evaluations reads 50).
    kwargs["json_deserializer"] = from_json
    engine = create_async_engine(async_url, **kwargs)
    if async_url.startswith("sqlite"):
        _configure_sqlite(engine)
    else:
        event.listen(engine.sync_engine, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, ``pg_terminate_backend``, an idle timeout: the
    loop has read its goodbye) is replaced at checkout, at no round trip: the pool discards it and checks
    out another. A request whose caller is kept (``auth/subjects.py``) reads no subject first, so nothing
    would retry its first statement on such a connection."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite/aiosqlite emit BEGIN lazily and break SAVEPOINT handling; take over transaction control
    # (the recipe in SQLAlchemy's SQLite dialect docs), and switch on foreign keys, which SQLite leaves off.
    # WAL lets readers go on while one writer writes. The connections are in autocommit mode and wait for
    # the lock without blocking the loop (app/core/sqlite_driver.py).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writes = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# Copies of an engine with execution options (same pool), made once per engine and options.
_engine_copies: WeakKeyDictionary[AsyncEngine, dict[tuple[tuple[str, Any], ...], AsyncEngine]] = (
    WeakKeyDictionary()
)
READ_ONLY = "cdht_read_only"  # Session.info key of a session that must not write (:func:`open_session`)


class ReadOnlySession(RuntimeError):
    """A write attempted in a session that only reads (a GET request's): a programming error."""


def _engine_with(engine: AsyncEngine, **options: Any) -> AsyncEngine:
    copies = _engine_copies.setdefault(engine, {})
    key = tuple(sorted(options.items()))
    copy = copies.get(key)
    if copy is None:
        copy = copies[key] = engine.execution_options(**options)
    return copy


def open_session(
    sessionmaker: async_sessionmaker[AsyncSession], *, write: bool, read_only: bool = False
) -> AsyncSession:
    """A session whose transaction, on SQLite, takes the write lock when it begins (``write``) or only
    reads: a write session is bound to a copy of the engine carrying :data:`WRITE_OPTION` (same pool).
    ``read_only`` (a safe request's): writes are refused, and on PostgreSQL the session is bound to an
    ``AUTOCOMMIT`` copy of the engine (same pool), so its reads need no BEGIN and COMMIT."""
    bind = sessionmaker.kw.get("bind")
    # A session bound to a connection joins the transaction that connection has begun already (the tests'
    # savepoints), so there is no BEGIN of its own to choose.
    dialect = bind.dialect.name if isinstance(bind, AsyncEngine) else None
    if isinstance(bind, AsyncEngine) and write and dialect == "sqlite":
        session = sessionmaker(bind=_engine_with(bind, **{WRITE_OPTION: True}))
    elif isinstance(bind, AsyncEngine) and read_only and dialect == "postgresql":
        session = sessionmaker(bind=_engine_with(bind, isolation_level="AUTOCOMMIT"))
    else:
        session = sessionmaker()
    if read_only:
        session.info[READ_ONLY] = True
    return session


@event.listens_for(Session, "before_flush")
def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise ReadOnlySession("A read-only (GET) request tried to write rows.")


@event.listens_for(Session, "do_orm_execute")
def _refuse_dml(state: ORMExecuteState) -> None:
    if state.session.info.get(READ_ONLY) and (state.is_insert or state.is_update or state.is_delete):
        raise ReadOnlySession("A read-only (GET) request tried to write rows.")


async def rows_of(
    session: AsyncSession, stmt: Executable, params: Mapping[str, Any] | None = None
) -> list[Sequence[Any]]:
    """``stmt``'s plain rows (each a sequence of its columns' values, in the select's order), run on the
    session's connection (same transaction) rather than through the ORM's execution, which would load
    every row through its instance loader and run the session's execute events: ~90 µs a statement plus
    a few per row on PostgreSQL (README, issue #15's "Rows without the ORM's execution"); on PostgreSQL
    a select goes straight to the driver where that is the same (``core/driver_reads``: ~110 µs less).
    For selects of columns, not of entities (they come back as ORM objects only through
    ``session.execute``). A session that may write has its pending changes flushed first, as
    ``session.execute`` would (autoflush); a read-only one refuses an insert, update or delete here too
    (the ``do_orm_execute`` check below does not see this path)."""
    if not session.info.get(READ_ONLY):
        await session.flush()
    elif isinstance(stmt, UpdateBase):
        raise ReadOnlySession("A read-only (GET) request tried to write rows.")
    return await driver_reads.rows(await session.connection(), stmt, params)


def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the unit of work has committed (e.g. delete a file the change released)."""
    session.info.setdefault("on_commit", []).append(callback)


def on_rollback(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` if the unit of work rolls back (e.g. delete a file written for a lost change)."""
    session.info.setdefault("on_rollback", []).append(callback)


def _run_hooks(session: AsyncSession, which: str) -> None:
    hooks = session.info.pop(which, [])
    session.info.pop("on_rollback" if which == "on_commit" else "on_commit", None)
    for hook in hooks:
        try:
            hook()
        except Exception:  # a failed clean-up must not turn a finished request into an error
            log.exception("%s hook failed", which)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession], *, write: bool = True, read_only: bool = False
) -> AsyncIterator[AsyncSession]:
    """One transaction: commit at the end, roll back on error (unless the error asks to keep changes),
    then run the commit or rollback hooks. ``write=False`` marks a transaction that only reads (on SQLite
    it then does not queue for the write lock); ``read_only`` a session that may not write at all
    (:func:`open_session`)."""
    if read_only:
        async with _reading(sessionmaker) as session:
            yield session
        return
    async with open_session(sessionmaker, write=write) as session:
        try:
            yield session
            await session.commit()
        except AppError as exc:
            if exc.keep_changes:
                await session.commit()
                _run_hooks(session, "on_commit")
            else:
                await session.rollback()
                _run_hooks(session, "on_rollback")
            raise
        except BaseException:
            await session.rollback()
            _run_hooks(session, "on_rollback")
            raise
        _run_hooks(session, "on_commit")


@asynccontextmanager
async def _reading(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """:func:`unit_of_work` for a session that may not write: nothing to commit, so it is only closed (its
    connection goes back to the pool), and not even that when it ran no statement."""
    session = open_session(sessionmaker, write=False, read_only=True)
    try:
        yield session
    except BaseException:
        await session.close()
        _run_hooks(session, "on_rollback")
        raise
    if session.in_transaction():
        await session.close()
    _run_hooks(session, "on_commit")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed once, after the endpoint, before the response. Requests with
    unsafe methods may write, so on SQLite they queue for the write lock when their transaction begins;
    safe ones only read (no transaction of their own on PostgreSQL, writes refused)."""
    write = request.method not in SAFE_METHODS
    async with unit_of_work(request.app.state.sessionmaker, write=write, read_only=not write) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
