"""A reorganisation as it was applied: when it took effect, under which document, who applied it, the
steps as sent and what they did."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class Reorganisation(Base):
    """Sắp xếp tổ chức: one all-or-nothing set of steps effective on one day."""

    __tablename__ = "reorganisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    effective_on: Mapped[date] = mapped_column(Date, index=True)
    title: Mapped[str] = mapped_column(String(255))
    document_no: Mapped[str | None] = mapped_column(String(64))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The nearest unit covering every unit the steps named (None: they share no ancestor): who may read
    # the record is decided on it, as for any object of that unit.
    org_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id", ondelete="SET NULL"), index=True
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReorganisationUnit(Base):
    """A unit a reorganisation named or created: whoever may read one of them may read the record."""

    __tablename__ = "reorganisation_units"

    reorganisation_id: Mapped[int] = mapped_column(
        ForeignKey("reorganisations.id", ondelete="CASCADE"), primary_key=True
    )
    org_unit_id: Mapped[int] = mapped_column(
        ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True, index=True
    )
