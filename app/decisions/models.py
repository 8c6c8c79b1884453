"""Recognition decisions (quyết định công nhận) and the evaluations each one lists.

The tables are ``recognition_decisions`` and ``recognition_decision_items``; an evaluation names the
decision that recognised it (``Evaluation.decision_id``, in ``evaluations/models.py``).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class RecognitionDecision(Base):
    """Quyết định công nhận Công dân học tập, signed by the unit head."""

    __tablename__ = "recognition_decisions"
    __table_args__ = (
        UniqueConstraint("org_unit_id", "year", "number"),
        CheckConstraint("status IN ('active', 'revoked')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(64))
    signed_on: Mapped[date] = mapped_column(Date)
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="active")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DecisionItem(Base):
    """The evaluations a decision listed; kept after revocation so the decision reads as it was signed."""

    __tablename__ = "recognition_decision_items"

    decision_id: Mapped[int] = mapped_column(
        ForeignKey("recognition_decisions.id", ondelete="CASCADE"), primary_key=True
    )
    evaluation_id: Mapped[int] = mapped_column(
        ForeignKey("evaluations.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
