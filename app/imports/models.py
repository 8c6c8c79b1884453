"""The record of every import: who sent which file (by SHA-256), when, dry run or not, and what came of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow

# The values the check constraints below allow (``ImportJobRead`` answers them as they are).
ImportKind = Literal["org_units", "people"]
JobStatus = Literal["queued", "running", "done", "failed"]


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


class ImportJob(Base):
    """An import too large to run inside its request (``CDHT_IMPORT_JOB_BYTES``): the upload waits in
    ``CDHT_IMPORT_JOBS_DIR`` under ``stored_name`` until a runner (app/imports/runner.py) takes it.

    ``queued`` → ``running`` → ``done`` (``summary`` holds what the request would have answered, row errors
    included; ``import_id`` the :class:`ImportRecord`) or ``failed`` (``error``: the file could not be
    processed at all). A ``running`` job whose ``lease_expires_at`` has passed was lost with its process
    (its transaction rolled back with it) and is taken again, at most ``MAX_ATTEMPTS`` times.
    """

    __tablename__ = "import_jobs"
    __table_args__ = (
        CheckConstraint("kind IN ('org_units', 'people')", name="kind_known"),
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status_known"),
        CheckConstraint("file_type IN ('csv', 'xlsx')", name="file_type_known"),
        Index("ix_import_jobs_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[ImportKind] = mapped_column(String(20))
    dry_run: Mapped[bool] = mapped_column(Boolean)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    file_size: Mapped[int] = mapped_column(BigInteger)
    file_sha256: Mapped[str] = mapped_column(String(64))
    file_type: Mapped[str] = mapped_column(String(10))
    # The CSV text encoding found while spooling (None: neither UTF-8 nor CP1258; the run reports it).
    encoding: Mapped[str | None] = mapped_column(String(20))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[JobStatus] = mapped_column(String(20), default="queued")
    # The language of the request that sent the file (``Accept-Language``): the runner writes the row
    # errors and messages of the summary in it.
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("import_records.id", ondelete="SET NULL"))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
