"""``GET /metrics``: the Prometheus exposition, for the metrics token or an administrator.

Outside ``/api/v1`` and out of ``/openapi.json`` (it answers Prometheus's text format, not the API's
JSON). ``/healthz`` and ``/readyz`` stay open; this one tells too much about the service to be public."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.auth.deps import get_subject, oauth2_scheme
from app.core.db import DbSession
from app.core.deps import AppSessionmaker, AppSettings
from app.core.errors import Forbidden
from app.core.routing import ScopedRouter
from app.observability import service
from app.observability.metrics import render

router = ScopedRouter(tags=["health"])


async def metrics_reader(
    request: Request,
    settings: AppSettings,
    session: DbSession,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> None:
    """A bearer equal to ``CDHT_METRICS_TOKEN`` (compared in constant time), or the access token of a
    user holding ``admin``: no or a bad token is 401, another user 403."""
    expected = settings.metrics_token
    if token and expected and hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        return
    subject = await get_subject(request, session, token)  # 401 unless a valid access token
    if not subject.is_admin:
        raise Forbidden()


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(metrics_reader)])
async def metrics(sessionmaker: AppSessionmaker) -> Response:
    body = render(await service.database_metrics(sessionmaker))
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
