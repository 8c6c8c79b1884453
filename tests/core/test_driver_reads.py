"""``core/driver_reads``: a select sent straight to asyncpg gives what SQLAlchemy's execution gives — the
same rows, values of the same types, the same errors, the same events — and is only taken where it is
the same statement in the same transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Float,
    Integer,
    Numeric,
    String,
    bindparam,
    cast,
    event,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator

from app.core import driver_reads
from app.core.db import UTCDateTime
from app.orgs.models import OrgUnit
from tests.conftest import is_postgres


class _Marked(TypeDecorator[str]):
    """A type whose bind and result processors both show in the value read back."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else f"{value}|bound"

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else f"{value}|read"


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements that went straight to the driver (and came back with rows)."""
    seen: list[str] = []
    fetch = driver_reads._fetch

    async def spied(conn: AsyncConnection, pooled: Any, shape: Any, key: Any, params: Any) -> Any:
        rows = await fetch(conn, pooled, shape, key, params)
        if rows is not None:
            seen.append(shape.sql)
        return rows

    monkeypatch.setattr(driver_reads, "_fetch", spied)
    return seen


@pytest.fixture
def postgres(_test_engine: AsyncEngine, database_url: str) -> AsyncEngine:
    if not is_postgres(database_url):
        pytest.skip("the driver path is asyncpg's (CDHT_TEST_DATABASE_URL=postgresql://...)")
    return _test_engine


@pytest.fixture
async def autocommit(postgres: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection as a GET request's session has it (``db.open_session``)."""
    async with postgres.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        yield conn


def _same(conn: AsyncConnection) -> Callable[[Executable, dict[str, Any] | None], Awaitable[None]]:
    async def check(stmt: Executable, params: dict[str, Any] | None = None) -> None:
        expected = [tuple(r) for r in (await conn.execute(stmt, params)).all()]
        for _ in range(2):  # the first run prepares the shape; the second reuses it
            got = [tuple(r) for r in await driver_reads.rows(conn, stmt, params)]
            assert got == expected
            assert [[type(v) for v in r] for r in got] == [[type(v) for v in r] for r in expected]

    return check


async def test_values_are_read_and_bound_as_sqlalchemy_does(
    autocommit: AsyncConnection, taken: list[str]
) -> None:
    check = _same(autocommit)
    typed = select(
        literal(7),
        literal("chữ"),
        literal(date(2025, 7, 1)),
        cast(literal("12.50"), Numeric(5, 2)),
        cast(literal("1.5"), Float),
        literal(None, Integer),
        cast(literal('{"a": [1, 2]}'), JSON),
        literal(datetime(2025, 7, 1, 8, 30, tzinfo=UTC), UTCDateTime),
    )
    await check(typed)
    # The type's bind processor on the way in, its result processor on the way out.
    marked = select(bindparam("word", type_=_Marked()), cast(literal("x"), _Marked()))
    await check(marked, {"word": "Hello"})
    got = await driver_reads.rows(autocommit, marked, {"word": "Hello"})
    assert tuple(got[0]) == ("Hello|bound|read", "x|read")  # the cast's literal is bound as a string
    # A union, with values given and values bound in the statement itself.
    both = union_all(
        select(literal("a"), bindparam("n", type_=Integer)), select(literal("b"), literal(2) * bindparam("n"))
    )
    await check(both, {"n": 21})
    assert len(taken) == 7  # every statement on the driver


async def test_a_shape_takes_each_statement_s_own_values(postgres: AsyncEngine, taken: list[str]) -> None:
    """Statements differing only in the values bound in them share one compiled shape; each is sent with
    its own (read from its cache key), inside the transaction SQLAlchemy began, seeing its writes."""
    async with postgres.connect() as conn, conn.begin() as outer:
        for name, depth in (("Một", 1), ("Hai", 2)):
            await conn.execute(
                OrgUnit.__table__.insert().values(name=name, kind="province", depth=depth, version=1)
            )
        for depth, name in ((1, "Một"), (2, "Hai")):
            stmt = select(OrgUnit.name, OrgUnit.created_at).where(
                OrgUnit.depth == depth, OrgUnit.name == name
            )
            await _same(conn)(stmt, None)
            rows = await driver_reads.rows(conn, stmt, None)
            assert [r[0] for r in rows] == [name]
            assert rows[0][1].tzinfo is not None
        assert len(set(taken)) == 1 and len(taken) == 6
        await outer.rollback()


