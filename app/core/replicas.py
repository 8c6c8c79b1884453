"""Read replicas: which database a dashboard's reads go to (``CDHT_READ_DATABASE_URL``).

What goes where:

- Writes, and everything a request does through its own session (``DbSession``: the caller's identity and
  roles, scope checks of single objects), go to the primary. A revoked role is therefore seen by the very
  next request, whatever a replica has replayed.
- The body reads of the dashboards (aggregates, reports, exports, completeness, alerts) ask for
  ``ReadSession`` (``app/auth/deps.py``), which this router fills: a session on a replica, or — with no
  replica configured, right after the caller wrote, or with no healthy replica — the request's own
  session on the primary (no extra connection: with no replica nothing changes).

Read-your-writes, by time and not by LSN. A request that changed rows marks its caller
(``users.last_write_at``, in the same transaction, on the primary's clock: ``app/auth/write_marks.py``);
the caller's identity, read on the primary by every request anyway, brings the mark back with the primary's
``now()`` in the same statement. Within ``read_your_writes_seconds`` of their last write a caller reads from
the primary. After it, a replica is used only if its lag, measured at most ``replica_poll_seconds`` ago, was
at most ``replica_max_lag_seconds``: it had then replayed everything committed up to ``poll + max lag``
seconds ago, hence the write, because the settings refuse a window shorter than that sum. Comparing LSNs
would be exact, but the commit LSN of a write is only known after COMMIT (one more round trip per write to
read it, and one more to store it where other processes find it), and the replica's replay LSN would still
come from the same periodic poll; time costs no round trip and works across processes as it is. It relies
on the clocks of the primary and the replicas agreeing (NTP) to well under the window's headroom.

Health. Each replica's lag is measured on the replica itself, lazily by the first request after
``replica_poll_seconds``, with one query (:func:`lag_of` says how): 0 when it streams and has replayed
everything received (an idle primary is not lag), else the age of the last replayed transaction (paused or
slow replay with WAL waiting is lag), sampled again a moment later when WAL without commits is arriving
(the age alone would call a replica that keeps up "behind" during a long bulk write). The age of a commit
is an upper bound of the lag, so a mistake only ever sends reads to the primary. A replica that cannot be
reached, or fails when a request takes its connection, is left alone for
``replica_retry_seconds``. Among the replicas within the allowed lag, reads take turns (spreading load
matters more than preferring 0.1 s to 0.2 s of lag); with none, they fall back to the primary: counted in
:attr:`ReplicaRouter.fallbacks` by reason (``lag``, ``down``), and logged when a replica's state changes
(every fallback is logged at DEBUG: at WARNING a dead replica would log each request).

Replica connections run in autocommit and read-only (``default_transaction_read_only``): each statement sees
the latest replayed state, as each statement of a READ COMMITTED transaction does on the primary, and no
BEGIN/COMMIT round trips are spent. They are pinged when taken from the pool (``pool_pre_ping``): a replica
that died since the last poll is found before the endpoint runs, and the request falls back instead of
failing; in autocommit the ping takes the place of the BEGIN a primary transaction sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.core.config import Settings, to_async_url

log = logging.getLogger("cdht.replicas")

# What the replica knows of itself: in recovery at all (a URL naming a primary is not: lag 0, with a
# warning); a WAL receiver running (streaming from the primary); received and replayed WAL positions (as
# byte offsets); the age of the last replayed commit (on the replica's clock).
SAMPLE_SQL = text(
    "SELECT pg_is_in_recovery(), EXISTS (SELECT 1 FROM pg_stat_wal_receiver), "
    "pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0'), pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'), "
    "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
)
# An ambiguous sample is taken again, every RECHECK_SECONDS, up to RECHECKS times (a request may wait
# that long, once per poll interval, while WAL without commits streams).
RECHECK_SECONDS = 0.05
RECHECKS = 4


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() when sent
    in_recovery: bool
    streaming: bool
    received: float | None
    replayed: float | None
    commit_age: float | None

    @classmethod
    def of(cls, at: float, row: Any) -> Sample:
        in_recovery, streaming, received, replayed, age = row
        return cls(at, bool(in_recovery), bool(streaming), _number(received), _number(replayed), _number(age))


def _replayed_all_of(later: Sample, earlier: Sample) -> bool:
    """Whether by ``later`` the replica had replayed everything it had received at ``earlier``."""
    return later.replayed is not None and earlier.received is not None and later.replayed >= earlier.received


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def lag_of(first: Sample, second: Sample | None = None) -> float | None:
    """Seconds the replica may be behind, from one sample (or two, a moment apart).

    - Streaming and everything received replayed (after a restart, replay may even be ahead of what the
      receiver has streamed since): 0. An idle primary is not lag.
    - Otherwise the age of the last replayed commit: everything committed before it has been replayed.
      Paused or stuck replay with WAL waiting grows it, as it should; so does a replica cut from its
      primary (no WAL receiver), which can no longer vouch for anything.
    - That age overstates the lag while WAL without commits streams (a long bulk write elsewhere, a
      checkpoint) and at the instant a new commit arrives after a quiet spell: the second sample settles
      it. If by then the replica has replayed all it had received at the first, it is behind by no more
      than the time between the two.
    """
    if not first.in_recovery:
        return 0.0
    if first.streaming and _replayed_all_of(first, first):
        return 0.0
    if second is not None and _replayed_all_of(second, first):
        return second.at - first.at
    last = second or first
    return last.commit_age


OK, LAGGING, DOWN = "ok", "lagging", "down"


@dataclass(eq=False)
class Replica:
    """One replica, and what this process last learned of it."""

    name: str  # host:port/database, no credentials: for logs and metrics
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    lag: float | None = None  # seconds behind the primary when last measured; None: unknown
    measured_at: float = -math.inf  # time.monotonic() of the last measurement
    down_until: float = 0.0
    state: str = "unknown"
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def replica_name(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def make_replica_engine(url: str, settings: Settings) -> AsyncEngine:
    """Autocommit, read-only, pinged at checkout, a short connect timeout (a dead replica must not hold a
    request for long), pooled like the primary."""
    return create_async_engine(
        to_async_url(url),
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        connect_args={
            "timeout": settings.replica_connect_timeout_seconds,
            "server_settings": {
                "application_name": "cdht-replica",
                "statement_timeout": str(settings.statement_timeout_ms),
                "default_transaction_read_only": "on",
            },
        },
    )


class ReplicaMetrics(Protocol):
    """Where the router reports what it does (``app/observability/replicas.py``: Prometheus)."""

    def read(self, target: str) -> None: ...
    def fallback(self, reason: str) -> None: ...
    def lag(self, replica: str, seconds: float | None) -> None: ...


class ReplicaRouter:
    """The replicas of this process and their health; picks where each dashboard read goes."""

    def __init__(self, settings: Settings, metrics: ReplicaMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.replicas: list[Replica] = []
        for url in settings.read_database_urls:
            engine = make_replica_engine(url, settings)
            sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
            self.replicas.append(Replica(replica_name(url), engine, sessionmaker))
        # Reads that fell back to the primary, by reason ("lag": every reachable replica too far behind;
        # "down": none reachable); reads by where they went ("replica", "recent_write": the caller's own
        # write is recent, "fallback"). This process's counts; ``metrics`` gets each one too.
        self.fallbacks: Counter[str] = Counter()
        self.reads: Counter[str] = Counter()
        self._turn = itertools.count()

    @property
    def enabled(self) -> bool:
        return bool(self.replicas)

    def lags(self) -> dict[str, float | None]:
        """Each replica's last measured lag in seconds (None: not measured yet, or unreachable)."""
        return {r.name: r.lag for r in self.replicas}

    async def pick(self) -> Replica | None:
        """A replica within the allowed lag, measured at most ``replica_poll_seconds`` ago; None: the
        primary (the fallback is counted)."""
        now = time.monotonic()
        live = [r for r in self.replicas if r.down_until <= now]
        stale = [r for r in live if now - r.measured_at >= self.settings.replica_poll_seconds]
        if stale:
            await asyncio.gather(*(self._refresh(r) for r in stale))
        max_lag = self.settings.replica_max_lag_seconds
        healthy = [r for r in live if r.state == OK and r.lag is not None and r.lag <= max_lag]
        if healthy:
            return healthy[next(self._turn) % len(healthy)]
        reachable = any(r.state == LAGGING for r in live)
        self._fallback("lag" if reachable else "down")
        return None

    async def choose(self, seconds_since_write: float | None) -> Replica | None:
        """Where a caller who last wrote ``seconds_since_write`` ago reads: a replica, or None (the
        primary)."""
        if seconds_since_write is not None and seconds_since_write < self.settings.read_your_writes_seconds:
            self._read("recent_write")
            return None
        replica = await self.pick()
        if replica is not None:
            self._read("replica")
        return replica

    @asynccontextmanager
    async def read_session(
        self, primary: AsyncSession, seconds_since_write: float | None
    ) -> AsyncIterator[AsyncSession]:
        """A session on a replica, or ``primary`` (the request's own session) when the caller wrote
        recently or no replica is fit. The replica's connection is taken (and pinged) before the endpoint
        runs, so a replica that died since the last poll means a fallback, not an error."""
        replica = await self.choose(seconds_since_write) if self.enabled else None
        session = await self._open(replica) if replica is not None else None
        if session is None:
            yield primary
            return
        try:
            yield session
        finally:
            await session.close()

    async def read_sessionmaker(
        self, primary: async_sessionmaker[AsyncSession], seconds_since_write: float | None
    ) -> async_sessionmaker[AsyncSession]:
        """For reads that outlive the request's session (streamed exports): a replica's sessionmaker or
        the primary's."""
        replica = await self.choose(seconds_since_write) if self.enabled else None
        return primary if replica is None else replica.sessionmaker

    async def aclose(self) -> None:
        for replica in self.replicas:
            await replica.engine.dispose()

    async def _open(self, replica: Replica) -> AsyncSession | None:
        session = replica.sessionmaker()
        try:
            async with asyncio.timeout(self.settings.replica_connect_timeout_seconds):
                await session.connection()
        except Exception as exc:  # whatever stops us reaching it, the primary answers instead
            with contextlib.suppress(Exception):
                await session.close()
            self._mark_down(replica, exc)
            self._fallback("down")
            return None
        return session

    async def _refresh(self, replica: Replica) -> None:
        async with replica.lock:
            started = time.monotonic()
            if started - replica.measured_at < self.settings.replica_poll_seconds:
                return  # another request measured it while this one waited
            try:
                async with asyncio.timeout(self.settings.replica_connect_timeout_seconds):
                    first, second = await self._sample(replica)
            except Exception as exc:  # unreachable, refusing, or too slow to answer: down for a while
                self._mark_down(replica, exc)
                return
            if not first.in_recovery and replica.state != OK:
                log.warning("read replica %s is not in recovery (a primary?): used with lag 0", replica.name)
            self._lag(replica, lag_of(first, second))
            replica.measured_at = started  # when the first query was sent: the lag is at least this recent
            fit = replica.lag is not None and replica.lag <= self.settings.replica_max_lag_seconds
            self._set_state(replica, OK if fit else LAGGING)

    async def _sample(self, replica: Replica) -> tuple[Sample, Sample | None]:
        """One sample, and when it alone would call the replica lagging, a second: once the replica has
        replayed what it had received at the first, or after :data:`RECHECKS` tries."""
        async with replica.engine.connect() as conn:
            first = Sample.of(time.monotonic(), (await conn.execute(SAMPLE_SQL)).one())
            lag = lag_of(first)
            if lag is not None and lag <= self.settings.replica_max_lag_seconds:
                return first, None
            if _replayed_all_of(first, first):
                return first, None  # nothing in flight that a moment could settle
            for _ in range(RECHECKS):
                await asyncio.sleep(RECHECK_SECONDS)
                second = Sample.of(time.monotonic(), (await conn.execute(SAMPLE_SQL)).one())
                if _replayed_all_of(second, first):
                    break
            return first, second

    def _mark_down(self, replica: Replica, exc: BaseException) -> None:
        self._lag(replica, None)
        replica.measured_at = -math.inf  # measured again before it is used again
        replica.down_until = time.monotonic() + self.settings.replica_retry_seconds
        self._set_state(replica, DOWN, f"{type(exc).__name__}: {exc}".strip())

    def _set_state(self, replica: Replica, state: str, why: str = "") -> None:
        previous, replica.state = replica.state, state
        if state == previous:
            return
        if state == OK:
            log.info("read replica %s in use (lag %.1f s)", replica.name, replica.lag or 0.0)
        elif state == LAGGING:
            log.warning(
                "read replica %s is %s s behind (more than %s s): its reads go to the primary",
                replica.name,
                "?" if replica.lag is None else f"{replica.lag:.1f}",
                self.settings.replica_max_lag_seconds,
            )
        else:
            log.warning(
                "read replica %s is unreachable (%s): its reads go to the primary; retried in %s s",
                replica.name,
                why[:200],
                self.settings.replica_retry_seconds,
            )

    def _read(self, target: str) -> None:
        self.reads[target] += 1
        if self.metrics is not None:
            self.metrics.read(target)

    def _fallback(self, reason: str) -> None:
        self.fallbacks[reason] += 1
        self._read("fallback")
        if self.metrics is not None:
            self.metrics.fallback(reason)
        log.debug("dashboard read on the primary: %s", reason)

    def _lag(self, replica: Replica, seconds: float | None) -> None:
        replica.lag = seconds
        if self.metrics is not None:
            self.metrics.lag(replica.name, seconds)
