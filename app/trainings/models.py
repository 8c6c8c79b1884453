"""Training sessions and their attendance."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class TrainingSession(Base):
    """Buổi tập huấn / hội nghị quán triệt tiêu chí Công dân học tập, held by a unit on one day."""

    __tablename__ = "training_sessions"
    __table_args__ = (Index("ix_training_sessions_year_id", "year", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    held_on: Mapped[date] = mapped_column(Date)
    # The calendar year of ``held_on``, kept as a column so ``trained_pct`` filters by an index.
    year: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Attendance(Base):
    """One person's attendance of one session."""

    __tablename__ = "training_attendance"
    __table_args__ = (Index("ix_training_attendance_person_id_session_id", "person_id", "session_id"),)

    session_id: Mapped[int] = mapped_column(
        ForeignKey("training_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="RESTRICT"), primary_key=True)
