"""SQLite for the async engine, run in the event loop's own thread.

SQLAlchemy's ``sqlite+aiosqlite`` dialect drives aiosqlite, which runs every call of every connection in a
thread of its own: creating a cursor, executing, fetching and closing are one thread hop each. A hop costs
far more than SQLite's work. Measured on the 2-core CI machine (``bench/run_sqlite_driver.py``; the latest
run is in ``bench/RESULTS.md``), a one-row primary-key ``SELECT`` costs SQLite 3 µs and took 0.5–0.6 ms
through the engine on aiosqlite; it takes about 70 µs on this driver. This module is the driver-level
connection the dialect gets instead (``create_async_engine``'s ``async_creator``): the same ``sqlite3``
calls, made at once in the caller's thread.

What the thread gave and how it is kept:
- **A writer waiting for the lock does not block the loop.** SQLite's own busy handler would sleep inside
  the call, so the connection's busy timeout is 0 and :meth:`Connection._call` waits instead: on
  ``SQLITE_BUSY`` it sleeps with ``asyncio.sleep`` (1 ms, growing to 20 ms) and tries again, until the busy
  timeout it was given has passed; then the ``database is locked`` error goes up as before. Other
  coroutines of the process, the lock's holder among them, run meanwhile.
  ``SQLITE_BUSY_SNAPSHOT`` (a reader's snapshot went stale before it could write) is raised at once: no
  retry can succeed.
- **Other requests go on during long work.** A call that does not wait never gives the loop back, so a
  task running many statements in a row (an import job in the API process, the demo, a long export) would
  keep every other request waiting until it awaits something else. The connection therefore yields to
  the loop (``asyncio.sleep(0)``) after a call once its calls have run for :data:`YIELD_AFTER` (5 ms) with
  no pause that long between them. One statement still holds the loop while SQLite works: this
  service's statements on SQLite take micro- to milliseconds (SQLite is the embedded default for one
  office; production runs on PostgreSQL, whose asyncpg driver is unchanged).

The connection is made with ``check_same_thread=False``: the pool hands a connection to one user at a time,
and a test may open it in one event loop's thread and close it from another.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

SQLITE_BUSY = 5
SQLITE_BUSY_SNAPSHOT = SQLITE_BUSY | (2 << 8)
# Waits between tries while the database is locked (seconds), the last one repeated.
BACKOFF = (0.001, 0.002, 0.005, 0.01, 0.02)
# How long a connection's calls may run before it lets the loop run other tasks (seconds).
YIELD_AFTER = 0.005


class Cursor:
    """aiosqlite's cursor interface over a ``sqlite3.Cursor``, as SQLAlchemy's adapter uses it."""

    def __init__(self, connection: Connection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._rows()

    async def _rows(self) -> AsyncIterator[Any]:
        for row in self._cursor:
            yield row

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        await self._connection._call(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any] | dict[str, Any]]) -> Cursor:
        rows = list(parameters)  # the parameters may be an iterator: a retry needs them again
        await self._connection._call(self._cursor.executemany, sql, rows)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class Connection:
    """aiosqlite's connection interface over a ``sqlite3.Connection`` in autocommit mode (the engine's
    ``begin`` event issues ``BEGIN`` or ``BEGIN IMMEDIATE`` itself)."""

    def __init__(self, connection: sqlite3.Connection, busy_timeout: float) -> None:
        self._connection: sqlite3.Connection | None = connection  # SQLAlchemy tests it before a rollback
        self._busy_timeout = busy_timeout
        # When the current run of calls began (a pause of YIELD_AFTER between calls begins a new one), and
        # when the last call ended.
        self._run_began = self._last_call = time.monotonic()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")  # what aiosqlite says; the dialect maps it
        return self._connection

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        deadline: float | None = None
        tries = 0
        began = time.monotonic()
        if began - self._last_call >= YIELD_AFTER:
            self._run_began = began
        while True:
            try:
                result = fn(*args)
            except sqlite3.OperationalError as exc:
                code = getattr(exc, "sqlite_errorcode", None)
                if code is None or code & 0xFF != SQLITE_BUSY or code == SQLITE_BUSY_SNAPSHOT:
                    raise
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self._busy_timeout
                if now >= deadline:
                    raise
            else:
                self._last_call = time.monotonic()
                if self._last_call - self._run_began >= YIELD_AFTER:
                    await asyncio.sleep(0)  # let the loop run other tasks before the next call
                    self._run_began = self._last_call = time.monotonic()
                return result
            await asyncio.sleep(BACKOFF[min(tries, len(BACKOFF) - 1)])
            self._run_began = time.monotonic()
            tries += 1

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self, self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        await self._call(self._conn.commit)

    async def rollback(self) -> None:
        await self._call(self._conn.rollback)

    async def create_function(
        self, name: str, num_params: int, func: Any, deterministic: bool = False
    ) -> None:
        self._conn.create_function(name, num_params, func, deterministic=deterministic)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate); closing twice is harmless."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


async def connect(database: str, *, busy_timeout: float, cached_statements: int = 256) -> Connection:
    """A connection to ``database`` (a file path or ``:memory:``) whose waits for the lock last at most
    ``busy_timeout`` seconds and never block the event loop."""
    connection = sqlite3.connect(
        database,
        timeout=0,  # SQLite's busy handler would sleep in the loop's thread: Connection._call waits
        isolation_level=None,
        check_same_thread=False,
        cached_statements=cached_statements,
    )
    return Connection(connection, busy_timeout)
