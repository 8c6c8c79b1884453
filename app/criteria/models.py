"""Criteria sets, their criteria (tiêu chí) and indicators (chỉ tiêu).

Points are whole numbers in the sets (10 per indicator, pass 80); thresholds that may be fractional
(the digital levels) are stored as half-points, like every score in the system.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class StoredGrade(TypedDict):
    """One of ``CriteriaSet.grades`` as stored (a ``SeedGrade`` of the seed file)."""

    code: str
    title: str
    min_total: int


class CriteriaSet(Base):
    """Bộ tiêu chí Công dân học tập for one population group (or the framework set, group NULL)."""

    __tablename__ = "criteria_sets"
    __table_args__ = (
        UniqueConstraint("code", "version"),
        CheckConstraint("status IN ('active', 'retired')", name="status_known"),
        CheckConstraint("pass_total <= max_total", name="pass_within_max"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(String(500))
    group: Mapped[str | None] = mapped_column("grp", String(20), index=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    source: Mapped[str | None] = mapped_column(Text)
    needs_verification: Mapped[bool] = mapped_column(Boolean, default=True)
    max_total: Mapped[int] = mapped_column(Integer, default=100)
    pass_total: Mapped[int] = mapped_column(Integer, default=80)
    min_indicator: Mapped[int] = mapped_column(Integer, default=5)
    # What the set recognises (``evaluations.models.Title``): the personal title or a collective one.
    recognises: Mapped[str] = mapped_column(String(30), default="learning_citizen", index=True)
    # Optional floors a declared digital level needs on the digital indicators (half-points); never at or
    # below ``min_indicator``, else every recognised person would qualify by construction.
    digital_basic_halves: Mapped[int | None] = mapped_column(Integer)
    digital_proficient_halves: Mapped[int | None] = mapped_column(Integer)
    # Graded results, highest first: [{"code", "title", "min_total"}] (None: recognised or not).
    grades: Mapped[list[StoredGrade] | None] = mapped_column(JSON)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("criteria_sets.id", ondelete="RESTRICT"))
    org_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id", ondelete="RESTRICT"), index=True
    )
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    content_digest: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Criterion(Base):
    """Tiêu chí: a numbered part of a set grouping its indicators."""

    __tablename__ = "criteria"
    __table_args__ = (UniqueConstraint("set_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("criteria_sets.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))


class Indicator(Base):
    """Chỉ tiêu: scored 0..max_points in half-point steps, with evidence."""

    __tablename__ = "indicators"
    __table_args__ = (
        UniqueConstraint("set_id", "number"),
        CheckConstraint("max_points > 0", name="max_points_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("criteria_sets.id", ondelete="CASCADE"), index=True)
    criterion_id: Mapped[int] = mapped_column(ForeignKey("criteria.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    max_points: Mapped[int] = mapped_column(Integer, default=10)
    evidence_hint: Mapped[str | None] = mapped_column(Text)
    digital: Mapped[bool] = mapped_column(Boolean, default=False)