async def test_what_sqlalchemy_would_do_otherwise_goes_through_it(
    postgres: AsyncEngine, taken: list[str]
) -> None:
    ids = select(OrgUnit.id).where(OrgUnit.id.in_([1, 2, 3]))  # an expanding IN: rendered per call
    optioned = select(literal(1)).execution_options(logging_token="reads")
    async with postgres.connect() as conn:
        # Before its first statement the adapter would send BEGIN: that one is SQLAlchemy's.
        assert [tuple(r) for r in await driver_reads.rows(conn, select(literal(1)), None)] == [(1,)]
        assert conn.in_transaction() and taken == []
        assert await driver_reads.rows(conn, ids, None) == []
        assert [tuple(r) for r in await driver_reads.rows(conn, optioned, None)] == [(1,)]
        assert taken == []
        assert [tuple(r) for r in await driver_reads.rows(conn, select(literal(2)), None)] == [(2,)]
        assert len(taken) == 1  # now inside the transaction it began


async def test_every_database_gets_the_rows(session: Any) -> None:
    """On SQLite (and wherever the path is not taken) :func:`rows` is SQLAlchemy's execution."""
    conn = await session.connection()
    rows = await driver_reads.rows(conn, select(literal(1), literal("a")), None)
    assert [tuple(r) for r in rows] == [(1, "a")]


async def test_errors_are_sqlalchemys(autocommit: AsyncConnection, taken: list[str]) -> None:
    async def error_of(run: Awaitable[Any]) -> DBAPIError:
        with pytest.raises(DBAPIError) as caught:
            await run
        return caught.value

    zero = select(literal(1) / bindparam("zero", type_=Integer))
    expected = await error_of(autocommit.execute(zero, {"zero": 0}))
    got = await error_of(driver_reads.rows(autocommit, zero, {"zero": 0}))
    assert type(got) is type(expected) and type(got.orig) is type(expected.orig)
    assert getattr(got.orig, "sqlstate", None) == getattr(expected.orig, "sqlstate", None) == "22012"

    # A statement timeout: answered 503 by core/errors, from its SQLSTATE, as SQLAlchemy's would be.
    await autocommit.exec_driver_sql("SET statement_timeout = 50")
    slow = select(func.pg_sleep(bindparam("seconds", type_=Float)))
    expected = await error_of(autocommit.execute(slow, {"seconds": 2}))
    got = await error_of(driver_reads.rows(autocommit, slow, {"seconds": 2}))
    assert type(got) is type(expected) and getattr(got.orig, "sqlstate", None) == "57014"
    assert taken == []


async def test_a_connection_the_server_closed_is_left_to_sqlalchemy(postgres: AsyncEngine) -> None:
    """It runs the statement again, finds the connection dead and invalidates it, as for any statement
    (``auth.deps`` then reads the subject again on a fresh one): closed while idle (the driver's own
    error) or in the middle of the statement (the server's, 57P01)."""
    sleep = select(func.pg_sleep(bindparam("seconds", type_=Float)))
    for seconds in (0, 5):  # killed before the statement, then during it
        async with postgres.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            await driver_reads.rows(conn, sleep, {"seconds": 0})
            pid = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar()

            async def terminate(after: float, pid: Any = pid) -> None:
                await asyncio.sleep(after)
                async with postgres.execution_options(isolation_level="AUTOCOMMIT").connect() as other:
                    await other.execute(select(func.pg_terminate_backend(pid)))

            if not seconds:
                await terminate(0)
            with pytest.raises(DBAPIError) as caught:
                await asyncio.gather(driver_reads.rows(conn, sleep, {"seconds": seconds}), terminate(0.3))
            assert caught.value.connection_invalidated, seconds


async def test_statement_events_see_each_statement_once(
    autocommit: AsyncConnection, taken: list[str]
) -> None:
    """The statement counters (``observability/metrics``, ``tests/api/test_statements``) listen here."""
    seen: list[tuple[str, str]] = []
    engine = autocommit.sync_engine

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(("before", statement))

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(("after", statement))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        stmt = select(literal(3) + bindparam("four", type_=Integer))
        assert [tuple(r) for r in await driver_reads.rows(autocommit, stmt, {"four": 4})] == [(7,)]
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    assert [when for when, _ in seen] == ["before", "after"] and taken == [seen[0][1]]
