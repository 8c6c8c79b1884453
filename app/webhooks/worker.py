"""The background work beside the API: webhook deliveries and the periodic alert scan, and ``cdht worker``,
which runs them with the import jobs in a process of its own.

The alert scan (:func:`app.alerts.scan.scan`, which announces new alerts as ``alert.raised`` through the
outbox) runs every ``CDHT_ALERT_SCAN_SECONDS`` (0: never) in its own transaction; a failing scan is logged
and tried again at the next period — it never stops the deliveries. Every process that delivers also
scans, so the scan must be (and is) safe to run concurrently: it announces each alert once.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import unit_of_work

log = logging.getLogger("cdht.webhooks")


async def scan_alerts_once(sessionmaker: async_sessionmaker[AsyncSession]) -> int | None:
    """Run the alert scan once; how many alerts it raised, or None when it failed (logged)."""
    from app.alerts.scan import scan

    try:
        async with unit_of_work(sessionmaker) as session:
            return await scan(session)
    except Exception:
        log.exception("alert scan failed; trying again at the next period")
        return None


async def scan_alerts_forever(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    if settings.alert_scan_seconds <= 0:
        return
    while True:
        raised = await scan_alerts_once(sessionmaker)
        if raised:
            log.info("alert scan: %s alert(s) raised", raised)
        await asyncio.sleep(settings.alert_scan_seconds)


async def run_worker(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], *, once: bool
) -> list[str]:
    """``cdht worker``: import jobs, webhook deliveries and the alert scan — what is waiting now
    (``once``), or until stopped."""
    from app.imports.runner import ImportJobRunner
    from app.webhooks.deliverer import WebhookDeliverer

    imports = ImportJobRunner(settings, sessionmaker)
    deliverer = WebhookDeliverer(settings, sessionmaker)
    try:
        if not once:
            await asyncio.gather(
                imports.run_forever(), deliverer.run_forever(), scan_alerts_forever(settings, sessionmaker)
            )
        jobs = await imports.run_pending()
        lines = [f"{jobs} import job(s) run."]
        if settings.alert_scan_seconds > 0:
            raised = await scan_alerts_once(sessionmaker)
            lines.append(
                "Alert scan failed (see the log)." if raised is None else f"{raised} alert(s) raised."
            )
        attempts = await deliverer.run_once()
        return [*lines, f"{attempts} webhook delivery attempt(s) made."]
    finally:
        await deliverer.aclose()
