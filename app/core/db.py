"""Engine, sessions and the declarative ``Base``.

One transaction per request: :func:`get_session` is a *function-scoped* dependency, so its exit (the
commit) runs when the endpoint returns and before the response is sent; a failed commit therefore becomes
the response instead of being lost after a 2xx went out.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from app.core.config import Settings, to_async_url
from app.core.errors import AppError

log = logging.getLogger("cdht.db")

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
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
        server_settings = {"application_name": "cdht"}
        if settings is not None:
            # Bounds every statement (aggregates included) so one runaway query cannot hold the pool.
            server_settings["statement_timeout"] = str(settings.statement_timeout_ms)
        kwargs["connect_args"] = {"server_settings": server_settings}
    if not pool:
        kwargs["poolclass"] = NullPool
    engine = create_async_engine(async_url, **kwargs)
    if async_url.startswith("sqlite"):
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite/aiosqlite emit BEGIN lazily and break SAVEPOINT handling; take over transaction control
    # (the recipe in SQLAlchemy's SQLite dialect docs), and switch on foreign keys, which SQLite leaves off.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


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
async def unit_of_work(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: commit at the end, roll back on error (unless the error asks to keep changes),
    then run the commit or rollback hooks."""
    async with sessionmaker() as session:
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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed once, after the endpoint, before the response."""
    async with unit_of_work(request.app.state.sessionmaker) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
