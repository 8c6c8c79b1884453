"""Webhook endpoints: ``/webhooks``, their deliveries and redelivery."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
