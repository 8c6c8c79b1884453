"""Import endpoints: ``POST /imports/org-units``, ``POST /imports/people`` and
``POST /imports/reorganisation`` (multipart ``file``), and ``GET /imports/jobs/{job_id}`` for the files too
large to import inside their request."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, File, Query, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse

from app.auth.deps import CurrentSubject
from app.core.config import Settings
from app.core.db import DbSession
from app.core.deps import AppSettings
from app.core.routing import ScopedRouter
from app.core.schemas import Id, Name, ShortText
from app.imports import households, jobs, service
from app.imports.models import ImportJob, ImportKind
from app.imports.runner import ImportJobRunner
from app.imports.schemas import ErrorBody, ImportJobRead, ImportSummary
from app.reorganisations import from_file
from app.reorganisations.schemas import ReorganisationRead

router = ScopedRouter(prefix="/imports", tags=["imports"])

Upload = Annotated[UploadFile, File(description="CSV (UTF-8 or Windows-1258; , ; or tab) or XLSX")]
DryRun = Annotated[bool, Query(description="Check and count only; write nothing.")]
_ANSWERS: dict[int | str, dict[str, object]] = {
    202: {
        "model": ImportJobRead,
        "description": "A file larger than CDHT_IMPORT_JOB_BYTES: queued; follow `Location` (status_url).",
    },
    422: {
        "model": ImportSummary | ErrorBody,
        "description": "Rows with errors (the summary; nothing was written), or a malformed request.",
    },
    413: {"description": "The file is larger than CDHT_MAX_IMPORT_BYTES."},
    415: {"description": "Neither CSV nor XLSX."},
}


async def import_jobs(request: Request) -> ImportJobRunner:
    runner: ImportJobRunner = request.app.state.import_jobs  # set by app.main.create_app
    return runner


Runner = Annotated[ImportJobRunner, Depends(import_jobs)]


async def _answer(
    settings: Settings,
    runner: ImportJobRunner,
    session: DbSession,
    subject: CurrentSubject,
    kind: ImportKind,
    file: UploadFile,
    dry_run: bool,
) -> JSONResponse:
    outcome = await service.submit(session, subject, kind, file, settings, runner, dry_run=dry_run)
    if isinstance(outcome, ImportJob):
        job = jobs.to_read(outcome)
        headers = {"Location": job.status_url}
        return JSONResponse(job.model_dump(mode="json"), status_code=202, headers=headers)
    status = 422 if outcome.error_count and not dry_run else 200
    return JSONResponse(outcome.model_dump(mode="json"), status_code=status)


@router.post("/org-units", response_model=ImportSummary, responses=_ANSWERS)
async def import_org_units(
    subject: CurrentSubject,
    session: DbSession,
    settings: AppSettings,
    runner: Runner,
    file: Upload,
    dry_run: DryRun = False,
) -> JSONResponse:
    """Units keyed by ``code``: columns ``code, name, kind, parent_code`` (Vietnamese headings accepted).
    All or nothing; ``dry_run=true`` only reports what would happen. A file larger than
    ``CDHT_IMPORT_JOB_BYTES`` answers 202: follow ``Location`` to the job."""
    return await _answer(settings, runner, session, subject, "org_units", file, dry_run)


@router.post("/people", response_model=ImportSummary, responses=_ANSWERS)
async def import_people(
    subject: CurrentSubject,
    session: DbSession,
    settings: AppSettings,
    runner: Runner,
    file: Upload,
    dry_run: DryRun = False,
) -> JSONResponse:
    """People keyed by ``citizen_id`` when given: ``full_name, unit_code, group, birth_year, citizen_id,
    gender``. All or nothing; ``dry_run=true`` only reports what would happen. A file larger than
    ``CDHT_IMPORT_JOB_BYTES`` answers 202: follow ``Location`` to the job."""
    return await _answer(settings, runner, session, subject, "people", file, dry_run)


@router.post("/households", response_model=households.HouseholdImportSummary, responses=households.ANSWERS)
async def import_households(
    subject: CurrentSubject,
    session: DbSession,
    settings: AppSettings,
    runner: Runner,
    file: Upload,
    dry_run: DryRun = False,
) -> JSONResponse:
    """Households keyed by ``household_code``, one row per member: ``household_code, household_name,
    unit_code, member_citizen_id`` (Vietnamese headings accepted). New households are created, known ones
    renamed, moved and given the members listed. All or nothing; ``dry_run=true`` only reports."""
    summary = await households.run(session, subject, file, settings, dry_run=dry_run)
    status = 422 if summary.error_count and not dry_run else 200
    return JSONResponse(summary.model_dump(mode="json"), status_code=status)


@router.post(
    "/reorganisation",
    status_code=status.HTTP_201_CREATED,
    response_model=ReorganisationRead,
    responses={422: {"model": ErrorBody, "description": "Row problems (details.errors); nothing written."}},
)
async def import_reorganisation(
    settings: AppSettings,
    subject: CurrentSubject,
    session: DbSession,
    file: Upload,
    response: Response,
    effective_on: Annotated[date, Query(description="The day the new tree takes effect (today or earlier).")],
    dry_run: DryRun = False,
    title: Annotated[Name | None, Query()] = None,
    document_no: Annotated[ShortText | None, Query()] = None,
) -> ReorganisationRead:
    """A reorganisation from a file: ``old_code, new_code, new_name, new_kind, new_parent_code``. Rows
    sharing a ``new_code`` merge into it (created when the code is new); an empty ``new_code`` only moves
    ``old_code`` under ``new_parent_code``. As ``POST /reorganisations``: all or nothing, 201 (a dry run
    200)."""
    result = await from_file.apply_file(
        session,
        subject,
        file,
        settings,
        effective_on=effective_on,
        dry_run=dry_run,
        title=title,
        document_no=document_no,
    )
    if dry_run:
        response.status_code = status.HTTP_200_OK
    return result


@router.get("/jobs/{job_id}", response_model=ImportJobRead)
async def get_import_job(job_id: Id, subject: CurrentSubject, session: DbSession) -> ImportJobRead:
    """A queued import: its status, then the summary the request would have answered (or the error).
    Visible to the account that sent the file."""
    return jobs.to_read(await jobs.get(session, subject, job_id))
