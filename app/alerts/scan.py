"""The alert scan: announces alerts as ``alert.raised`` webhook events, once each.

Alerts are computed, not stored; an event needs a memory of what was announced. For every unit that an
active subscription listening to ``alert.raised`` is held at (each unit once, however many subscriptions
share it), the scan computes the alerts of the current year as ``GET /alerts`` does with its defaults
(the unit and its children, tolerance 5 points, ``CDHT_REVIEW_WAITING_DAYS``) and compares them with
``raised_alerts`` (keyed by kind, unit, year and metric, '' when none):

- an alert not announced yet: a row, and ``emit(ALERT_RAISED)`` about its unit (the outbox delivers it to
  every subscription covering that unit, in this transaction);
- an alert announced before and still there: nothing (its details are refreshed quietly);
- an announced alert no longer computed: ``cleared_at`` is set (no event); raised again later, the row is
  reset and the event emitted again.

The caller (the webhook worker) owns the transaction and commits it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import repository as repo
from app.alerts import service
from app.alerts.models import RaisedAlert
from app.alerts.schemas import Alert
from app.core.config import get_settings
from app.core.dates import today
from app.core.db import utcnow
from app.orgs.models import OrgUnit
from app.webhooks.models import EventType, WebhookSubscription
from app.webhooks.outbox import emit


async def subscribed_units(session: AsyncSession) -> list[OrgUnit]:
    """The units of the active subscriptions that listen to ``alert.raised`` (events is a JSON list:
    filtered here, the same way on SQLite and PostgreSQL)."""
    rows = await session.execute(
        select(WebhookSubscription.org_unit_id, WebhookSubscription.events).where(
            WebhookSubscription.active.is_(True)
        )
    )
    ids = sorted({unit for unit, events in rows.all() if EventType.ALERT_RAISED.value in (events or [])})
    if not ids:
        return []
    return list(
        (await session.scalars(select(OrgUnit).where(OrgUnit.id.in_(ids)).order_by(OrgUnit.id))).all()
    )


def event_data(alert: Alert, year: int) -> dict[str, Any]:
    """The body of an ``alert.raised`` event: the alert as ``GET /alerts`` serves it, with its year."""
    return {"year": year, **alert.model_dump(mode="json")}


async def scan(session: AsyncSession, *, year: int | None = None, review_days: int | None = None) -> int:
    """Emit ``alert.raised`` for every alert not yet announced; how many were raised."""
    year = today().year if year is None else year
    options = service.Options(
        review_days=get_settings().review_waiting_days if review_days is None else review_days
    )
    current: dict[tuple[str, int, str], Alert] = {}
    for unit in await subscribed_units(session):
        for alert in await service.compute(session, unit, year, options):
            current.setdefault(alert.key, alert)
    known = {(r.kind, r.org_unit_id, r.metric, r.year): r for r in await repo.raised(session, year)}
    now = utcnow()
    raised = 0
    for key, alert in current.items():
        data = event_data(alert, year)
        row = known.get((*key, year))
        if row is None:
            kind, unit_id, metric = key
            session.add(
                RaisedAlert(
                    kind=kind, org_unit_id=unit_id, year=year, metric=metric, raised_at=now, details=data
                )
            )
        elif row.cleared_at is not None:
            row.cleared_at, row.raised_at, row.details = None, now, data
        else:
            row.details = data
            continue
        await emit(session, EventType.ALERT_RAISED, alert.org_unit_id, data)
        raised += 1
    for (kind, unit_id, metric, at), row in known.items():
        if row.cleared_at is None and (at != year or (kind, unit_id, metric) not in current):
            row.cleared_at = now
    await session.flush()
    return raised
