"""The demo's reporting cycle: Kon Rẫy's communes reported 2024 to the district association (two accepted,
one returned and sent again), and in 2025, after the reform, Kon Braih reports to Quảng Ngãi's association
(due 5 December, like the district's habit) and MN Tam Hưng A's 2025 report is waiting at its commune."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.scope import Subject
from app.orgs import repository as orgs_repo
from app.orgs.models import OrgKind
from app.reporting import calendars, service
from app.reporting.models import ReportSubmission
from app.reporting.schemas import CalendarPut, SubmissionCreate

# (unit code, year, when submitted, then: accepted | returned and sent again | waiting)
SUBMISSIONS: list[tuple[str, int, datetime, str]] = [
    ("23488", 2024, datetime(2024, 12, 3, 9, 30, tzinfo=UTC), "accepted"),
    ("23497", 2024, datetime(2024, 12, 5, 15, 0, tzinfo=UTC), "accepted"),
    ("23494", 2024, datetime(2024, 12, 4, 8, 0, tzinfo=UTC), "returned"),
    ("23497", 2025, datetime(2025, 12, 1, 10, 0, tzinfo=UTC), "waiting"),
    ("01-278-MN-TAMHUNGA", 2025, datetime(2026, 1, 8, 10, 0, tzinfo=UTC), "waiting"),
]


async def load_reporting(session: AsyncSession, system: Subject) -> list[str]:
    province = await orgs_repo.get_by_code(session, "51")
    assert province is not None
    await calendars.put(
        session, system, province.id, 2025, CalendarPut(due_on=date(2025, 12, 5), kind=OrgKind.COMMUNE), None
    )
    for code, year, at, then in SUBMISSIONS:
        unit = await orgs_repo.get_by_code(session, code)
        assert unit is not None
        made = await service.submit(session, system, SubmissionCreate(org_unit_id=unit.id, year=year))
        await _dated(session, made.id, at)
        if then == "accepted":
            await service.accept(session, system, made.id)
        elif then == "returned":
            await service.return_(session, system, made.id, "Thiếu danh sách hộ gia đình học tập của thôn.")
            again = await service.submit(session, system, SubmissionCreate(org_unit_id=unit.id, year=year))
            await _dated(session, again.id, at.replace(day=at.day + 2))
    return [f"Report submissions: {len(SUBMISSIONS) + 1} (Kon Rẫy 2024, Kon Braih and MN Tam Hưng A 2025)."]


async def _dated(session: AsyncSession, submission_id: int, at: datetime) -> None:
    """The demo's reports were sent on their own days, not when the demo is loaded."""
    await session.execute(
        update(ReportSubmission).where(ReportSubmission.id == submission_id).values(submitted_at=at)
    )
