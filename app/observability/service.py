"""What a scrape of ``GET /metrics`` reads from the database: the import-job queue, the webhook outbox
and, on PostgreSQL, the replicas' lag. One short read-only transaction; if the database cannot answer,
the scrape still answers with the process's metrics and ``cdht_database_up 0``."""

from __future__ import annotations

import logging
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import unit_of_work, utcnow
from app.imports import repository as imports_repo
from app.observability import repository as repo
from app.webhooks import repository as webhooks_repo

log = logging.getLogger("cdht.metrics")

IMPORT_JOBS = "import_jobs"
WEBHOOK_DELIVERIES = "webhook_deliveries"


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


async def database_metrics(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Metric]:
    """The metrics read from the database now (see the module's docstring)."""
    now = utcnow()
    up = GaugeMetricFamily("cdht_database_up", "Whether the scrape could read the database (1) or not (0).")
    try:
        async with unit_of_work(sessionmaker, write=False) as session:
            jobs, oldest_job = await imports_repo.queued_jobs(session)
            due, oldest_due = await webhooks_repo.due_deliveries(session, now)
            replicas = await repo.replication_lag(session)
    except Exception:  # the scrape must still answer: the process's metrics say what went wrong
        log.warning("metrics: the database could not be read", exc_info=True)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    depth = GaugeMetricFamily(
        "cdht_queue_depth",
        "Work waiting: import jobs queued for a runner, webhook deliveries due to be sent.",
        labels=["queue"],
    )
    depth.add_metric([IMPORT_JOBS], jobs)
    depth.add_metric([WEBHOOK_DELIVERIES], due)
    age = GaugeMetricFamily(
        "cdht_queue_oldest_age_seconds",
        "How long the oldest waiting item has waited: since an import job was sent, since a delivery "
        "fell due (0 when nothing waits).",
        labels=["queue"],
    )
    age.add_metric([IMPORT_JOBS], _age(now, oldest_job))
    age.add_metric([WEBHOOK_DELIVERIES], _age(now, oldest_due))
    found: list[Metric] = [up, depth, age]
    if replicas is not None:
        connected = GaugeMetricFamily(
            "cdht_replicas_connected", "Standbys streaming from the primary (pg_stat_replication)."
        )
        connected.add_metric([], len(replicas))
        lag = GaugeMetricFamily(
            "cdht_replica_lag_seconds",
            "Replay lag of each standby, as the primary sees it (pg_stat_replication.replay_lag).",
            labels=["application_name"],
        )
        for name, seconds in replicas:
            lag.add_metric([name], seconds)
        found += [connected, lag]
    return found
