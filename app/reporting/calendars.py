"""Reporting calendars (lịch báo cáo) and completeness (tình hình nộp báo cáo).

- A unit's ``org_admin`` sets, per year, the day by which its direct children report (``kind`` omitted)
  or by which every unit of a kind in its subtree reports (``kind``: e.g. the education office's
  "schools by 10 January"). A unit's due date is the nearest setter's above it; at one setter the entry
  for its kind wins over the children's one (``repository.due_dates``). Seeded defaults come from the
  plans' ``reporting`` entries (``criteria_seeds/plans``) and never replace a date a user set.
- A due date falls on or after 1 January of the year it is for (the data window may still be open: a
  report is a snapshot that may later change), and at most two years later.
- Completeness of a unit for a year lists its children as the tree stood on the unit's reference day
  of the year (as the annual report does): status ``not_submitted`` or the current version's status,
  ``late`` (submitted after the due date, or still missing or returned once the date has passed — dates
  are the service's UTC dates), ``changed_since_submission`` (the live counted numbers differ from the
  snapshot's), and ``on_time_pct`` = children whose current report came in by the due date / children
  with a due date.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import repository as aggregates_repo
from app.aggregates import through_time
from app.aggregates.service import percent
from app.auth.policy import Action
from app.auth.scope import Subject
from app.core.audit import user_id_of
from app.core.dates import today
from app.core.errors import NotFound, ValidationFailed
from app.core.schemas import check_version
from app.orgs.models import OrgKind, OrgUnit
from app.orgs.service import get_visible as get_visible_unit
from app.plans.schemas import SeedPlan
from app.reporting import repository as repo
from app.reporting.models import ReportingCalendar, SubmissionStatus
from app.reporting.schemas import CalendarPut, CalendarRead, Completeness, CompletenessRow

NOT_SUBMITTED = "not_submitted"
MAX_YEARS_AFTER = 2


def to_read(entry: ReportingCalendar) -> CalendarRead:
    return CalendarRead(
        org_unit_id=entry.org_unit_id,
        year=entry.year,
        kind=entry.kind or None,  # stored '' (the setter's direct children) reads as null
        due_on=entry.due_on,
        source=entry.source,
        version=entry.version,
        updated_at=entry.updated_at,
    )


def check_due_on(year: int, due_on: date) -> None:
    if due_on < date(year, 1, 1):
        raise ValidationFailed(
            f"A report for {year} cannot be due before the year begins ({due_on.isoformat()}).",
            details={"field": "due_on"},
        )
    if due_on.year > year + MAX_YEARS_AFTER:
        raise ValidationFailed(
            f"A report for {year} is due by {year + MAX_YEARS_AFTER} at the latest.",
            details={"field": "due_on"},
        )


async def put(
    session: AsyncSession, subject: Subject, unit_id: int, year: int, data: CalendarPut, if_match: int | None
) -> tuple[CalendarRead, bool]:
    """Set (or replace) a due date; ``True`` when the entry is new."""
    await get_visible_unit(session, subject, unit_id, Action.CALENDAR_WRITE)
    check_due_on(year, data.due_on)
    kind = data.kind.value if data.kind is not None else ""
    entry = await repo.calendar_entry(session, unit_id, year, kind)
    created = entry is None
    if entry is None:
        entry = ReportingCalendar(org_unit_id=unit_id, year=year, kind=kind, version=1)
        session.add(entry)
    else:
        check_version(entry.version, data.version, if_match)
        entry.version += 1
    entry.due_on = data.due_on
    entry.source = "user"
    entry.updated_by = user_id_of(subject)
    await session.flush()
    return to_read(entry), created


async def seed_deadlines(session: AsyncSession, unit: OrgUnit, plan: SeedPlan) -> list[str]:
    """The due dates a seed plan states, for each year of the plan the setter existed in: written where
    no date is set, updated where the seed set one, never where a user did."""
    written = kept = 0
    for deadline in plan.reporting:
        setter = unit if deadline.setter == "self" else await session.get(OrgUnit, unit.parent_id or 0)
        if setter is None:
            continue
        kind = deadline.kind.value if deadline.kind else (unit.kind if deadline.setter == "parent" else "")
        first = max(plan.start_year, setter.valid_from.year if setter.valid_from else plan.start_year)
        last = min(plan.end_year, setter.valid_to.year if setter.valid_to else plan.end_year)
        for year in range(first, last + 1):
            entry = await repo.calendar_entry(session, setter.id, year, kind)
            due_on = deadline.due_on(year)
            if entry is not None and (entry.source != "seed" or entry.due_on == due_on):
                kept += 1
                continue
            if entry is None:
                entry = ReportingCalendar(org_unit_id=setter.id, year=year, kind=kind, version=0)
                session.add(entry)
            entry.due_on, entry.source, entry.version = due_on, "seed", entry.version + 1
            written += 1
    await session.flush()
    return [f"plan {plan.key}: reporting calendar, {written} due date(s) written, {kept} kept"]


async def entries(
    session: AsyncSession, subject: Subject, unit_id: int, year: int | None
) -> list[CalendarRead]:
    await get_visible_unit(session, subject, unit_id, Action.REPORTING_READ)
    return [to_read(e) for e in await repo.calendar_entries(session, unit_id, year)]


async def delete(
    session: AsyncSession, subject: Subject, unit_id: int, year: int, kind: str | None, if_match: int | None
) -> None:
    await get_visible_unit(session, subject, unit_id, Action.CALENDAR_WRITE)
    entry = await repo.calendar_entry(session, unit_id, year, kind or "")
    if entry is None:
        raise NotFound("No due date is set here for that year.")
    check_version(entry.version, if_match)
    await session.delete(entry)


async def completeness(
    session: AsyncSession, subject: Subject, unit_id: int, year: int, kind: OrgKind | None = None
) -> Completeness:
    """The unit's children, or with ``kind`` every unit of that kind in its subtree (the education
    office's view of all its schools), as the tree stood on the unit's reference day of the year."""
    unit = await get_visible_unit(session, subject, unit_id, Action.REPORTING_READ)
    day = through_time.reference_day(unit, year)
    if day is None:
        children = []
    elif kind is None:
        children = await aggregates_repo.children_on(session, unit_id, day)
    else:
        children = await repo.descendants_of_kind(session, unit_id, day, kind.value)
    ids = [c.id for c in children]
    dues = await repo.due_dates(session, [unit_id, *ids], year)
    current = await repo.current_submissions(session, ids, year)
    frozen = {i: repo.Frozen(sub.counts_sha256, sub.counts_version) for i, sub in current.items()}
    changed = await repo.changed(session, [c for c in children if c.id in current], year, frozen)
    codes = await repo.codes(session, ids)
    now = today()
    items: list[CompletenessRow] = []
    on_time = submitted = with_due = 0
    for child in children:
        due = dues.get(child.id)
        sub = current.get(child.id)
        counts = sub is not None and sub.status != SubmissionStatus.RETURNED.value
        due_on = due.due_on if due else None
        if sub is None or not counts:
            late = due_on is not None and now > due_on
        else:
            late = due_on is not None and sub.submitted_at.date() > due_on
        with_due += due_on is not None
        submitted += counts
        on_time += counts and due_on is not None and not late
        items.append(
            CompletenessRow(
                org_unit_id=child.id,
                code=codes.get(child.id),
                name=child.name,
                kind=child.kind,
                status=sub.status if sub else NOT_SUBMITTED,
                submission_id=sub.id if sub else None,
                version=sub.version if sub else None,
                submitted_at=sub.submitted_at if sub else None,
                due_on=due_on,
                late=late,
                changed_since_submission=changed[child.id] if sub else None,
            )
        )
    own = dues.get(unit_id)
    return Completeness(
        org_unit_id=unit_id,
        year=year,
        due_on=own.due_on if own else None,
        items=items,
        expected=len(items),
        submitted=submitted,
        on_time=on_time,
        on_time_pct=percent(on_time, with_due),
    )
