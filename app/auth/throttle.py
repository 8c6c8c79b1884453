"""Login throttling: five failed passwords in a row for one username lock it for a while (429), and a
client address that fails too often is locked too.

The counters live in the database (``login_attempts``), so every worker process and replica counts
against the same limit. An attempt is counted *before* the secret is checked, by one atomic upsert that
returns the new count: of thirty parallel guesses only the first ``max_failures`` get as far as the
password hash, the others are answered 429 at once. A success then gives the attempt back (the username's
counter starts again at zero; the address's loses the one attempt). A counter nobody has touched for a
lockout period starts again too, so old typos never add up to a lock.

The caller chooses the transaction: the token endpoint counts in a short one of its own, committed before
the password is verified, because the failure that follows rolls the request's transaction back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, null, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import AttemptKind, LoginAttempt
from app.core.db import UTCDateTime
from app.core.errors import RateLimited
from app.core.security import digest

log = logging.getLogger("cdht.auth")

KEY_LENGTH = 128  # login_attempts.key; longer keys (never a real username) are stored as a digest


def normalise_username(username: str) -> str:
    """The one spelling of a username that the throttle counts (and that logins look up): ``" Alice "``
    and ``"alice"`` are one account."""
    return username.strip().casefold()


def _key(value: str) -> str:
    return value if len(value) <= KEY_LENGTH else "sha256:" + digest(value)


@dataclass
class LoginThrottle:
    max_failures: int = 5
    lockout_seconds: int = 300
    max_failures_per_address: int = 50
    clock: Callable[[], float] = field(default=time.time)  # seconds since the epoch; tests move it
    prune_every: int = 1000  # attempts (in this process) between two clean-ups of counters that ran out
    _since_prune: int = field(default=0, init=False, repr=False)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def attempt(self, session: AsyncSession, username: str, address: str | None) -> None:
        """Count one attempt for the username (and the address); raise 429 when either is over its limit,
        in which case the secret must not be checked at all."""
        now = self._now()
        counters = [(AttemptKind.USER, normalise_username(username), self.max_failures)]
        if address:
            counters.append((AttemptKind.ADDRESS, address, self.max_failures_per_address))
        wait = 0.0
        for kind, key, limit in counters:
            failures, locked_until = await self._count(session, kind, _key(key), limit, now)
            if failures == limit:
                log.warning("login throttle: %s %r locked for %s s", kind.value, key, self.lockout_seconds)
            if failures > limit and locked_until is not None:
                wait = max(wait, (locked_until - now).total_seconds())
        self._since_prune += 1
        if self._since_prune >= self.prune_every:
            self._since_prune = 0
            await self._prune(session, now)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise RateLimited("Too many failed logins; try again later.", headers={"Retry-After": str(retry)})

    async def succeeded(self, session: AsyncSession, username: str, address: str | None) -> None:
        """The secret was right: the username's counter starts again, and the address gets its attempt
        back (it counts failures only)."""
        await session.execute(
            delete(LoginAttempt)
            .where(
                LoginAttempt.kind == AttemptKind.USER.value,
                LoginAttempt.key == _key(normalise_username(username)),
            )
            .execution_options(synchronize_session=False)
        )
        if address:
            await session.execute(
                update(LoginAttempt)
                .where(
                    LoginAttempt.kind == AttemptKind.ADDRESS.value,
                    LoginAttempt.key == _key(address),
                    LoginAttempt.failures > 0,
                )
                .values(failures=LoginAttempt.failures - 1)
                .execution_options(synchronize_session=False)
            )

    async def _count(
        self, session: AsyncSession, kind: AttemptKind, key: str, limit: int, now: datetime
    ) -> tuple[int, datetime | None]:
        """Add one attempt to the counter in one statement; the count and lock end after it. The row is
        locked (PostgreSQL) or the database is (SQLite) while the statement runs, so parallel attempts get
        consecutive counts."""
        at = bindparam("now", now, type_=UTCDateTime)
        lock_until = bindparam("lock_until", now + timedelta(seconds=self.lockout_seconds), type_=UTCDateTime)
        stale_before = bindparam(
            "stale_before", now - timedelta(seconds=self.lockout_seconds), type_=UTCDateTime
        )
        first_lock: Any = lock_until if limit <= 1 else null()
        row = LoginAttempt
        # The lock has run out, or the counter has been idle for a lockout period: start again.
        fresh = or_(
            row.locked_until <= at, and_(row.locked_until.is_(None), row.last_attempt_at <= stale_before)
        )
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        stmt = (
            insert(LoginAttempt)
            .values(kind=kind.value, key=key, failures=1, locked_until=first_lock, last_attempt_at=at)
            .on_conflict_do_update(
                index_elements=[row.kind, row.key],
                set_={
                    "failures": case((fresh, 1), else_=row.failures + 1),
                    "locked_until": case(
                        (fresh, first_lock),
                        (row.locked_until.is_not(None), row.locked_until),
                        (row.failures + 1 >= limit, lock_until),
                        else_=null(),
                    ),
                    "last_attempt_at": at,
                },
            )
            .returning(row.failures, row.locked_until)
        )
        failures, locked_until = (await session.execute(stmt)).one()
        return int(failures), locked_until

    async def _prune(self, session: AsyncSession, now: datetime) -> None:
        """Forget counters that have run out (they would start again anyway): a spraying attack must not
        grow the table for ever."""
        stale_before = now - timedelta(seconds=self.lockout_seconds)
        await session.execute(
            delete(LoginAttempt)
            .where(
                LoginAttempt.last_attempt_at <= stale_before,
                or_(LoginAttempt.locked_until.is_(None), LoginAttempt.locked_until <= now),
            )
            .execution_options(synchronize_session=False)
        )
