"""``cdht backup --to DIR`` and ``cdht restore --from DIR [--force]``.

**A backup takes the database first, then the evidence files that its rows name.** The database is one
consistent snapshot (PostgreSQL: a ``REPEATABLE READ`` transaction whose snapshot ``pg_dump --snapshot``
shares, and in which the tables are counted and the evidence rows listed; SQLite: the online backup API's
copy, read afterwards). Each file is then copied and its sha256 compared with the one its row recorded at
upload. Why that order holds:

- an upload writes its file *before* its row commits, so every row in the snapshot had its file on disk
  before the snapshot was taken, and the copy that follows finds it;
- a file whose row is not in the snapshot (uploaded later, or an orphan a crash left behind) is not
  copied: it would be an orphan after a restore, harmless but useless (``cdht cleanup-evidence`` removes
  such files);
- the one race left is an evidence row deleted *after* the snapshot (its evaluation still editable), whose
  file goes when the deletion commits, possibly before the copy reaches it. The manifest records it under
  ``evidence_problems`` ("deleted after the snapshot"; a row still there whose file is missing or whose
  bytes differ is reported as damage in storage), and the command says so. Restored, such a row answers
  404 for its file, as the app does for any missing file.

Copying the files first would lose instead every upload that commits during the copy (row in the dump,
file not in the backup), a wider window.

**A restore checks everything before it touches anything**: every file's size and sha256 against the
manifest, the backup's schema revision known to this code (a backup from a newer version is refused), the
target of the same kind and empty (or ``--force``). Then the evidence files (should the database part
fail, extra files are harmless orphans), then the database in one transaction, checked against the rows
the manifest counted; ``cdht restore`` migrates last, bringing an older backup to the current schema.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import anyio
from sqlalchemy import bindparam, text
from sqlalchemy.exc import SQLAlchemyError

from app.core import generations
from app.core.config import Settings
from app.core.db import make_engine
from app.evaluations.storage import EvidenceStore
from app.operations import BackupError, postgres, sqlite
from app.operations.manifest import (
    DATABASE_FILES,
    EVIDENCE,
    FORMAT,
    FileEntry,
    Manifest,
    app_version,
    copy_hashing,
    hash_file,
    human,
    now,
    read,
    verify,
    write,
)

_KEY = re.compile(r"^[A-Za-z0-9_-]{3,100}$")
# A database where none of these has a row holds nothing to lose (``cdht migrate`` alone fills only
# bookkeeping tables: the schema revision, the counters' definition): a restore needs no --force there.
DATA_TABLES = ("users", "org_units", "people", "criteria_sets", "evaluations")
_BATCH = 500


@dataclass
class Snapshot:
    """What the database held at the backup: schema revision, rows per table, the evidence rows."""

    revision: str
    tables: dict[str, int]
    evidence: list[tuple[str, str]]  # (storage key, sha256 recorded at upload)
    server_version: str | None = None
    dump_tool_major: int | None = None
    problems: dict[str, str] = field(default_factory=dict)


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql:", "postgres:"))


def shown(url: str) -> str:
    return postgres.shown(url) if is_postgres(url) else url


# --- backup ------------------------------------------------------------------------------------------


async def backup(settings: Settings, to: Path) -> list[str]:
    """Write a backup of the database and its evidence files into the new folder ``to``."""
    url = settings.effective_database_url
    kind: Literal["postgresql", "sqlite"] = "postgresql" if is_postgres(url) else "sqlite"
    _new_folder(to)
    try:
        database = to / DATABASE_FILES[kind]
        snap = await _dump_postgres(url, database) if kind == "postgresql" else _dump_sqlite(url, database)
        database.chmod(0o600)
        size, sha256 = hash_file(database)
        files = [FileEntry(path=database.name, size=size, sha256=sha256)]
        files += await _copy_evidence(settings, url, snap, to)
        manifest = Manifest(
            format=FORMAT,
            app_version=app_version(),
            alembic_revision=snap.revision,
            created_at=now(),
            database=kind,
            server_version=snap.server_version,
            dump_tool_major=snap.dump_tool_major,
            tables=snap.tables,
            files=files,
            evidence_problems=snap.problems,
        )
        write(to, manifest)
    except BaseException:
        shutil.rmtree(to, ignore_errors=True)  # it was empty or new: only this backup's files were in it
        raise
    evidence = files[1:]
    lines = [
        f"Database: {shown(url)}, schema {snap.revision}, {len(snap.tables)} tables, "
        f"{sum(snap.tables.values()):,} rows → {database.name} ({human(size)}).",
        f"Evidence files: {len(evidence)} ({human(sum(f.size for f in evidence))}) → {EVIDENCE}/.",
    ]
    lines += [f"warning: evidence file {key}: {why}" for key, why in sorted(snap.problems.items())]
    return [*lines, f"Backup written to {to} (manifest.json: every file's size and sha256)."]


def _new_folder(to: Path) -> None:
    """``to`` made, readable by its owner only (a backup holds everything: password hashes, people)."""
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise BackupError(f"{to} exists and is not an empty folder: a backup goes into a new one.")
    to.mkdir(mode=0o700, parents=True, exist_ok=True)


async def _dump_postgres(url: str, target: Path) -> Snapshot:
    engine = make_engine(url, pool=False)
    try:
        async with engine.connect() as conn:
            server_version = str(await conn.scalar(text("SHOW server_version")))
            server_major = int(await conn.scalar(text("SHOW server_version_num")) or 0) // 10000
            await conn.rollback()
            tools = postgres.find_tools(server_major, "the server")
            await conn.execution_options(isolation_level="REPEATABLE READ")
            snapshot_id = str(await conn.scalar(text("SELECT pg_export_snapshot()")))
            # pg_dump reads the tables in the snapshot while they are counted in it here.
            process = await postgres.dump(url, tools, target, snapshot_id)
            try:
                names = await _pg_tables(conn)
                if "alembic_version" not in names:
                    raise BackupError(
                        f"{shown(url)} has no schema: nothing to back up (cdht migrate makes it)."
                    )
                revision = str(await conn.scalar(text("SELECT version_num FROM alembic_version")))
                tables = {name: int(await conn.scalar(text(_count_rows(name))) or 0) for name in names}
                evidence = [(str(k), str(s)) for k, s in await conn.execute(text(_EVIDENCE_ROWS))]
            except BaseException:
                process.kill()
                await process.wait()
                raise
            await postgres.finish_dump(process)
            await conn.rollback()
    except (SQLAlchemyError, OSError) as exc:
        raise BackupError(f"cannot read {shown(url)}: {_reason(exc)}") from None
    finally:
        await engine.dispose()
    return Snapshot(revision, tables, evidence, server_version.split()[0], tools.major)


_EVIDENCE_ROWS = "SELECT storage_key, sha256 FROM evidence ORDER BY storage_key"


def _dump_sqlite(url: str, target: Path) -> Snapshot:
    sqlite.backup(sqlite.path_of(url), target)
    tables = sqlite.row_counts(target)
    if "alembic_version" not in tables:
        raise BackupError(f"{url} has no schema: nothing to back up (cdht migrate makes it).")
    revision = str(sqlite.query(target, "SELECT version_num FROM alembic_version")[0][0])
    evidence = [(str(k), str(s)) for k, s in sqlite.query(target, _EVIDENCE_ROWS)]
    return Snapshot(revision, tables, evidence)


async def _copy_evidence(settings: Settings, url: str, snap: Snapshot, to: Path) -> list[FileEntry]:
    store = EvidenceStore(settings.effective_evidence_dir)
    files: list[FileEntry] = []
    missing: list[str] = []
    for key, recorded in snap.evidence:
        if not _KEY.match(key):
            snap.problems[key] = "not a storage key the app writes: skipped"
            continue
        relative = f"{EVIDENCE}/{key[:2]}/{key}"
        try:
            size, sha256 = copy_hashing(store.path_for(key), to / relative)
        except FileNotFoundError:
            (to / relative).unlink(missing_ok=True)
            missing.append(key)
            continue
        (to / relative).chmod(0o600)
        files.append(FileEntry(path=relative, size=size, sha256=sha256))
        if sha256 != recorded:
            snap.problems[key] = "its bytes differ from the sha256 recorded at upload: damaged in storage"
    if missing:
        still = await _still_named(url, missing)
        for key in missing:
            snap.problems[key] = (
                "missing from storage (its row is still there): look for the file"
                if key in still
                else "deleted after the snapshot (its row is gone now): not in the backup"
            )
    return files


async def _still_named(url: str, keys: list[str]) -> set[str]:
    """The storage keys that an evidence row holds now (after the snapshot)."""
    query = text("SELECT storage_key FROM evidence WHERE storage_key IN :keys").bindparams(
        bindparam("keys", expanding=True)
    )
    engine = make_engine(url, pool=False)
    try:
        async with engine.connect() as conn:
            found: set[str] = set()
            for start in range(0, len(keys), _BATCH):
                found |= {
                    str(k) for (k,) in await conn.execute(query, {"keys": keys[start : start + _BATCH]})
                }
            return found
    finally:
        await engine.dispose()


# --- restore -----------------------------------------------------------------------------------------


async def restore(settings: Settings, source: Path, *, force: bool) -> list[str]:
    """Restore the backup in ``source`` into the configured database and evidence folder (then migrate:
    the caller's part, see :mod:`app.cli`)."""
    url = settings.effective_database_url
    kind = "postgresql" if is_postgres(url) else "sqlite"
    manifest = read(source)  # the cheap refusals first, then every file's hash
    if manifest.database != kind:
        raise BackupError(
            f"the backup is of a {manifest.database} database and CDHT_DATABASE_URL names a {kind} one: "
            "a backup restores into the kind it came from. Nothing was changed."
        )
    _known_revision(url, manifest)
    if kind == "postgresql":
        held = await _pg_data_tables(url)
        tools = postgres.find_tools(manifest.dump_tool_major or 0, "the pg_dump that wrote the backup")
    else:
        target = sqlite.path_of(url)
        held = sqlite.tables_with_rows(target, DATA_TABLES)
    if held and not force:
        listed = ", ".join(held)
        raise BackupError(
            f"{shown(url)} holds data (rows in {listed}): a restore replaces all of it. Back it up "
            "first, then run the restore again with --force. Nothing was changed."
        )
    manifest = await anyio.to_thread.run_sync(verify, source)
    total = sum(f.size for f in manifest.files)
    lines = [
        f"Backup verified: {len(manifest.files)} files ({human(total)}), every size and sha256 as in the "
        f"manifest (made {manifest.created_at.isoformat()} by CDHT {manifest.app_version}, "
        f"schema {manifest.alembic_revision})."
    ]
    count, size = await anyio.to_thread.run_sync(_restore_evidence, manifest, source, settings)
    lines.append(f"Evidence files restored: {count} ({human(size)}) into {settings.effective_evidence_dir}.")
    database = source / manifest.database_file
    if kind == "postgresql":
        await anyio.to_thread.run_sync(postgres.restore, url, tools, database, manifest.tables)
    else:
        sqlite.restore(database, target)
        restored = sqlite.row_counts(target)
        if restored != manifest.tables:
            raise BackupError(f"{url} does not hold the rows the backup counted after the restore.")
    lines.append(
        f"Database restored: {len(manifest.tables)} tables, {sum(manifest.tables.values()):,} rows, each "
        f"table as counted at the backup ({shown(url)}{', replaced' if held else ''})."
    )
    lines += [f"warning: evidence file {k}: {why}" for k, why in sorted(manifest.evidence_problems.items())]
    # Every row changed behind the sessions' backs: what the API's processes keep is read again.
    generations.current().move(auth=True, dashboards=True, criteria=True, orgs=True)
    return lines


def _known_revision(url: str, manifest: Manifest) -> None:
    """Refuse a backup whose schema this code does not know: made by a newer version of CDHT."""
    from alembic.script import ScriptDirectory

    from app.cli import alembic_config

    script = ScriptDirectory.from_config(alembic_config(url))
    known = {revision.revision for revision in script.walk_revisions()}
    if manifest.alembic_revision not in known:
        raise BackupError(
            f"the backup's schema is at revision {manifest.alembic_revision}, which this version of CDHT "
            f"({app_version()}, newest revision {script.get_current_head()}) does not know: it was made by "
            f"CDHT {manifest.app_version}. Restore it with that version or a newer one. Nothing was changed."
        )


def _restore_evidence(manifest: Manifest, source: Path, settings: Settings) -> tuple[int, int]:
    """Copy the backup's evidence files into the evidence folder, each through ``tmp/`` and renamed into
    place (an interrupted copy leaves a ``.part`` that ``cdht cleanup-evidence`` removes)."""
    root = settings.effective_evidence_dir
    staging = root / "tmp"
    staging.mkdir(parents=True, exist_ok=True)
    count = size = 0
    for entry in manifest.files:
        parts = PurePosixPath(entry.path).parts
        if parts[0] != EVIDENCE or len(parts) < 2:
            continue
        final = root.joinpath(*parts[1:])
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = staging / f"{final.name}.part"
        shutil.copyfile(source / entry.path, partial)
        os.replace(partial, final)
        count += 1
        size += entry.size
    return count, size


# --- PostgreSQL catalogue ----------------------------------------------------------------------------


def _q(name: str) -> str:
    return 'public."' + name.replace('"', '""') + '"'


# S608: the table names come from pg_tables and are quoted.
def _count_rows(name: str) -> str:
    return f"SELECT count(*) FROM {_q(name)}"  # noqa: S608


def _any_row(name: str) -> str:
    return f"SELECT EXISTS (SELECT 1 FROM {_q(name)})"  # noqa: S608


async def _pg_tables(conn: Any) -> list[str]:
    rows = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"))
    return [str(name) for (name,) in rows]


async def _pg_data_tables(url: str) -> list[str]:
    """Which of :data:`DATA_TABLES` hold a row."""
    engine = make_engine(url, pool=False)
    try:
        async with engine.connect() as conn:
            return [
                name
                for name in await _pg_tables(conn)
                if name in DATA_TABLES and await conn.scalar(text(_any_row(name)))
            ]
    except (SQLAlchemyError, OSError) as exc:
        raise BackupError(
            f"cannot connect to {shown(url)}: {_reason(exc)}. Create the database first (an empty one: "
            "createdb), then run the restore again. Nothing was changed."
        ) from None
    finally:
        await engine.dispose()


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]
