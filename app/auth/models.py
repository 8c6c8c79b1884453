"""Users (people who log in and service accounts), their role assignments, refresh tokens, and the login
throttle's counters."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Computed,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    ORG_ADMIN = "org_admin"
    ASSESSOR = "assessor"
    APPROVER = "approver"
    VIEWER = "viewer"
    MEMBER = "member"
    INTEGRATION = "integration"


_ROLES_SQL = ", ".join(f"'{r.value}'" for r in Role)


class User(Base):
    """A login: a person with a username and password, or a service account (client credentials)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # Kept by the database; its unique index makes ``Alice`` and ``alice`` one login, and logins look it up.
    username_lower: Mapped[str] = mapped_column(String(64), Computed("lower(username)", persisted=True))
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    org_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id", ondelete="RESTRICT"), index=True
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_service: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # When a request of this user last changed rows (set only while read replicas are configured): their
    # reads stay on the primary for a while after it (app/auth/write_marks.py).
    last_write_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (Index("ix_users_username_lower", "username_lower", unique=True),)


class RoleAssignment(Base):
    """A role held at an org unit, covering its subtree; ``admin`` alone is held nowhere (unit NULL)."""

    __tablename__ = "role_assignments"
    __table_args__ = (
        CheckConstraint(f"role IN ({_ROLES_SQL})", name="role_known"),
        CheckConstraint("(role = 'admin') = (org_unit_id IS NULL)", name="admin_unbound"),
        UniqueConstraint("user_id", "role", "org_unit_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    org_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id", ondelete="RESTRICT"), index=True
    )
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RefreshToken(Base):
    """An opaque refresh token, stored as a digest; all rotations of one login share a family."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_family", "family"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family: Mapped[str] = mapped_column(String(32))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AttemptKind(StrEnum):
    USER = "user"
    ADDRESS = "address"


_KINDS_SQL = ", ".join(f"'{k.value}'" for k in AttemptKind)


class LoginAttempt(Base):
    """Login attempts counted per normalised username and per client address (app/auth/throttle.py), kept
    in the database so that every worker process counts against the same limit."""

    __tablename__ = "login_attempts"
    __table_args__ = (CheckConstraint(f"kind IN ({_KINDS_SQL})", name="kind_known"),)

    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
