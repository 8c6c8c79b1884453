"""The service on aiosqlite, as it ran on SQLite until the driver of ``app/core/sqlite_driver.py``: the
baseline of ``bench/run_sqlite_driver.py``. Runs any ``cdht`` command with every SQLite connection made by
aiosqlite (a thread per connection, one hop per call) configured as before: autocommit mode, SQLite's own
busy handler with the same timeout, in the connection's thread.

    .venv/bin/python bench/aiosqlite_app.py demo
    .venv/bin/python bench/aiosqlite_app.py serve --port 8791       # one worker: the patch holds
"""

from __future__ import annotations

import sys
from pathlib import Path

import aiosqlite

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.core import sqlite_driver


async def aiosqlite_connect(database: str, *, busy_timeout: float, cached_statements: int = 256) -> object:
    connection = aiosqlite.connect(
        database, timeout=busy_timeout, isolation_level=None, cached_statements=cached_statements
    )
    connection._thread.daemon = True  # as SQLAlchemy's dialect does: the thread must not hold up the exit
    return await connection


def use_aiosqlite() -> None:
    """From now on, engines made by ``app.core.db.make_engine`` connect to SQLite through aiosqlite."""
    sqlite_driver.connect = aiosqlite_connect  # type: ignore[assignment]


if __name__ == "__main__":
    use_aiosqlite()
    from app.cli import main

    sys.exit(main(sys.argv[1:]))
