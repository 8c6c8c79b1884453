"""The import job runner: takes queued jobs one at a time and imports each in a transaction of its own.

- Where it runs: in every API process, started by the app's lifespan (``CDHT_IMPORT_WORKER``, on by
  default) and woken as soon as a job is committed; other processes find new jobs by polling every
  ``CDHT_IMPORT_WORKER_POLL_SECONDS``. ``cdht import-worker`` runs the same loop on its own, for
  deployments that keep long imports out of the API processes (set ``CDHT_IMPORT_WORKER=false`` there).
- Claiming: ``UPDATE … SET status='running' WHERE id=… AND <still claimable>`` — of several processes
  racing for one job exactly one updates the row. The claim sets a lease of the job timeout plus a
  margin; a run that outlives ``CDHT_IMPORT_JOB_TIMEOUT_SECONDS`` is cancelled, so a ``running`` job whose
  lease has passed belongs to a process that died (its transaction rolled back with it) and is claimed
  again — at most :data:`MAX_ATTEMPTS` times, then it is failed.
- The run: the sender's account is loaded afresh (a deactivated account, or one that lost its import
  role, fails the job as the request would have been refused), :func:`app.imports.service.run` imports
  the file all or nothing, and the job is marked ``done`` **in the same transaction** as the import: the
  data and the "done" commit together or not at all.
- Webhooks: a finished job (done or failed) queues ``import.finished`` in the transaction that finishes it.
- Stopping: a cancelled run (the process shutting down) rolls back and puts its job back in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.deps import load_subject
from app.core import i18n
from app.core.config import Settings
from app.core.db import on_commit, unit_of_work, utcnow
from app.core.errors import AppError, Forbidden, NotFound
from app.imports import events, jobs, service
from app.imports import repository as repo
from app.imports.models import ImportJob

log = logging.getLogger("cdht.imports")

MAX_ATTEMPTS = 3
LEASE_MARGIN = timedelta(minutes=5)
SWEEP_GRACE_SECONDS = 3600.0


class ImportJobRunner:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.files = jobs.JobFiles(settings.effective_import_jobs_dir)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A job was committed: look now rather than at the next poll."""
        self._wake.set()

    async def run_forever(self) -> None:
        await self._sweep()
        while True:
            try:
                await self.run_pending()
            except Exception:  # e.g. the database is unreachable: say so, and try again at the next poll
                log.exception("import job runner: could not take or finish a job; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.import_worker_poll_seconds)
            self._wake.clear()

    async def run_pending(self) -> int:
        """Run queued jobs (and jobs lost with their process) until none is left; how many ran."""
        ran = 0
        while (job := await self._claim()) is not None:
            await self._run(job)
            ran += 1
        return ran

    async def _claim(self) -> ImportJob | None:
        lease = timedelta(seconds=self.settings.import_job_timeout_seconds) + LEASE_MARGIN
        async with unit_of_work(self.sessionmaker) as session:
            return await repo.claim_job(session, utcnow(), lease)

    async def _run(self, job: ImportJob) -> None:
        if job.attempts > MAX_ATTEMPTS:
            message = f"The import was interrupted {MAX_ATTEMPTS} times; send the file again."
            await self._fail(job, "internal_error", message)
            return
        log.info("import job %s: %s, %s bytes, attempt %s", job.id, job.kind, job.file_size, job.attempts)
        deadline = asyncio.timeout(self.settings.import_job_timeout_seconds)
        try:
            with i18n.using(job.language):
                async with deadline, unit_of_work(self.sessionmaker) as session:
                    await self._import(session, job)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._requeue(job))
            raise
        except Exception as exc:
            await self._fail(job, *self._failure(job, exc, deadline.expired()))

    def _failure(self, job: ImportJob, exc: Exception, overran: bool) -> tuple[str, str]:
        """The job's ``error`` for what stopped it (called inside the ``except``: the trace is logged)."""
        if isinstance(exc, AppError):
            return exc.code, exc.message
        if isinstance(exc, TimeoutError) and overran:
            seconds = self.settings.import_job_timeout_seconds
            return "timeout", f"The import took longer than {seconds} s and was stopped; nothing was written."
        log.exception("import job %s failed", job.id)
        return "internal_error", "The import failed; nothing was written."

    async def _import(self, session: AsyncSession, job: ImportJob) -> None:
        subject = await load_subject(session, job.actor_user_id) if job.actor_user_id else None
        if subject is None:
            raise Forbidden("The account that sent this file is no longer active.")
        if not self.files.path(job.stored_name).is_file():
            raise NotFound("The uploaded file is no longer on the server; send it again.")
        spooled = self.files.open(job)
        try:
            summary = await service.run(session, subject, job.kind, spooled, dry_run=job.dry_run)
        finally:
            spooled.close()
        await self._finish(
            session, job, jobs.DONE, summary=summary.model_dump(mode="json"), import_id=summary.import_id
        )
        await events.announce(
            session,
            actor_user_id=job.actor_user_id,
            kind=job.kind,
            dry_run=job.dry_run,
            summary=summary,
            job_id=job.id,
        )
        log.info(
            "import job %s done: created %s, updated %s, unchanged %s, errors %s",
            job.id,
            summary.created,
            summary.updated,
            summary.unchanged,
            summary.error_count,
        )

    async def _fail(self, job: ImportJob, code: str, message: str) -> None:
        log.warning("import job %s failed: %s", job.id, message)
        async with unit_of_work(self.sessionmaker) as session:
            await self._finish(session, job, jobs.FAILED, error={"code": code, "message": message})
            await events.announce(
                session,
                actor_user_id=job.actor_user_id,
                kind=job.kind,
                dry_run=job.dry_run,
                job_id=job.id,
                error_code=code,
            )

    async def _finish(self, session: AsyncSession, job: ImportJob, status: str, **values: Any) -> None:
        await repo.finish_job(session, job.id, status, utcnow(), **values)
        on_commit(session, lambda: self.files.delete(job.stored_name))

    async def _requeue(self, job: ImportJob) -> None:
        async with unit_of_work(self.sessionmaker) as session:
            await repo.requeue_job(session, job.id)

    async def _sweep(self) -> None:
        """Delete upload files that no waiting job names (see :meth:`jobs.JobFiles.sweep`)."""
        try:
            async with unit_of_work(self.sessionmaker, write=False) as session:  # reads: no write lock
                waiting = await repo.waiting_job_files(session)
            removed = self.files.sweep(waiting, SWEEP_GRACE_SECONDS)
        except Exception:
            log.exception("import job runner: could not sweep %s", self.files.root)
            return
        if removed:
            log.info("import job runner: removed %s upload file(s) no job was waiting for", len(removed))
