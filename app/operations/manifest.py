"""A backup folder and its ``manifest.json``.

::

    DIR/
      manifest.json          written last: a folder without it is an unfinished backup
      database.dump          PostgreSQL: ``pg_dump --format=custom``
      database.sqlite3       SQLite: a copy made by the online backup API
      evidence/ab/ab12…      the evidence files, laid out as in the evidence folder

The manifest names every other file with its size and sha256, and says what the database held: its kind,
its schema revision (Alembic), the rows of every table (the restore checks them again). It does not
protect against someone who rewrites the manifest too: it catches a damaged, truncated or incomplete copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from app.operations import BackupError

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE_FILES = {"postgresql": "database.dump", "sqlite": "database.sqlite3"}
EVIDENCE = "evidence"
CHUNK = 1024 * 1024
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class FileEntry(BaseModel):
    path: str  # relative to the backup folder, with forward slashes
    size: int = Field(ge=0)
    sha256: str

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        """A path that stays inside the folder: the restore copies evidence files by it."""
        parts = PurePosixPath(value).parts
        if not parts or value.startswith("/") or "\\" in value or any(p in ("..", ".") for p in parts):
            raise ValueError(f"not a path inside the backup: {value!r}")
        return value

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError("not a sha256 in hex")
        return value


class Manifest(BaseModel):
    format: int
    app_version: str
    alembic_revision: str
    created_at: datetime
    database: Literal["postgresql", "sqlite"]
    server_version: str | None = None  # PostgreSQL's, e.g. "15.20"
    dump_tool_major: int | None = None  # the major version of the pg_dump that wrote the dump
    tables: dict[str, int]  # rows of every table at the backup
    files: list[FileEntry]
    # Evidence rows of the backup whose file is missing or damaged: storage key → why (see backup.py).
    evidence_problems: dict[str, str] = {}

    @field_validator("tables")
    @classmethod
    def _names(cls, value: dict[str, int]) -> dict[str, int]:
        for name, rows in value.items():
            if not _TABLE.match(name) or rows < 0:
                raise ValueError(f"not a table and its rows: {name!r}: {rows!r}")
        return value

    @property
    def database_file(self) -> str:
        return DATABASE_FILES[self.database]


def app_version() -> str:
    try:
        return metadata.version("cdht")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def hash_file(path: Path) -> tuple[int, str]:
    """The file's size and sha256."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def copy_hashing(source: Path, target: Path) -> tuple[int, str]:
    """Copy ``source`` to ``target`` (its folder made), hashing the bytes as they are read: one pass."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(CHUNK):
            size += len(chunk)
            digest.update(chunk)
            dst.write(chunk)
    return size, digest.hexdigest()


def write(folder: Path, manifest: Manifest) -> None:
    """Write the manifest atomically: it appears whole, last, once everything it names is in place."""
    partial = folder / (MANIFEST + ".part")
    partial.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    partial.chmod(0o600)
    os.replace(partial, folder / MANIFEST)


def read(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BackupError(f"{folder} is not a folder.")
    if not path.is_file():
        raise BackupError(
            f"{folder} has no {MANIFEST}: not a backup, or one that did not finish. Nothing was changed."
        )
    try:
        manifest = Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise BackupError(f"{path} cannot be read ({exc}). Nothing was changed.") from None
    if manifest.format != FORMAT:
        raise BackupError(
            f"{path} is a backup of format {manifest.format}; this version of CDHT reads format {FORMAT}. "
            "Nothing was changed."
        )
    if not any(f.path == manifest.database_file for f in manifest.files):
        raise BackupError(f"{path} names no {manifest.database_file}. Nothing was changed.")
    return manifest


def verify(folder: Path) -> Manifest:
    """The manifest, once every file it names is there with its size and sha256; else a refusal that lists
    what is wrong (the target has not been touched)."""
    manifest = read(folder)
    problems: list[str] = []
    for entry in manifest.files:
        path = folder / entry.path
        if not path.is_file():
            problems.append(f"{entry.path}: missing")
            continue
        size, sha256 = hash_file(path)
        if size != entry.size:
            problems.append(f"{entry.path}: {size} bytes, the manifest says {entry.size}")
        elif sha256 != entry.sha256:
            problems.append(f"{entry.path}: sha256 {sha256}, the manifest says {entry.sha256}")
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise BackupError(
            f"the backup in {folder} is damaged or incomplete ({len(problems)} of {len(manifest.files)} "
            f"files differ from the manifest):\n  {shown}{more}\nNothing was changed."
        )
    return manifest


def human(size: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"
