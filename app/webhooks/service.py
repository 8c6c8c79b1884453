"""Rules of webhook subscriptions: who may manage them (``webhook:write`` — org_admin, integration — in
the unit's subtree), which URLs they may name (``urls.py``), the secret shown once, and redelivery.

Redelivery queues the event again as a **new** delivery at the end of the subscription's queue, with the
event's own ``webhook-id`` (receivers dedupe on it); the original entry keeps its history. Any entry may be
redelivered (a receiver that lost a delivered event asks for it again); a paused subscription keeps it
until it is active again.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Action
from app.auth.scope import Subject, authorize, require_any_role, subtree_ids, unit_filter
from app.core import audit
from app.core.config import Settings
from app.core.errors import NotFound, ValidationFailed
from app.core.pagination import PageParams
from app.core.schemas import check_version
from app.orgs.service import get_visible as get_visible_unit
from app.webhooks import outbox, urls
from app.webhooks import repository as repo
from app.webhooks.models import WebhookSubscription
from app.webhooks.schemas import DeliveryRead, WebhookCreate, WebhookCreated, WebhookRead, WebhookUpdate

SECRET_BYTES = 32


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _snapshot(subscription: WebhookSubscription) -> dict[str, Any]:
    """What the audit keeps of a subscription: never the secret."""
    return {
        "org_unit_id": subscription.org_unit_id,
        "url": subscription.url,
        "events": list(subscription.events),
        "description": subscription.description,
        "active": subscription.active,
    }


async def _visible(
    session: AsyncSession, subject: Subject, subscription_id: int, action: Action
) -> WebhookSubscription:
    missing = f"Webhook {subscription_id} not found."
    subscription = await repo.get_subscription(session, subscription_id)
    if subscription is None:
        raise NotFound(missing)
    await authorize(session, subject, subscription.org_unit_id, action, missing=missing)
    return subscription


async def create(
    session: AsyncSession, subject: Subject, data: WebhookCreate, settings: Settings
) -> WebhookCreated:
    url = urls.check_url(data.url, production=settings.env == "production")
    await get_visible_unit(session, subject, data.org_unit_id, Action.WEBHOOK_WRITE)
    subscription = WebhookSubscription(
        org_unit_id=data.org_unit_id,
        url=url,
        events=data.events,
        description=data.description,
        secret=new_secret(),
        active=True,
        created_by=audit.user_id_of(subject),
    )
    session.add(subscription)
    await session.flush()
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="webhook",
        entity_id=subscription.id,
        action="created",
        after=_snapshot(subscription),
    )
    read = WebhookRead.model_validate(subscription)
    return WebhookCreated(**read.model_dump(), secret=subscription.secret)


async def get(session: AsyncSession, subject: Subject, subscription_id: int) -> WebhookRead:
    return WebhookRead.model_validate(await _visible(session, subject, subscription_id, Action.WEBHOOK_READ))


async def list_subscriptions(
    session: AsyncSession, subject: Subject, params: PageParams, org_unit_id: int | None
) -> tuple[list[WebhookRead], int]:
    where: list[ColumnElement[bool]] = [
        unit_filter(subject, Action.WEBHOOK_READ, WebhookSubscription.org_unit_id)
    ]
    if org_unit_id is not None:
        await get_visible_unit(session, subject, org_unit_id, Action.WEBHOOK_READ)
        where.append(WebhookSubscription.org_unit_id.in_(subtree_ids([org_unit_id])))
    else:
        require_any_role(subject, Action.WEBHOOK_READ)
    items, total = await repo.page_subscriptions(session, where, params)
    return [WebhookRead.model_validate(s) for s in items], total


async def update(
    session: AsyncSession,
    subject: Subject,
    subscription_id: int,
    data: WebhookUpdate,
    if_match: int | None,
    settings: Settings,
) -> WebhookRead:
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    for required in ("url", "events", "active"):
        if required in changes and changes[required] is None:
            raise ValidationFailed(f"{required} cannot be empty.", details={"field": required})
    if "url" in changes:
        changes["url"] = urls.check_url(changes["url"], production=settings.env == "production")
    subscription = await _visible(session, subject, subscription_id, Action.WEBHOOK_WRITE)
    check_version(subscription.version, data.version, if_match)
    before = _snapshot(subscription)
    for field, value in changes.items():
        setattr(subscription, field, value)
    await session.flush()
    if changes.get("active"):
        outbox.wake_on_commit(session)  # deliveries that waited while it was paused go out now
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="webhook",
        entity_id=subscription.id,
        action="updated",
        before=before,
        after=_snapshot(subscription),
    )
    return WebhookRead.model_validate(subscription)


async def delete(session: AsyncSession, subject: Subject, subscription_id: int, if_match: int | None) -> None:
    """The subscription and its delivery log; pending deliveries are dropped with it."""
    subscription = await _visible(session, subject, subscription_id, Action.WEBHOOK_WRITE)
    check_version(subscription.version, if_match)
    before = _snapshot(subscription)
    await repo.delete_subscription(session, subscription)
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="webhook",
        entity_id=subscription_id,
        action="deleted",
        before=before,
    )


async def deliveries(
    session: AsyncSession, subject: Subject, subscription_id: int, status: str | None, params: PageParams
) -> tuple[list[DeliveryRead], int]:
    await _visible(session, subject, subscription_id, Action.WEBHOOK_READ)
    rows, total = await repo.page_deliveries(session, subscription_id, status, params)
    return [DeliveryRead.model_validate(row) for row in rows], total


async def redeliver(
    session: AsyncSession, subject: Subject, subscription_id: int, delivery_id: int
) -> DeliveryRead:
    subscription = await _visible(session, subject, subscription_id, Action.WEBHOOK_WRITE)
    original = await repo.get_delivery(session, subscription.id, delivery_id)
    if original is None:
        raise NotFound(f"Delivery {delivery_id} not found.")
    new_id = await repo.queue_again(session, subscription.id, original["event_id"])
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="webhook",
        entity_id=subscription.id,
        action="redelivery_queued",
        after={"delivery_id": delivery_id, "new_delivery_id": new_id, "message_id": original["message_id"]},
    )
    outbox.wake_on_commit(session)
    queued = await repo.get_delivery(session, subscription.id, new_id)
    assert queued is not None
    return DeliveryRead.model_validate(queued)
