"""The deliverer's statements: which subscriptions have work, the lease that gives one process a
subscription's queue, a batch of its deliveries, and the outcome of a batch written in one statement each.

A subscription's queue is its pending deliveries in id order; only its head decides whether the queue is
due (a failed head holds the others back, so they keep their order). Claiming is a conditional UPDATE of
the subscription's lease: of several processes racing for it exactly one sets ``lease_owner``. The lease
statements name ``updated_at`` and leave ``version`` alone so a lease never looks like an edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent, WebhookSubscription

PENDING = DeliveryStatus.PENDING.value
# Declarative types ``__table__`` as any FromClause; a class mapped by ``__tablename__`` always has a Table.
_deliveries = cast(Table, WebhookDelivery.__table__)
_subscriptions = cast(Table, WebhookSubscription.__table__)


def _lease_free(now: datetime) -> Any:
    return or_(WebhookSubscription.lease_owner.is_(None), WebhookSubscription.lease_expires_at < now)


async def due_subscriptions(session: AsyncSession, now: datetime, limit: int) -> list[int]:
    """Active subscriptions nobody holds whose oldest pending delivery is due, most overdue first."""
    heads = (
        select(WebhookDelivery.subscription_id, func.min(WebhookDelivery.id).label("head_id"))
        .where(WebhookDelivery.status == PENDING)
        .group_by(WebhookDelivery.subscription_id)
        .subquery()
    )
    stmt = (
        select(WebhookSubscription.id)
        .join(heads, heads.c.subscription_id == WebhookSubscription.id)
        .join(WebhookDelivery, WebhookDelivery.id == heads.c.head_id)
        .where(WebhookSubscription.active.is_(True), WebhookDelivery.next_attempt_at <= now, _lease_free(now))
        .order_by(WebhookDelivery.next_attempt_at, WebhookSubscription.id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def next_due(session: AsyncSession) -> datetime | None:
    """The earliest time any pending delivery is due (the deliverer sleeps until then at most)."""
    return await session.scalar(
        select(func.min(WebhookDelivery.next_attempt_at)).where(WebhookDelivery.status == PENDING)
    )


async def claim(
    session: AsyncSession, ids: Sequence[int], owner: str, now: datetime, until: datetime
) -> list[int]:
    """Take the lease of those of ``ids`` that are still free; the ids taken."""
    if not ids:
        return []
    await session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id.in_(list(ids)), WebhookSubscription.active.is_(True), _lease_free(now))
        .values(lease_owner=owner, lease_expires_at=until, updated_at=WebhookSubscription.updated_at)
        .execution_options(synchronize_session=False)
    )
    taken = await session.scalars(
        select(WebhookSubscription.id).where(
            WebhookSubscription.id.in_(list(ids)), WebhookSubscription.lease_owner == owner
        )
    )
    return sorted(taken.all())


async def release(session: AsyncSession, subscription_id: int, owner: str) -> None:
    await session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id, WebhookSubscription.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None, updated_at=WebhookSubscription.updated_at)
        .execution_options(synchronize_session=False)
    )


async def holding(session: AsyncSession, subscription_id: int, owner: str) -> Row[str, str, bool] | None:
    """The subscription's URL, secret and state while ``owner`` holds its lease (None once lost)."""
    row = await session.execute(
        select(WebhookSubscription.url, WebhookSubscription.secret, WebhookSubscription.active).where(
            WebhookSubscription.id == subscription_id, WebhookSubscription.lease_owner == owner
        )
    )
    return row.first()


async def next_batch(session: AsyncSession, subscription_id: int, limit: int) -> list[Row[Any]]:
    """The oldest ``limit`` pending deliveries of the subscription with their events."""
    stmt = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.attempts,
            WebhookDelivery.next_attempt_at,
            WebhookEvent.id.label("event_id"),
            WebhookEvent.message_id,
            WebhookEvent.type,
            WebhookEvent.org_unit_id,
            WebhookEvent.occurred_at,
            WebhookEvent.data,
        )
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.status == PENDING)
        .order_by(WebhookDelivery.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).all())


async def record(
    session: AsyncSession,
    subscription_id: int,
    owner: str,
    outcomes: list[dict[str, Any]],
    lease_until: datetime,
) -> bool:
    """Write the outcome of each attempt (one executemany) and extend the lease; False when the lease was
    lost meanwhile (another process may be sending: stop)."""
    if outcomes:
        await session.execute(
            update(_deliveries)
            .where(_deliveries.c.id == bindparam("b_id"), _deliveries.c.status == PENDING)
            .values(
                status=bindparam("b_status"),
                attempts=bindparam("b_attempts"),
                last_attempt_at=bindparam("b_at"),
                delivered_at=bindparam("b_delivered_at"),
                next_attempt_at=bindparam("b_next"),
                response_status=bindparam("b_response"),
                last_error=bindparam("b_error"),
            ),
            outcomes,
        )
    renewed = await session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id, WebhookSubscription.lease_owner == owner)
        .values(lease_expires_at=lease_until, updated_at=WebhookSubscription.updated_at)
        .execution_options(synchronize_session=False)
    )
    # A DELETE's or UPDATE's Result is a CursorResult; AsyncSession.execute types it as Result.
    return bool(renewed.rowcount)  # type: ignore[attr-defined]


async def pause(session: AsyncSession, subscription_id: int) -> None:
    """The receiver answered 410 Gone: stop sending (its deliveries wait until it is resumed)."""
    await session.execute(
        update(_subscriptions)
        .where(_subscriptions.c.id == subscription_id)
        .values(active=False, version=_subscriptions.c.version + 1)
    )
