"""The SQLite driver of the async engine (app/core/sqlite_driver.py) runs SQLite in the event loop's thread.
Waiting for the write lock must still leave the loop free, end with SQLite's own error after the busy
timeout, and not wait at all where waiting cannot help."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text

from app.core import sqlite_driver
from app.core.db import make_engine, make_sessionmaker, open_session

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[str]:
    path = str(tmp_path / "driver.db")
    setup = await sqlite_driver.connect(path, busy_timeout=1)
    await setup.execute("PRAGMA journal_mode=WAL")
    await setup.execute("CREATE TABLE t (x INTEGER)")
    await setup.close()
    yield path


async def _rows(path: str) -> list[int]:
    conn = await sqlite_driver.connect(path, busy_timeout=1)
    try:
        cursor = await conn.execute("SELECT x FROM t ORDER BY x")
        return [x for (x,) in await cursor.fetchall()]
    finally:
        await conn.close()


async def test_a_writer_waits_for_the_lock_while_the_loop_runs_on(database: str) -> None:
    holder = await sqlite_driver.connect(database, busy_timeout=5)
    waiter = await sqlite_driver.connect(database, busy_timeout=5)
    await holder.execute("BEGIN IMMEDIATE")
    await holder.execute("INSERT INTO t VALUES (1)")
    ticks = 0
    done = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    async def write() -> float:
        await waiter.execute("BEGIN IMMEDIATE")  # waits for the holder's commit
        await waiter.execute("INSERT INTO t VALUES (2)")
        await waiter.commit()
        return time.monotonic()

    ticker = asyncio.create_task(tick())
    writer = asyncio.create_task(write())
    await asyncio.sleep(0.15)
    assert not writer.done(), "the second writer must wait for the lock"
    committed_at = time.monotonic()
    await holder.commit()
    wrote_at = await writer
    done.set()
    await ticker
    assert wrote_at >= committed_at
    assert ticks >= 30, f"the loop stood still while a writer waited ({ticks} ticks in 150 ms)"
    assert await _rows(database) == [1, 2]
    await holder.close()
    await waiter.close()


async def test_the_wait_ends_with_database_is_locked_after_the_busy_timeout(database: str) -> None:
    holder = await sqlite_driver.connect(database, busy_timeout=5)
    waiter = await sqlite_driver.connect(database, busy_timeout=0.2)
    await holder.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        await waiter.execute("BEGIN IMMEDIATE")
    waited = time.monotonic() - started
    assert 0.2 <= waited < 2, waited
    await holder.rollback()
    await waiter.execute("BEGIN IMMEDIATE")  # the lock is free again: the same connection gets it
    await waiter.rollback()
    await holder.close()
    await waiter.close()


async def test_a_stale_snapshot_is_refused_at_once(database: str) -> None:
    """A reader whose snapshot is older than the last commit can never write in that transaction: SQLite
    says so (SQLITE_BUSY_SNAPSHOT) and the driver passes it on instead of waiting out the timeout."""
    reader = await sqlite_driver.connect(database, busy_timeout=5)
    writer = await sqlite_driver.connect(database, busy_timeout=5)
    await reader.execute("BEGIN")
    await (await reader.execute("SELECT count(*) FROM t")).fetchall()
    await writer.execute("BEGIN IMMEDIATE")
    await writer.execute("INSERT INTO t VALUES (1)")
    await writer.commit()
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError) as raised:
        await reader.execute("INSERT INTO t VALUES (2)")
    assert getattr(raised.value, "sqlite_errorcode", None) == sqlite_driver.SQLITE_BUSY_SNAPSHOT
    assert time.monotonic() - started < 1
    await reader.rollback()
    assert await _rows(database) == [1]
    await reader.close()
    await writer.close()


async def test_a_long_run_of_statements_lets_other_tasks_run(database: str) -> None:
    """An import job in the API process runs thousands of statements that never wait: other requests
    must still be served meanwhile, at least every few milliseconds."""
    conn = await sqlite_driver.connect(database, busy_timeout=5)
    gaps: list[float] = []
    done = asyncio.Event()

    async def other_request() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    other = asyncio.create_task(other_request())
    await asyncio.sleep(0)  # the other task is waiting for the loop
    await conn.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    for n in range(1_000_000):
        await conn.execute("INSERT INTO t VALUES (?)", (n,))
        if time.monotonic() - started > 0.3:
            break
    await conn.commit()
    ran = time.monotonic() - started
    done.set()
    await other
    await conn.close()
    assert ran > 0.05, f"too short a run to tell ({ran:.3f} s)"
    assert len(gaps) >= ran / 0.02, (len(gaps), ran)  # the other task ran again and again
    # Never held up for long: a run of calls yields after YIELD_AFTER (plus one call, plus noise).
    assert max(gaps) < sqlite_driver.YIELD_AFTER + 0.2, max(gaps)


async def test_other_errors_are_not_retried(database: str) -> None:
    conn = await sqlite_driver.connect(database, busy_timeout=5)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await conn.execute("SELECT * FROM missing")
    assert time.monotonic() - started < 1
    await conn.close()
    await conn.close()  # twice is harmless
    with pytest.raises(ValueError, match="no active connection"):
        conn.cursor()


async def test_sessions_of_the_engine_queue_for_the_write_lock(tmp_path: Path, database_url: str) -> None:
    """Through the app's engine: a write session that holds the lock across an await does not stop a second
    write session of the same process, which waits its turn, nor a reader, which does not wait at all."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the SQLite driver; PostgreSQL's is asyncpg")
    copy = tmp_path / "engine.db"  # the migrated schema (a write session's commit bumps change_epochs)
    source = sqlite3.connect(database_url.removeprefix("sqlite:///"))
    with closing(source), closing(sqlite3.connect(copy)) as target:
        source.backup(target)
    engine = make_engine(f"sqlite:///{copy}")
    sessionmaker = make_sessionmaker(engine)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        order: list[str] = []

        async def write(value: int, hold: float) -> None:
            async with open_session(sessionmaker, write=True) as session:
                await session.execute(text("INSERT INTO t VALUES (:x)"), {"x": value})
                order.append(f"wrote {value}")
                await asyncio.sleep(hold)
                await session.commit()

        async def read() -> int:
            async with open_session(sessionmaker, write=False) as session:
                return int((await session.execute(text("SELECT count(*) FROM t"))).scalar_one())

        first = asyncio.create_task(write(1, 0.2))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(write(2, 0))
        assert await read() == 0  # WAL: the reader does not wait for the writer
        await asyncio.gather(first, second)
        assert order == ["wrote 1", "wrote 2"]
        assert await read() == 2
    finally:
        await engine.dispose()
