"""Webhook bodies (API.md "Webhooks"): subscriptions, the one-time secret, the delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from app.core.schemas import Id, ReadModel, StrictModel, Version, multiline_text
from app.webhooks.models import EventType

KNOWN_EVENTS = [e.value for e in EventType]


def _known_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e not in KNOWN_EVENTS]
    if unknown:
        raise ValueError(f"unknown event type(s) {unknown}; known: {', '.join(KNOWN_EVENTS)}")
    return sorted(set(events), key=KNOWN_EVENTS.index)  # each once, in the documented order


Events = Annotated[
    list[Annotated[str, StringConstraints(max_length=40)]],
    Field(min_length=1, max_length=20, description=f"Event types: {', '.join(KNOWN_EVENTS)}."),
    AfterValidator(_known_events),
]
# The URL's own rules (https in production, no internal hosts, …) depend on the settings: see urls.py.
Url = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Description = Annotated[str, StringConstraints(max_length=500), AfterValidator(multiline_text)]


class WebhookCreate(StrictModel):
    url: Url
    events: Events
    org_unit_id: Id = Field(description="Events about this unit and every unit below it are sent.")
    description: Description | None = None


class WebhookUpdate(StrictModel):
    """Only the fields sent change; ``version`` (or ``If-Match``) guards against lost updates."""

    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    active: bool | None = Field(
        default=None, description="false pauses deliveries; they wait, nothing is lost."
    )
    version: Version | None = None


class WebhookRead(ReadModel):
    id: int
    org_unit_id: int
    url: str
    events: list[str]
    description: str | None
    active: bool
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    version: int


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="Signs every delivery (Standard Webhooks, `whsec_…`). Shown this once; store it now."
    )


class DeliveryRead(ReadModel):
    """One event sent (or to be sent) to one subscription. A redelivery is a new entry carrying the same
    ``message_id`` (the ``webhook-id`` header), so receivers can tell it is the same event."""

    id: int
    subscription_id: int
    event_id: int
    event_type: str
    message_id: str
    occurred_at: datetime
    status: str = Field(description="pending, delivered or failed (the retries ran out).")
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When it is tried next (pending only).")
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    response_status: int | None = Field(description="The receiver's HTTP status at the last attempt.")
    last_error: str | None = Field(description="Why the last attempt failed (never the response body).")
