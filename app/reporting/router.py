"""Reporting cycle endpoints: ``/report-submissions``, ``/reporting-calendars/{unit}/{year}``,
``/reporting/completeness``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Path, Query, Request, Response, status

from app.aggregates.freshness import unchanged
from app.auth.deps import CurrentSubject, ReadSession
from app.auth.policy import Action
from app.core import conditional
from app.core.db import DbSession
from app.core.pagination import Page, Pagination
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID, IdPath, if_match
from app.orgs.models import OrgKind
from app.reporting import calendars, service, xlsx
from app.reporting.models import SubmissionStatus
from app.reporting.schemas import (
    CalendarPut,
    CalendarRead,
    Completeness,
    SubmissionCreate,
    SubmissionDetail,
    SubmissionRead,
    SubmissionReturn,
)
from app.reports.router import XLSX_TYPE, attachment

router = ScopedRouter(tags=["reporting"])
IfMatch = Annotated[int | None, Depends(if_match)]
UnitQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
YearPath = Annotated[int, Path(ge=2000, le=2100)]
YearQuery = Annotated[int, Query(ge=2000, le=2100)]


@router.post("/report-submissions", status_code=status.HTTP_201_CREATED, response_model=SubmissionDetail)
async def submit_report(
    body: SubmissionCreate, subject: CurrentSubject, session: DbSession
) -> SubmissionDetail:
    """Freeze the unit's annual report for the year (JSON, XLSX, SHA-256) and send it to the level above.
    org_admin or approver of the unit. A later submission is a new version. 409 for a year the unit did
    not exist in, a future year, or a year nobody in the subtree was evaluated."""
    return await service.submit(session, subject, body)


@router.get("/report-submissions", response_model=Page[SubmissionRead])
async def list_submissions(
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    org_unit_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="That unit's submissions.")] = None,
    parent_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="The submissions of that unit's children.")
    ] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    status: SubmissionStatus | None = None,
) -> Page[SubmissionRead]:
    """Submissions the caller may read (without the snapshot), newest year first, latest version first."""
    return await service.list_submissions(
        session, subject, page, org_unit_id=org_unit_id, parent_id=parent_id, year=year, status=status
    )


@router.get("/report-submissions/{submission_id}", response_model=SubmissionDetail)
async def get_submission(
    submission_id: IdPath, subject: CurrentSubject, session: DbSession
) -> SubmissionDetail:
    return await service.get(session, subject, submission_id)


@router.get(
    "/report-submissions/{submission_id}/file",
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}}, "description": "The XLSX as submitted."}},
)
async def submission_file(submission_id: IdPath, subject: CurrentSubject, session: DbSession) -> Response:
    content, filename = await service.file(session, subject, submission_id)
    return Response(content, media_type=XLSX_TYPE, headers=attachment(filename))


@router.post("/report-submissions/{submission_id}/accept", response_model=SubmissionDetail)
async def accept_submission(
    submission_id: IdPath, subject: CurrentSubject, session: DbSession
) -> SubmissionDetail:
    """By an org_admin or approver of a unit above the submitting one; only the current version, from
    ``submitted``."""
    return await service.accept(session, subject, submission_id)


@router.post("/report-submissions/{submission_id}/return", response_model=SubmissionDetail)
async def return_submission(
    submission_id: IdPath, body: SubmissionReturn, subject: CurrentSubject, session: DbSession
) -> SubmissionDetail:
    """Send the report back with a reason (from ``submitted`` or ``accepted``); the unit resubmits."""
    return await service.return_(session, subject, submission_id, body.reason)


@router.put("/reporting-calendars/{org_unit_id}/{year}", response_model=CalendarRead)
async def put_calendar(
    org_unit_id: IdPath,
    year: YearPath,
    body: CalendarPut,
    subject: CurrentSubject,
    session: DbSession,
    response: Response,
    expected: IfMatch,
) -> CalendarRead:
    """The day by which the unit's children (or, with ``kind``, every unit of that kind below it) report
    for the year. org_admin of the unit. 201 when new, 200 when replaced (send its ``version``)."""
    entry, created = await calendars.put(session, subject, org_unit_id, year, body, expected)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return entry


@router.get("/reporting-calendars/{org_unit_id}", response_model=list[CalendarRead])
async def list_calendar(
    org_unit_id: IdPath,
    subject: CurrentSubject,
    session: DbSession,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> list[CalendarRead]:
    """The due dates the unit has set (all years, or one)."""
    return await calendars.entries(session, subject, org_unit_id, year)


@router.get("/reporting-calendars/{org_unit_id}/{year}", response_model=list[CalendarRead])
async def get_calendar(
    org_unit_id: IdPath, year: YearPath, subject: CurrentSubject, session: DbSession
) -> list[CalendarRead]:
    return await calendars.entries(session, subject, org_unit_id, year)


@router.delete("/reporting-calendars/{org_unit_id}/{year}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_calendar(
    org_unit_id: IdPath,
    year: YearPath,
    subject: CurrentSubject,
    session: DbSession,
    expected: IfMatch,
    kind: OrgKind | None = None,
) -> Response:
    await calendars.delete(session, subject, org_unit_id, year, kind.value if kind else None, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/reporting/completeness",
    response_model=Completeness,
    responses={200: {"content": {XLSX_TYPE: {}}, "description": "JSON or XLSX."}, **conditional.NOT_MODIFIED},
)
async def completeness(
    subject: CurrentSubject,
    session: ReadSession,
    request: Request,
    response: Response,
    org_unit_id: Annotated[int, Query(ge=1, le=MAX_ID)],
    year: YearQuery,
    format: Literal["json", "xlsx"] = "json",
    kind: Annotated[
        OrgKind | None,
        Query(description="List every unit of this kind in the subtree instead of the direct children."),
    ] = None,
) -> Response:
    """Who of the unit's children has reported for the year, when, against which due date; late ones;
    reports whose numbers changed since; the share on time. Roles that read reports (viewers too).
    ``ETag`` and ``304`` as the aggregates."""
    if done := await unchanged(request, response, session, subject, org_unit_id, Action.REPORTING_READ):
        return done
    result = await calendars.completeness(session, subject, org_unit_id, year, kind)
    if format == "xlsx":
        out = Response(
            xlsx.completeness(result),
            media_type=XLSX_TYPE,
            headers=attachment(f"tinh-hinh-nop-bao-cao-{year}-{org_unit_id}.xlsx"),
        )
    else:
        out = Response(result.model_dump_json(), media_type="application/json")
    return conditional.tagged(out, response)
