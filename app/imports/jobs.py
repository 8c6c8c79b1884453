"""Import jobs: an upload too large to import inside its request is kept on disk and queued.

``POST /imports/...`` with a file larger than ``CDHT_IMPORT_JOB_BYTES`` answers 202 with the job and a
``Location`` of ``GET /imports/jobs/{job_id}``; a runner (app/imports/runner.py) imports it later.

- The file: copied from the request's spool to ``CDHT_IMPORT_JOBS_DIR/<random>.upload`` (written as
  ``.part`` and renamed, so a half-copied file never looks whole) before the job row is committed; if the
  request's transaction is lost, a rollback hook deletes it again. It is deleted once the job is finished.
  The runner sweeps files no waiting job names (a process killed between the copy and the commit).
- Who sees a job: the account that sent it (and a system admin). Anyone else — another user of the same
  province included — gets the 404 a missing id gets: the job's summary names rows of a file they did not
  send. Reading a job needs the right to import (``import:write``) anywhere, like sending one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Protocol

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Action
from app.auth.scope import Subject, authorize_owner, require_any_role
from app.core import i18n
from app.core.audit import user_id_of
from app.core.db import on_commit, on_rollback
from app.core.errors import NotFound
from app.imports.models import ImportJob, ImportKind
from app.imports.parsing import Spooled
from app.imports.schemas import ErrorDetail, ImportJobRead, ImportSummary

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
WAITING = (QUEUED, RUNNING)
API_PATH = "/api/v1/imports/jobs/{job_id}"
_SUFFIX = ".upload"


class JobFiles:
    """The folder holding the uploads of waiting jobs."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, stored_name: str) -> Path:
        return self.root / stored_name

    def keep(self, spooled: Spooled) -> str:
        """Copy the spooled upload into the folder (blocking: run it in a worker thread); its name."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex + _SUFFIX
        part = self.root / (name + ".part")
        try:
            spooled.file.seek(0)
            with open(part, "wb") as out:
                shutil.copyfileobj(spooled.file, out, 1024 * 1024)
            os.replace(part, self.root / name)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        finally:
            spooled.file.seek(0)
        return name

    def open(self, job: ImportJob) -> Spooled:
        """The job's upload as the importer reads it (what was learnt while spooling is on the row)."""
        return Spooled(
            file=open(self.path(job.stored_name), "rb"),  # closed by Spooled.close()
            filename=job.filename,
            size=job.file_size,
            sha256=job.file_sha256,
            kind=job.file_type,
            encoding=job.encoding,
        )

    def delete(self, stored_name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path(stored_name))

    def sweep(self, waiting: set[str], older_than_seconds: float) -> list[Path]:
        """Delete files (and leftover ``.part`` files) that no waiting job names, once they are older than
        the grace period (a job being submitted has its file before its row is committed)."""
        if not self.root.is_dir():
            return []
        cutoff = time.time() - older_than_seconds
        removed = []
        for path in sorted(self.root.iterdir()):
            ours = path.name.endswith((_SUFFIX, _SUFFIX + ".part"))
            if not ours or not path.is_file() or path.name in waiting or path.stat().st_mtime >= cutoff:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
        return removed


class Queue(Protocol):
    """Where jobs wait: the runner's folder, and its bell (app/imports/runner.py)."""

    files: JobFiles

    def wake(self) -> None: ...


async def enqueue(
    session: AsyncSession,
    subject: Subject,
    kind: ImportKind,
    spooled: Spooled,
    queue: Queue,
    *,
    dry_run: bool,
) -> ImportJob:
    """Keep the upload and queue its import; the runner is woken once the job is committed."""
    stored_name = await anyio.to_thread.run_sync(queue.files.keep, spooled)
    on_rollback(session, lambda: queue.files.delete(stored_name))
    job = ImportJob(
        kind=kind,
        dry_run=dry_run,
        actor_user_id=user_id_of(subject),
        filename=spooled.filename[:255],
        file_size=spooled.size,
        file_sha256=spooled.sha256,
        file_type=spooled.kind,
        encoding=spooled.encoding,
        stored_name=stored_name,
        status=QUEUED,
        language=i18n.current(),
    )
    session.add(job)
    await session.flush()
    on_commit(session, queue.wake)
    return job


async def get(session: AsyncSession, subject: Subject, job_id: int) -> ImportJob:
    require_any_role(subject, Action.IMPORT_WRITE)
    job = await session.get(ImportJob, job_id)
    if job is None:
        raise NotFound("Import job not found.")
    authorize_owner(subject, job.actor_user_id, missing="Import job not found.")
    return job


def to_read(job: ImportJob) -> ImportJobRead:
    return ImportJobRead(
        job_id=job.id,
        status=job.status,
        kind=job.kind,
        dry_run=job.dry_run,
        filename=job.filename,
        size=job.file_size,
        sha256=job.file_sha256,
        submitted_at=job.submitted_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        attempts=job.attempts,
        summary=ImportSummary.model_validate(job.summary) if job.summary is not None else None,
        error=ErrorDetail.model_validate(job.error) if job.error is not None else None,
        status_url=status_url(job.id),
    )


def status_url(job_id: int) -> str:
    return API_PATH.format(job_id=job_id)
