"""The outbox: :func:`emit` writes an event, and one pending delivery for every active subscription that
covers the event's unit (held at the unit or above it) and listens to its type, **in the caller's
transaction** — the event exists exactly when the change it reports was committed. The deliverer
(``app/webhooks/deliverer.py``) sends them; deliverers in this process are woken on commit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import on_commit, utcnow
from app.orgs.models import OrgUnitClosure
from app.webhooks.models import EventType, WebhookDelivery, WebhookEvent, WebhookSubscription

# Wake-up callbacks of the deliverers running in this process (other processes poll).
_listeners: list[Callable[[], None]] = []


def add_listener(callback: Callable[[], None]) -> None:
    _listeners.append(callback)


def remove_listener(callback: Callable[[], None]) -> None:
    if callback in _listeners:
        _listeners.remove(callback)


def _wake() -> None:
    for callback in list(_listeners):
        callback()


def wake_on_commit(session: AsyncSession) -> None:
    """Wake this process's deliverers once ``session`` commits (new work is queued)."""
    on_commit(session, _wake)


def new_message_id() -> str:
    """The Standard Webhooks ``webhook-id`` of an event: ``msg_`` and 32 random hex digits."""
    return f"msg_{uuid.uuid4().hex}"


async def emit(
    session: AsyncSession, type: EventType, org_unit_id: int, data: dict[str, Any]
) -> WebhookEvent:
    """Record ``type`` about ``org_unit_id`` with ``data`` (JSON: ids, counts, statuses — never personal
    data or secrets) and queue its deliveries."""
    event = WebhookEvent(
        message_id=new_message_id(), type=type.value, org_unit_id=org_unit_id, occurred_at=utcnow(), data=data
    )
    session.add(event)
    await session.flush()
    rows = await session.execute(
        select(WebhookSubscription.id, WebhookSubscription.events)
        .join(OrgUnitClosure, OrgUnitClosure.ancestor_id == WebhookSubscription.org_unit_id)
        .where(OrgUnitClosure.descendant_id == org_unit_id, WebhookSubscription.active.is_(True))
        .order_by(WebhookSubscription.id)
    )
    listening = [sub_id for sub_id, events in rows.all() if type.value in (events or [])]
    if listening:
        now = event.occurred_at
        await session.execute(
            insert(WebhookDelivery),
            [
                {
                    "subscription_id": sub_id,
                    "event_id": event.id,
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                }
                for sub_id in listening
            ],
        )
        on_commit(session, _wake)
    return event
