"""The alerts already announced by ``alert.raised``: the scan raises an event once per alert, not on every
pass, and again only after the alert cleared."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class RaisedAlert(Base):
    __tablename__ = "raised_alerts"
    __table_args__ = (UniqueConstraint("kind", "org_unit_id", "year", "metric"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    # '' for alerts that are not about a metric.
    metric: Mapped[str] = mapped_column(String(64), default="")
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
