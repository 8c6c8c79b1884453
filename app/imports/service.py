"""Running an import: spool the upload, read it, apply the rows all or nothing, record the import.

- All or nothing: the rows are applied inside a SAVEPOINT; with any row error (or on a dry run) it is
  rolled back, so no unit or person is written, while the :class:`ImportRecord` of the attempt is kept by
  the request's own commit. The router answers 422 with the summary when a real import had errors.
- Audit: one ``audit_entries`` row per applied import (entity ``import``, the record's id), whose
  ``after`` holds the summary and the ids created and updated — at most 1,000 of each. One entry per row
  would double the size of a 100,000-row import and slow it several-fold; the record keeps the file's
  SHA-256, so the sender's copy of the file can be matched to the import exactly, row by row.
- Parsing runs in a worker thread a chunk at a time so a large file never blocks the event loop for long.
- A file larger than ``CDHT_IMPORT_JOB_BYTES`` is not run in its request: :func:`submit` queues it
  (app/imports/jobs.py) and a runner (app/imports/runner.py) calls :func:`run` on it later, in a
  transaction of its own, exactly as the request would have.
- Webhooks: an import applied in its request, and every finished job, queue ``import.finished``
  (app/imports/events.py) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

import anyio
from fastapi import UploadFile
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Action
from app.auth.scope import Subject, require_any_role
from app.core import audit
from app.core.config import Settings
from app.imports import events, jobs, parsing, units
from app.imports.columns import PEOPLE, UNITS
from app.imports.models import ImportJob, ImportKind, ImportRecord
from app.imports.people import CHUNK_ROWS, PeopleImport
from app.imports.schemas import AUDIT_ID_CAP, ImportSummary, Problems, Tally

KEPT_ERRORS = 100


async def submit(
    session: AsyncSession,
    subject: Subject,
    kind: ImportKind,
    upload: UploadFile,
    settings: Settings,
    queue: jobs.Queue,
    *,
    dry_run: bool,
) -> ImportSummary | ImportJob:
    """Run the import now, or — a file larger than ``CDHT_IMPORT_JOB_BYTES`` — queue it as a job."""
    require_any_role(subject, Action.IMPORT_WRITE)
    spooled = await anyio.to_thread.run_sync(parsing.spool, upload, settings.max_import_bytes)
    try:
        if spooled.size > settings.import_job_bytes:
            return await jobs.enqueue(session, subject, kind, spooled, queue, dry_run=dry_run)
        summary = await run(session, subject, kind, spooled, dry_run=dry_run)
    finally:
        spooled.close()
    if not dry_run and not summary.error_count:
        await events.announce(
            session, actor_user_id=audit.user_id_of(subject), kind=kind, dry_run=False, summary=summary
        )
    return summary


async def run(
    session: AsyncSession, subject: Subject, kind: ImportKind, spooled: parsing.Spooled, *, dry_run: bool
) -> ImportSummary:
    """Apply a spooled file all or nothing (in a savepoint), record the attempt and answer the summary."""
    require_any_role(subject, Action.IMPORT_WRITE)
    if session.get_bind().dialect.name == "postgresql":
        # Every chunk's look-up is the same prepared statement; a generic plan made while the table was
        # small would stay a sequential scan as the import fills it (quadratic time). Custom plans see
        # the table grow. SET LOCAL: for this transaction only.
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    problems = Problems()
    tally = Tally()
    savepoint = await session.begin_nested()
    try:
        spec = UNITS if kind == "org_units" else PEOPLE
        table = await anyio.to_thread.run_sync(parsing.open_table, spooled, spec, problems)
        if table is not None and kind == "org_units":
            rows = await anyio.to_thread.run_sync(list, table.rows)
            tally = await units.run(session, subject, rows, problems, write=not dry_run)
        elif table is not None:
            tally = await _people(session, subject, table.rows, problems, write=not dry_run)
    except BaseException:
        await savepoint.rollback()
        raise
    applied = not dry_run and not problems
    if applied:
        await savepoint.commit()
    else:
        await savepoint.rollback()
    record = ImportRecord(
        kind=kind,
        actor_user_id=audit.user_id_of(subject),
        filename=spooled.filename[:255],
        file_sha256=spooled.sha256,
        file_size=spooled.size,
        dry_run=dry_run,
        applied=applied,
        created=tally.created,
        updated=tally.updated,
        unchanged=tally.unchanged,
        error_count=problems.count,
        errors=[e.model_dump() for e in problems.items[:KEPT_ERRORS]] or None,  # no errors: null, not []
    )
    session.add(record)
    await session.flush()
    if applied:
        await audit.record(
            session,
            actor_user_id=audit.user_id_of(subject),
            entity_type="import",
            entity_id=record.id,
            action=f"{kind}_imported",
            after={
                "sha256": spooled.sha256,
                "created": tally.created,
                "updated": tally.updated,
                "unchanged": tally.unchanged,
                "created_ids": tally.created_ids,
                "updated_ids": tally.updated_ids,
                "ids_capped_at": AUDIT_ID_CAP,
            },
        )
    return ImportSummary(
        import_id=record.id,
        dry_run=dry_run,
        created=tally.created,
        updated=tally.updated,
        unchanged=tally.unchanged,
        errors=problems.items,
        error_count=problems.count,
        sha256=spooled.sha256,
    )


async def _people(
    session: AsyncSession, subject: Subject, rows: Iterator[parsing.Row], problems: Problems, *, write: bool
) -> Tally:
    importer = PeopleImport(session, subject, problems, write=write)
    while chunk := await anyio.to_thread.run_sync(lambda: list(islice(rows, CHUNK_ROWS))):
        await importer.chunk(chunk)
    await importer.finish()
    return importer.tally
