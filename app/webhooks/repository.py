"""The queries behind the webhook endpoints (the deliverer's own statements are in ``queue.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.pagination import PageParams, fetch_page
from app.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent, WebhookSubscription


async def get_subscription(session: AsyncSession, subscription_id: int) -> WebhookSubscription | None:
    return await session.get(WebhookSubscription, subscription_id)


async def page_subscriptions(
    session: AsyncSession, where: list[ColumnElement[bool]], params: PageParams
) -> tuple[list[WebhookSubscription], int]:
    stmt = select(WebhookSubscription).where(*where).order_by(WebhookSubscription.id)
    return await fetch_page(session, stmt, params)


def _deliveries() -> Select[Any]:
    pending = WebhookDelivery.status == DeliveryStatus.PENDING.value
    return select(
        WebhookDelivery.id,
        WebhookDelivery.subscription_id,
        WebhookDelivery.event_id,
        WebhookEvent.type.label("event_type"),
        WebhookEvent.message_id,
        WebhookEvent.occurred_at,
        WebhookDelivery.status,
        WebhookDelivery.attempts,
        WebhookDelivery.created_at,
        case((pending, WebhookDelivery.next_attempt_at), else_=None).label("next_attempt_at"),
        WebhookDelivery.last_attempt_at,
        WebhookDelivery.delivered_at,
        WebhookDelivery.response_status,
        WebhookDelivery.last_error,
    ).join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)


async def page_deliveries(
    session: AsyncSession, subscription_id: int, status: str | None, params: PageParams
) -> tuple[list[dict[str, Any]], int]:
    """The subscription's delivery log, newest first."""
    where = [WebhookDelivery.subscription_id == subscription_id]
    if status is not None:
        where.append(WebhookDelivery.status == status)
    total = await session.scalar(select(func.count()).select_from(WebhookDelivery).where(*where))
    stmt = _deliveries().where(*where).order_by(WebhookDelivery.id.desc())
    rows = await session.execute(stmt.limit(params.limit).offset(params.offset))
    return [dict(row) for row in rows.mappings().all()], int(total or 0)


async def get_delivery(
    session: AsyncSession, subscription_id: int, delivery_id: int
) -> dict[str, Any] | None:
    row = await session.execute(
        _deliveries().where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == subscription_id
        )
    )
    found = row.mappings().first()
    return dict(found) if found is not None else None


async def queue_again(session: AsyncSession, subscription_id: int, event_id: int) -> int:
    """A new pending delivery of ``event_id`` at the end of the subscription's queue; its id."""
    now = utcnow()
    delivery = WebhookDelivery(
        subscription_id=subscription_id,
        event_id=event_id,
        status=DeliveryStatus.PENDING.value,
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(delivery)
    await session.flush()
    return delivery.id


async def delete_subscription(session: AsyncSession, subscription: WebhookSubscription) -> None:
    await session.delete(subscription)
    await session.flush()


async def due_deliveries(session: AsyncSession, now: datetime) -> tuple[int, datetime | None]:
    """The outbox's backlog for ``GET /metrics``: pending deliveries whose time has come (those queued
    behind a failing head of their subscription too), and the earliest of their due times."""
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(WebhookDelivery.next_attempt_at)).where(
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
                WebhookDelivery.next_attempt_at <= now,
            )
        )
    ).one()
    return int(count), oldest
