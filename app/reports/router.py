"""Report and export endpoints: ``GET /reports/annual``, ``GET /exports/evaluations``,
``GET /exports/recognised``."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import Query, Request, Response
from fastapi.responses import StreamingResponse

from app.aggregates.freshness import unchanged
from app.auth.deps import CurrentSubject, ReadSession, ReadSessionmaker
from app.auth.policy import Action
from app.core import conditional, i18n
from app.core.db import DbSession
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID
from app.reports import annual, exports, formats
from app.reports.schemas import AnnualReport

reports_router = ScopedRouter(prefix="/reports", tags=["reports"])
exports_router = ScopedRouter(prefix="/exports", tags=["exports"])

UnitId = Annotated[int, Query(ge=1, le=MAX_ID, description="The unit whose subtree is reported.")]
Year = Annotated[int, Query(ge=2000, le=2100)]
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"}


@reports_router.get(
    "/annual",
    response_model=AnnualReport,
    responses={
        200: {"content": {CSV_TYPE: {}, XLSX_TYPE: {}}, "description": "JSON, CSV or XLSX."},
        **conditional.NOT_MODIFIED,
    },
)
async def annual_report(
    org_unit_id: UnitId,
    year: Year,
    subject: CurrentSubject,
    session: ReadSession,
    request: Request,
    response: Response,
    format: Literal["json", "csv", "xlsx"] = "json",
) -> Response:
    """Per direct child unit and per group: registered, self-assessed, submitted, reviewed, passed,
    recognised, with digital skills, proficient, and the shares against the plans' targets; totals first.
    CSV and XLSX headings, labels and metric names follow ``Accept-Language`` (English, or ``vi``); JSON
    has codes only. Viewers, org_admins and integration accounts of the subtree. ``ETag`` and ``304`` as
    the aggregates (any change to people or evaluations moves it too)."""
    if done := await unchanged(
        request, response, session, subject, org_unit_id, Action.REPORT_READ, records=True
    ):
        return done
    report = await annual.annual(session, subject, org_unit_id, year)
    name = f"bao-cao-cdht-{year}-{report.total.code or report.org_unit_id}"
    if format == "csv":
        out = Response(
            formats.to_csv(report, i18n.current()), media_type=CSV_TYPE, headers=attachment(f"{name}.csv")
        )
    elif format == "xlsx":
        out = Response(
            formats.to_xlsx(report, i18n.current()), media_type=XLSX_TYPE, headers=attachment(f"{name}.xlsx")
        )
    else:
        out = Response(report.model_dump_json(), media_type="application/json")
    return conditional.tagged(out, response)


@exports_router.get("/evaluations", response_class=StreamingResponse)
async def export_evaluations(
    org_unit_id: UnitId, year: Year, subject: CurrentSubject, session: DbSession, reads: ReadSessionmaker
) -> StreamingResponse:
    """Every evaluation of the subtree and year as CSV (streamed; UTF-8 with BOM): the ten effective
    scores, total, status, digital level, decision number. org_admin or integration."""
    await exports.check_unit(session, subject, org_unit_id)
    rows = exports.evaluations_csv(reads, org_unit_id, year)
    return StreamingResponse(
        rows, media_type=CSV_TYPE, headers=attachment(f"danh-gia-{year}-{org_unit_id}.csv")
    )


@exports_router.get("/recognised", response_class=StreamingResponse)
async def export_recognised(
    decision_id: Annotated[int, Query(ge=1, le=MAX_ID)],
    subject: CurrentSubject,
    session: DbSession,
    reads: ReadSessionmaker,
) -> StreamingResponse:
    """The people a recognition decision lists, as CSV (UTF-8 with BOM). org_admin or integration."""
    decision = await exports.visible_decision(session, subject, decision_id)
    rows = exports.recognised_csv(reads, decision)
    return StreamingResponse(rows, media_type=CSV_TYPE, headers=attachment(f"cong-nhan-{decision_id}.csv"))
