"""The record of every import: who sent which file (by SHA-256), when, dry run or not, and what came of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class ImportRecord(Base):
    """Lần nhập dữ liệu: one upload to ``/imports/org-units`` or ``/imports/people``, refused ones too."""

    __tablename__ = "import_records"
    __table_args__ = (
        CheckConstraint("kind IN ('org_units', 'people')", name="kind_known"),
        Index("ix_import_records_actor_user_id_id", "actor_user_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    filename: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_size: Mapped[int] = mapped_column(BigInteger)
    dry_run: Mapped[bool] = mapped_column(Boolean)
    # True when the import was written (not a dry run, no errors).
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    # The first errors as answered (at most 100 kept here), for support questions later.
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
