"""The audit trail: one row per change (who, when, what, before, after), written in the change's own
transaction so an audit row exists exactly when the change does."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    """Nhật ký thao tác."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_entity", "entity_type", "entity_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(60))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Actor(Protocol):
    """Whoever acts (an authenticated subject): user id 0 is the system itself (``cdht`` commands)."""

    @property
    def user_id(self) -> int: ...


def user_id_of(actor: Actor) -> int | None:
    """``actor``'s row in ``users``, for the columns that name who did something (``actor_user_id``,
    ``created_by``, ``signed_by``…)."""
    return actor.user_id or None  # user id 0 is the system itself: it has no users row to point at


async def record_by(
    session: AsyncSession,
    actor: Actor,
    entity_type: str,
    entity_id: int,
    action: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """:func:`record` for a change made by ``actor``."""
    await record(
        session,
        actor_user_id=user_id_of(actor),
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        before=before,
        after=after,
    )


async def record(
    session: AsyncSession,
    *,
    actor_user_id: int | None,
    entity_type: str,
    entity_id: int,
    action: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor_user_id=actor_user_id,
            entity_type=entity_type,
            entity_id=entity_id,
            action=action,
            before=before,
            after=after,
        )
    )


async def history(session: AsyncSession, entity_type: str, entity_id: int) -> list[AuditEntry]:
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.entity_type == entity_type, AuditEntry.entity_id == entity_id)
        .order_by(AuditEntry.id)
    )
    return list((await session.scalars(stmt)).all())
