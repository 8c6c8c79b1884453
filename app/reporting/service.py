"""Report submissions (nộp báo cáo): a unit's annual report frozen and sent to the level above, which
accepts it or returns it with a reason.

- Who: an ``org_admin`` or ``approver`` of the unit (or above it) submits (``REPORT_SUBMIT``); the same
  roles held **strictly above** the unit accept or return (``REPORT_REVIEW`` + ``authorize_above``): a
  unit does not accept its own report. Reading needs ``REPORTING_READ`` (counts only: viewers too).
- What is frozen: the annual report of ``app.reports.annual`` as JSON (``snapshot``, hashed as canonical
  JSON into ``sha256``) and as the XLSX a clerk would download, plus the fingerprint of the subtree's
  counted numbers (``counts_sha256``) that ``changed_since_submission`` compares with the live counters.
- Versions: every submission of a (unit, year) is a new version; the one before becomes ``superseded``
  whatever its status (a report resubmitted after acceptance must be accepted again). Only the current
  version can be accepted (from ``submitted``) or returned (from ``submitted`` or ``accepted``).
- Refused: a year the unit did not exist in, a future year, or a year with no evaluation counted in the
  subtree (nothing to report) — 409.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import through_time
from app.auth.policy import Action
from app.auth.scope import Subject, authorize, authorize_above, unit_filter
from app.core import audit
from app.core.dates import today
from app.core.db import utcnow
from app.core.errors import Conflict, InvalidTransition, NotFound
from app.core.pagination import Page, PageParams, fetch_page
from app.orgs.service import get_visible as get_visible_unit
from app.reporting import repository as repo
from app.reporting.models import ReportSubmission, SubmissionStatus
from app.reporting.schemas import SubmissionCreate, SubmissionDetail, SubmissionRead
from app.reports import annual, formats
from app.webhooks.models import EventType
from app.webhooks.outbox import emit

MISSING = "Report submission not found."
S = SubmissionStatus


def canonical_sha256(snapshot: dict[str, Any]) -> str:
    """SHA-256 of the snapshot as canonical JSON (sorted keys, no spaces, UTF-8): what a receiver
    recomputes from the JSON it was given to check it is the submitted one."""
    text = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _event_data(submission: ReportSubmission) -> dict[str, Any]:
    return {
        "submission_id": submission.id,
        "org_unit_id": submission.org_unit_id,
        "year": submission.year,
        "version": submission.version,
        "status": submission.status,
        "sha256": submission.sha256,
    }


async def submit(session: AsyncSession, subject: Subject, data: SubmissionCreate) -> SubmissionDetail:
    unit = await get_visible_unit(session, subject, data.org_unit_id, Action.REPORT_SUBMIT)
    if data.year > today().year:
        raise Conflict(
            f"{data.year} has not begun: there is nothing to report yet.", details={"field": "year"}
        )
    if through_time.reference_day(unit, data.year) is None:
        raise Conflict(f"The unit did not exist in {data.year}.", details={"field": "year"})
    counts_version, fingerprint, has_data = await repo.counted(session, unit, data.year)
    if not has_data:
        raise Conflict(
            f"Nobody in this unit's subtree has an evaluation of {data.year}: there is nothing to report.",
            details={"field": "year"},
        )
    report = await annual.build(session, unit, data.year)
    snapshot = report.model_dump(mode="json")
    version = await repo.next_version(session, unit.id, data.year)
    await repo.supersede(session, unit.id, data.year)
    submission = ReportSubmission(
        org_unit_id=unit.id,
        year=data.year,
        version=version,
        status=S.SUBMITTED.value,
        submitted_at=utcnow(),
        submitted_by=audit.user_id_of(subject),
        sha256=canonical_sha256(snapshot),
        counts_sha256=fingerprint,
        counts_version=counts_version,
        snapshot=snapshot,
        xlsx=formats.to_xlsx(report),
    )
    session.add(submission)
    await session.flush()
    await _record(session, subject, submission, "report.submitted", None)
    await emit(session, EventType.REPORT_SUBMITTED, unit.id, _event_data(submission))
    return _detail(submission, changed=False)


async def _reviewable(session: AsyncSession, subject: Subject, submission_id: int) -> ReportSubmission:
    submission = await _visible(session, subject, submission_id, Action.REPORT_REVIEW)
    await authorize_above(
        session,
        subject,
        submission.org_unit_id,
        Action.REPORT_REVIEW,
        "A report is accepted or returned by the level it was sent to, not by the unit that sent it.",
    )
    return submission


def _check_current(submission: ReportSubmission, allowed: frozenset[S], what: str) -> None:
    if submission.status not in allowed:
        raise InvalidTransition(
            f"A {submission.status} report cannot be {what}.",
            details={"status": submission.status, "allowed_from": sorted(s.value for s in allowed)},
        )


async def accept(session: AsyncSession, subject: Subject, submission_id: int) -> SubmissionDetail:
    submission = await _reviewable(session, subject, submission_id)
    _check_current(submission, frozenset({S.SUBMITTED}), "accepted")
    return await _review(session, subject, submission, S.ACCEPTED, None, EventType.REPORT_ACCEPTED)


async def return_(
    session: AsyncSession, subject: Subject, submission_id: int, reason: str
) -> SubmissionDetail:
    submission = await _reviewable(session, subject, submission_id)
    _check_current(submission, frozenset({S.SUBMITTED, S.ACCEPTED}), "returned")
    return await _review(session, subject, submission, S.RETURNED, reason, EventType.REPORT_RETURNED)


async def _review(
    session: AsyncSession,
    subject: Subject,
    submission: ReportSubmission,
    status: S,
    reason: str | None,
    event: EventType,
) -> SubmissionDetail:
    before = {"status": submission.status}
    submission.status = status.value
    submission.reviewed_at = utcnow()
    submission.reviewed_by = audit.user_id_of(subject)
    submission.return_reason = reason
    await session.flush()
    await _record(session, subject, submission, event.value, before)
    data = _event_data(submission) | ({"reason": reason} if reason else {})
    await emit(session, event, submission.org_unit_id, data)
    return await _with_changed(session, submission)


async def _record(
    session: AsyncSession, subject: Subject, submission: ReportSubmission, action: str, before: Any
) -> None:
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="report_submission",
        entity_id=submission.id,
        action=action,
        before=before,
        after={
            "status": submission.status,
            "version": submission.version,
            "sha256": submission.sha256,
            "return_reason": submission.return_reason,
        },
    )


async def _visible(
    session: AsyncSession, subject: Subject, submission_id: int, action: Action
) -> ReportSubmission:
    submission = await repo.get(session, submission_id)
    if submission is None:
        raise NotFound(MISSING)
    await authorize(session, subject, submission.org_unit_id, action, missing=MISSING)
    return submission


def _detail(submission: ReportSubmission, *, changed: bool | None) -> SubmissionDetail:
    read = SubmissionRead.model_validate(submission).model_dump()
    return SubmissionDetail(**read | {"changed_since_submission": changed}, snapshot=submission.snapshot)


async def _changed(session: AsyncSession, submissions: Sequence[ReportSubmission]) -> dict[int, bool]:
    """For the current (not superseded) submissions: whether the live counted numbers differ."""
    current = [s for s in submissions if s.status != S.SUPERSEDED.value]
    by_year: dict[int, list[ReportSubmission]] = {}
    for s in current:
        by_year.setdefault(s.year, []).append(s)
    changed: dict[int, bool] = {}
    for year, subs in by_year.items():
        units = await repo.units(session, [s.org_unit_id for s in subs])
        frozen = {s.org_unit_id: repo.Frozen(s.counts_sha256, s.counts_version) for s in subs}
        live = await repo.changed(session, units, year, frozen)
        changed |= {s.id: live.get(s.org_unit_id, True) for s in subs}
    return changed


async def _with_changed(session: AsyncSession, submission: ReportSubmission) -> SubmissionDetail:
    return _detail(submission, changed=(await _changed(session, [submission])).get(submission.id))


async def get(session: AsyncSession, subject: Subject, submission_id: int) -> SubmissionDetail:
    submission = await _visible(session, subject, submission_id, Action.REPORTING_READ)
    return await _with_changed(session, submission)


async def file(session: AsyncSession, subject: Subject, submission_id: int) -> tuple[bytes, str]:
    """The frozen XLSX and its file name."""
    submission = await _visible(session, subject, submission_id, Action.REPORTING_READ)
    code = (submission.snapshot.get("total") or {}).get("code") or submission.org_unit_id
    return submission.xlsx, f"bao-cao-cdht-{submission.year}-{code}-v{submission.version}.xlsx"


async def list_submissions(
    session: AsyncSession,
    subject: Subject,
    page: PageParams,
    *,
    org_unit_id: int | None = None,
    parent_id: int | None = None,
    year: int | None = None,
    status: S | None = None,
) -> Page[SubmissionRead]:
    """Newest year first; ``org_unit_id``: that unit's submissions; ``parent_id``: its children's."""
    where: list[ColumnElement[bool]] = [
        unit_filter(subject, Action.REPORTING_READ, ReportSubmission.org_unit_id)
    ]
    for unit_id in (org_unit_id, parent_id):
        if unit_id is not None:
            await get_visible_unit(session, subject, unit_id, Action.REPORTING_READ)
    if org_unit_id is not None:
        where.append(ReportSubmission.org_unit_id == org_unit_id)
    if parent_id is not None:
        where.append(ReportSubmission.org_unit_id.in_(repo.children_ids(parent_id)))
    if year is not None:
        where.append(ReportSubmission.year == year)
    if status is not None:
        where.append(ReportSubmission.status == status.value)
    rows, total = await fetch_page(session, repo.listing(where), page)
    changed = await _changed(session, rows)
    items = [
        SubmissionRead.model_validate(r).model_copy(update={"changed_since_submission": changed.get(r.id)})
        for r in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
