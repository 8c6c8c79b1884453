"""Report submissions and reporting calendars."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class SubmissionStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    RETURNED = "returned"
    # A later version of the same unit and year replaced it (only the latest version is current).
    SUPERSEDED = "superseded"


_STATUSES_SQL = ", ".join(f"'{s.value}'" for s in SubmissionStatus)


class ReportSubmission(Base):
    """Báo cáo đã nộp: a unit's annual report for a year as it stood when submitted to the level above.

    ``snapshot`` is the annual report JSON and ``xlsx`` the same report as a workbook, frozen; ``sha256``
    hashes the snapshot's canonical JSON. ``counts_sha256`` fingerprints the subtree's counted numbers
    (the aggregates' cells of the year) so the parent sees "changed since submission" without rebuilding
    the report. Each submission of a (unit, year) is a new ``version``; the previous current one becomes
    ``superseded``.
    """

    __tablename__ = "report_submissions"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES_SQL})", name="status_known"),
        UniqueConstraint("org_unit_id", "year", "version"),
        Index("ix_report_submissions_year_org_unit_id", "year", "org_unit_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    year: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=SubmissionStatus.SUBMITTED.value)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sha256: Mapped[str] = mapped_column(String(64))
    counts_sha256: Mapped[str] = mapped_column(String(64))
    # The subtree's counter versions (``aggregate_versions``) summed over the years up to ``year``, read
    # before the counts: the same sum later means the same counts (None for submissions older than it).
    counts_version: Mapped[int | None] = mapped_column(BigInteger)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    xlsx: Mapped[bytes] = mapped_column(LargeBinary)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    return_reason: Mapped[str | None] = mapped_column(Text)


class ReportingCalendar(Base):
    """Lịch báo cáo: the day by which units below ``org_unit_id`` report for ``year`` — its direct children
    (``kind`` empty) or every unit of ``kind`` in its subtree. Of the entries above a unit, the nearest
    setter's applies; at one setter, the entry for the unit's kind before the children's one."""

    __tablename__ = "reporting_calendars"
    __table_args__ = (UniqueConstraint("org_unit_id", "year", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"))
    year: Mapped[int] = mapped_column(Integer)
    # '' = the setter's direct children; else an org-unit kind (every unit of that kind below the setter).
    kind: Mapped[str] = mapped_column(String(20), default="")
    due_on: Mapped[date] = mapped_column(Date)
    # Where the date came from: 'seed' (criteria_seeds/plans) or 'user'; a seed never overwrites a user's.
    source: Mapped[str] = mapped_column(String(10), default="user")
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
