"""The database's own statistics read at scrape time (the queues' queries are in their domains'
repositories: ``imports/repository.py``, ``webhooks/repository.py``)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# replay_lag is NULL once a standby has replayed everything and nothing new was written: no lag.
_REPLICATION = text(
    "SELECT application_name, COALESCE(EXTRACT(EPOCH FROM replay_lag), 0)::float8 AS lag "
    "FROM pg_stat_replication ORDER BY application_name"
)


async def replication_lag(session: AsyncSession) -> list[tuple[str, float]] | None:
    """Each standby streaming from this server with its replay lag in seconds (PostgreSQL's
    ``pg_stat_replication``, read on the primary); None on SQLite, which has no replicas. The lag is
    visible to a superuser or a member of ``pg_monitor`` only (others read 0)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    rows = await session.execute(_REPLICATION)
    return [(str(name or ""), float(lag)) for name, lag in rows.all()]
