"""Login throttling: five failed passwords in a row for one username lock it for a while (429), and a
client address that fails too often is slowed down too.

Kept in the process's memory: `cdht serve` runs one worker process, and a restart forgetting counters is
acceptable for a lockout measured in minutes. A multi-process deployment would move this to Redis.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from threading import Lock

from app.core.errors import RateLimited


@dataclass
class _Counter:
    failures: int = 0
    locked_until: float = 0.0


@dataclass
class LoginThrottle:
    max_failures: int = 5
    lockout_seconds: int = 300
    max_failures_per_address: int = 50
    clock: object = field(default=time.monotonic)
    _users: dict[str, _Counter] = field(default_factory=dict)
    _addresses: dict[str, _Counter] = field(default_factory=dict)
    _lock: Lock = field(default_factory=Lock)

    def _now(self) -> float:
        return self.clock()  # type: ignore[operator]

    def check(self, username: str, address: str | None) -> None:
        """Raise 429 when the username or the address is locked."""
        now = self._now()
        with self._lock:
            for counter in (self._users.get(username.lower()), self._addresses.get(address or "")):
                if counter is not None and counter.locked_until > now:
                    retry = max(1, math.ceil(counter.locked_until - now))
                    raise RateLimited(
                        "Too many failed logins; try again later.", headers={"Retry-After": str(retry)}
                    )

    def failed(self, username: str, address: str | None) -> None:
        now = self._now()
        with self._lock:
            self._bump(self._users, username.lower(), self.max_failures, now)
            if address:
                self._bump(self._addresses, address, self.max_failures_per_address, now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._users.pop(username.lower(), None)

    def _bump(self, table: dict[str, _Counter], key: str, limit: int, now: float) -> None:
        counter = table.setdefault(key, _Counter())
        if counter.locked_until and counter.locked_until <= now:
            counter.failures, counter.locked_until = 0, 0.0
        counter.failures += 1
        if counter.failures >= limit:
            counter.locked_until = now + self.lockout_seconds
        if len(table) > 100_000:  # bound memory under a spraying attack: forget unlocked counters
            for stale in [k for k, c in table.items() if c.locked_until <= now][:50_000]:
                table.pop(stale, None)
