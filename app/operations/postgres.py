"""PostgreSQL's own tools for ``cdht backup`` / ``cdht restore``.

- The client programs (``pg_dump``, ``pg_restore``, ``psql``) are looked for on ``PATH``, then in
  ``/usr/lib/postgresql/*/bin`` (newest first), and must be at least as new as the server (``pg_dump``
  refuses a newer server) or, to restore, as the ``pg_dump`` that wrote the dump.
- They connect with ``PG*`` environment variables built from ``CDHT_DATABASE_URL``: the password travels in
  ``PGPASSWORD``, never on a command line (``ps`` shows every process's arguments) nor in a message.
- The restore is **one transaction**: ``pg_restore`` turns the dump into SQL and ``psql --single-transaction``
  runs, in order, the removal of every table of schema ``public`` (the schema itself and its grants stay),
  the dump, and a check that every table holds the rows the manifest counted. Anything failing (a lock
  not granted within 30 s because the service still runs, a missing role, a full disk, a count that
  differs) rolls it all back: the database is either the backup's or left as it was. Objects are owned
  by the restoring user (``--no-owner``) and keep no grants of the source (``--no-privileges``): the app
  needs neither.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from app.operations import BackupError

LIBPQ_QUERY = {  # URL query parameters that mean the same to libpq
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "host": "PGHOST",
    "port": "PGPORT",
}
LOCK_TIMEOUT = "30s"
CHUNK = 1024 * 1024
_ABORT = "DO $cdht$ BEGIN RAISE EXCEPTION 'pg_restore failed: rolling back'; END $cdht$"

_DROP_PUBLIC = """DO $cdht$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') ORDER BY c.relkind
  LOOP
    EXECUTE format(
      CASE r.relkind WHEN 'v' THEN 'DROP VIEW IF EXISTS public.%I CASCADE'
                     WHEN 'm' THEN 'DROP MATERIALIZED VIEW IF EXISTS public.%I CASCADE'
                     WHEN 'f' THEN 'DROP FOREIGN TABLE IF EXISTS public.%I CASCADE'
                     WHEN 'S' THEN 'DROP SEQUENCE IF EXISTS public.%I CASCADE'
                     ELSE 'DROP TABLE IF EXISTS public.%I CASCADE' END, r.relname);
  END LOOP;
  FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd')
  LOOP
    EXECUTE format('DROP TYPE IF EXISTS public.%I CASCADE', r.typname);
  END LOOP;
END $cdht$"""


@dataclass(frozen=True)
class Tools:
    pg_dump: str
    pg_restore: str
    psql: str
    major: int


def connection_env(url: str) -> dict[str, str]:
    """The environment that points libpq's programs at ``url`` (password included): ``PG*`` variables."""
    parsed = make_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    values = {
        "PGHOST": parsed.host,
        "PGPORT": str(parsed.port) if parsed.port else None,
        "PGUSER": parsed.username,
        "PGPASSWORD": parsed.password,
        "PGDATABASE": parsed.database,
    }
    for name, variable in LIBPQ_QUERY.items():
        value = parsed.query.get(name)
        if isinstance(value, str):
            values[variable] = value
    env.update({k: v for k, v in values.items() if v})
    env["PGAPPNAME"] = "cdht-backup"
    return env


def shown(url: str) -> str:
    """The URL as messages may show it: without the password."""
    return make_url(url).render_as_string(hide_password=True)


def _major(binary: str) -> int:
    """The major version a client program reports (``pg_dump (PostgreSQL) 15.20`` → 15)."""
    # S603: the binaries are PostgreSQL's own, found on PATH or in /usr/lib/postgresql: no user input.
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout  # noqa: S603
    found = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(found.group(1)) if found else 0


def _candidate_dirs() -> list[Path]:
    dirs = []
    on_path = shutil.which("pg_dump")
    if on_path:
        dirs.append(Path(on_path).parent)
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    versioned.sort(key=lambda d: int(m.group(1)) if (m := re.search(r"/(\d+)/bin$", d)) else 0, reverse=True)
    return dirs + [Path(d) for d in versioned if Path(d) not in dirs]


