"""Webhook subscriptions, the event outbox and the deliveries."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class EventType(StrEnum):
    REPORT_SUBMITTED = "report.submitted"
    REPORT_ACCEPTED = "report.accepted"
    REPORT_RETURNED = "report.returned"
    DECISION_SIGNED = "decision.signed"
    DECISION_REVOKED = "decision.revoked"
    ALERT_RAISED = "alert.raised"
    IMPORT_FINISHED = "import.finished"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    # Every attempt failed (the retry schedule ran out); a redeliver queues it again.
    FAILED = "failed"


_DELIVERY_STATUSES_SQL = ", ".join(f"'{s.value}'" for s in DeliveryStatus)


class WebhookSubscription(Base):
    """A receiver of the events of one unit's subtree. ``secret`` (``whsec_…``) signs every delivery; it is
    shown once, when the subscription is made. ``lease_owner``/``lease_expires_at``: the deliverer process
    that currently sends this subscription's queue (one at a time, so deliveries go out in order)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Edits through the ORM check and bump ``version`` (a stale PATCH is a 409); the deliverer's lease
    # statements are Core updates that leave it (and ``updated_at``) alone.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class WebhookEvent(Base):
    """The outbox: an event, written in the same transaction as the change it reports."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The Standard Webhooks ``webhook-id``: the same for every delivery (and redelivery) of the event.
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class WebhookDelivery(Base):
    """One event to one subscription: ``pending`` until the receiver answers 2xx (``delivered``) or the
    retry schedule runs out (``failed``)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(f"status IN ({_DELIVERY_STATUSES_SQL})", name="status_known"),
        Index("ix_webhook_deliveries_subscription_id_status_id", "subscription_id", "status", "id"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
