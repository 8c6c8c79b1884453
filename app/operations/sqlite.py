"""SQLite through its online backup API (``sqlite3.Connection.backup``), both ways.

Copied in one step (``pages=-1``), a backup reads the whole database under one read transaction: a
consistent copy while the service goes on writing (WAL lets it: the copy waits for no writer and blocks
none). The copy is switched to a rollback journal so that the backup is one self-contained file whose hash
stays put. A restore writes the backup into the target the same way, in one write transaction: the target
is either the backup or as it was.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from app.operations import BackupError

BUSY_TIMEOUT_S = 30.0


def path_of(url: str) -> Path:
    path = url.removeprefix("sqlite:///")
    if not path or path == ":memory:" or path.startswith("file:"):
        raise BackupError(f"{url} is not a database file: nothing to back up or restore into.")
    return Path(path).expanduser()


def backup(source: Path, target: Path) -> None:
    if not source.is_file():
        raise BackupError(f"there is no database at {source}.")
    with (
        closing(sqlite3.connect(source, timeout=BUSY_TIMEOUT_S)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")


def restore(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(target, timeout=BUSY_TIMEOUT_S)) as dst,
    ):
        try:
            src.backup(dst)
        except sqlite3.OperationalError as exc:
            raise BackupError(
                f"the restore into {target} failed ({exc}): stop the API and the workers, then try again. "
                "The database was left as it was."
            ) from None


def _tables(db: sqlite3.Connection) -> list[str]:
    rows = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    return [str(name) for (name,) in rows]


# S608: the table names come from sqlite_master and are quoted.
def _count_rows(name: str) -> str:
    return 'SELECT count(*) FROM "' + name.replace('"', '""') + '"'  # noqa: S608


def _any_row(name: str) -> str:
    return 'SELECT EXISTS (SELECT 1 FROM "' + name.replace('"', '""') + '")'  # noqa: S608


def row_counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return {name: int(db.execute(_count_rows(name)).fetchone()[0]) for name in _tables(db)}


def tables_with_rows(path: Path, among: tuple[str, ...]) -> list[str]:
    """Which of the tables ``among`` hold a row."""
    if not path.exists():
        return []
    with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)) as db:
        return [name for name in _tables(db) if name in among and db.execute(_any_row(name)).fetchone()[0]]


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return [tuple(row) for row in db.execute(sql)]
