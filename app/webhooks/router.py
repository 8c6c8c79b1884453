"""Webhook endpoints: ``/webhooks``, their deliveries and redelivery."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query, Response, status

from app.auth.deps import CurrentSubject
from app.core.db import DbSession
from app.core.deps import AppSettings
from app.core.pagination import Page, Pagination
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID, IdPath, if_match
from app.webhooks import service
from app.webhooks.schemas import DeliveryRead, WebhookCreate, WebhookCreated, WebhookRead, WebhookUpdate

router = ScopedRouter(prefix="/webhooks", tags=["webhooks"])
IfMatch = Annotated[int | None, Depends(if_match)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
async def create_webhook(
    body: WebhookCreate, subject: CurrentSubject, session: DbSession, settings: AppSettings
) -> WebhookCreated:
    """Subscribe ``url`` to ``events`` about ``org_unit_id`` and every unit below it (org_admin or
    integration there). The answer carries the signing ``secret``: it is never shown again. With
    ``CDHT_ENV=production`` only https URLs to public hosts are accepted."""
    return await service.create(session, subject, body, settings)


@router.get("", response_model=Page[WebhookRead])
async def list_webhooks(
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    org_unit_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Those in this unit's subtree.")
    ] = None,
) -> object:
    items, total = await service.list_subscriptions(session, subject, page, org_unit_id)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{webhook_id}", response_model=WebhookRead)
async def get_webhook(webhook_id: IdPath, subject: CurrentSubject, session: DbSession) -> WebhookRead:
    return await service.get(session, subject, webhook_id)


@router.patch("/{webhook_id}", response_model=WebhookRead)
async def update_webhook(
    webhook_id: IdPath,
    body: WebhookUpdate,
    subject: CurrentSubject,
    session: DbSession,
    expected: IfMatch,
    settings: AppSettings,
) -> WebhookRead:
    """Change the URL, events, description, or pause (``active: false``) and resume. Paused deliveries
    wait and go out, in order, once it is active again."""
    return await service.update(session, subject, webhook_id, body, expected, settings)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(
    webhook_id: IdPath, subject: CurrentSubject, session: DbSession, expected: IfMatch
) -> Response:
    """Delete the subscription with its delivery log (pending deliveries are dropped)."""
    await service.delete(session, subject, webhook_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=Page[DeliveryRead])
async def list_deliveries(
    webhook_id: IdPath,
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    status: Literal["pending", "delivered", "failed"] | None = None,
) -> object:
    """The delivery log, newest first."""
    items, total = await service.deliveries(session, subject, webhook_id, status, page)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryRead,
)
async def redeliver(
    webhook_id: IdPath, delivery_id: IdPath, subject: CurrentSubject, session: DbSession
) -> DeliveryRead:
    """Send the delivery's event again: a new delivery at the end of the subscription's queue, with the
    same ``webhook-id`` (receivers can dedupe). The answer is that new entry, pending."""
    return await service.redeliver(session, subject, webhook_id, delivery_id)
