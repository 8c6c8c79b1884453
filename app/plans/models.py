"""Plans and their targets.

A plan belongs to one org unit and applies to that unit's whole subtree; a unit without a plan of its own
is measured against the nearest plan above it (see ``app/aggregates``). Targets are percentages stored as
``Numeric(5, 2)`` (exact, 0–100), one per (metric, year).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class Plan(Base):
    """Kế hoạch thực hiện Chương trình "Xây dựng mô hình Công dân học tập" of one unit."""

    __tablename__ = "plans"
    __table_args__ = (CheckConstraint("start_year <= end_year", name="years_ordered"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    document_no: Mapped[str | None] = mapped_column(String(64))
    issued_on: Mapped[date | None] = mapped_column(Date)
    start_year: Mapped[int] = mapped_column(Integer)
    end_year: Mapped[int] = mapped_column(Integer)
    parent_plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("plans.id", ondelete="RESTRICT"), index=True
    )
    # Stable key of a plan loaded from criteria_seeds/plans (the loader upserts by it); NULL otherwise.
    key: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Target(Base):
    """Chỉ tiêu: the percentage a plan sets for one metric in one year."""

    __tablename__ = "plan_targets"
    __table_args__ = (
        UniqueConstraint("plan_id", "metric", "year"),
        CheckConstraint("value >= 0 AND value <= 100", name="value_percent"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(64))
    year: Mapped[int] = mapped_column(Integer)
    value: Mapped[Decimal] = mapped_column(Numeric(5, 2))