def find_tools(at_least: int, what: str) -> Tools:
    """``pg_dump``, ``pg_restore`` and ``psql`` of one installation whose major version is ``at_least``
    or newer; else a refusal saying what to install (``what`` names the version's reason)."""
    found: list[int] = []
    for folder in _candidate_dirs():
        programs = [folder / name for name in ("pg_dump", "pg_restore", "psql")]
        if not all(p.is_file() and os.access(p, os.X_OK) for p in programs):
            continue
        major = _major(str(programs[0]))
        found.append(major)
        if major >= at_least:
            pg_dump, pg_restore, psql = (str(p) for p in programs)
            return Tools(pg_dump, pg_restore, psql, major)
    if not found:
        raise BackupError(
            "pg_dump, pg_restore and psql were not found on PATH or in /usr/lib/postgresql/*/bin: install "
            f"the PostgreSQL {at_least} client (Debian/Ubuntu: postgresql-client-{at_least})."
        )
    raise BackupError(
        f"the PostgreSQL client programs found are version {max(found)}, older than {what} "
        f"(PostgreSQL {at_least}): install postgresql-client-{at_least} or put its bin folder first on PATH."
    )


async def dump(url: str, tools: Tools, target: Path, snapshot: str) -> asyncio.subprocess.Process:
    """Start ``pg_dump --format=custom`` of the snapshot exported by the caller's open transaction."""
    return await asyncio.create_subprocess_exec(
        tools.pg_dump,
        "--format=custom",
        "--no-password",
        f"--snapshot={snapshot}",
        f"--file={target}",
        env=connection_env(url),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def finish_dump(process: asyncio.subprocess.Process) -> None:
    _, err = await process.communicate()
    if process.returncode != 0:
        raise BackupError(f"pg_dump failed: {_last_lines(err)}")


def _count_check(tables: dict[str, int]) -> str:
    """A DO block that aborts the transaction unless every table holds the rows the backup counted (the
    names were validated by the manifest: letters, digits and underscores)."""
    lines = ["DO $cdht$", "DECLARE found bigint;", "BEGIN"]
    for name, rows in sorted(tables.items()):
        lines.append(
            f'  SELECT count(*) INTO found FROM public."{name}"; IF found <> {int(rows)} THEN RAISE '  # noqa: S608
            f"EXCEPTION 'table {name}: % rows restored, the backup counted {int(rows)}', found; END IF;"
        )
    lines.append("END $cdht$")
    return "\n".join(lines)


def restore(url: str, tools: Tools, dump_file: Path, tables: dict[str, int]) -> None:
    """Replace what schema ``public`` of ``url``'s database holds with the dump, in one transaction.

    The SQL that ``pg_restore`` writes is relayed to ``psql`` through this process, so that what ends the
    transaction depends on how ``pg_restore`` ended: the count check after a clean run, a deliberate error
    (so a rollback) after a failed one — ``psql`` alone would commit a script cut short."""
    env = connection_env(url)
    with tempfile.TemporaryFile() as restore_err, tempfile.TemporaryFile() as psql_err:
        consumer = subprocess.Popen(  # noqa: S603 (PostgreSQL's psql; the arguments are ours)
            [
                tools.psql,
                "--no-psqlrc",
                "--quiet",
                "--no-password",
                "--set=ON_ERROR_STOP=1",
                "--single-transaction",
                "--command=SET client_min_messages = warning",
                f"--command=SET lock_timeout = '{LOCK_TIMEOUT}'",
                f"--command={_DROP_PUBLIC}",
                "--file=-",
            ],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_err,
        )
        producer = subprocess.Popen(  # noqa: S603 (PostgreSQL's pg_restore; the arguments are ours)
            [
                tools.pg_restore,
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--file=-",
                str(dump_file),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=restore_err,
        )
        assert producer.stdout is not None and consumer.stdin is not None
        psql_stopped = False
        try:
            while chunk := producer.stdout.read(CHUNK):
                consumer.stdin.write(chunk)
            producer.wait()
            ending = _count_check(tables) if producer.returncode == 0 else _ABORT
            consumer.stdin.write(f"\n{ending};\n".encode())
            consumer.stdin.close()
        except BrokenPipeError:  # psql stopped at an error: the transaction is rolled back
            psql_stopped = True
            producer.kill()
        consumer.wait()
        producer.wait()
        if producer.returncode != 0 and not psql_stopped:
            restore_err.seek(0)
            raise BackupError(
                f"pg_restore failed, the restore was rolled back: {_last_lines(restore_err.read())}"
            )
        if consumer.returncode != 0:
            psql_err.seek(0)
            message = _last_lines(psql_err.read())
            if "lock timeout" in message:
                raise BackupError(
                    "the database is in use (a table lock was not granted within "
                    f"{LOCK_TIMEOUT}): stop the API and the workers, then run the restore again. "
                    "The database was not changed."
                )
            raise BackupError(f"the restore failed and was rolled back: {message}")


def _last_lines(raw: bytes, n: int = 6) -> str:
    """The errors a program wrote (else its last lines)."""
    lines = [line for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "FATAL" in line or "error:" in line]
    return "\n".join((errors or lines)[-n:]) or "(no message)"
