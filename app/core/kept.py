"""Copies a process keeps of what it read, under one change generation (``core/generations.py``).

A copy serves while its generation has not moved since it was read (a committed write to the
generation's tables, in any process of the host, moves it) and for at most ``max_age`` seconds
(``CDHT_CACHE_MAX_AGE_SECONDS``: changes no session sees, such as SQL typed into ``psql``). ``max_age`` 0
keeps nothing. The reader takes :meth:`Kept.generation` *before* it reads the database and keeps what it
read under that number, so a read that overlapped a commit is never served again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import async_sessionmaker

from app.core import generations

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Copy(Generic[V]):
    value: V
    generation: int
    read_at: float  # time.monotonic()


class Kept(Generic[K, V]):
    """Values by key, kept under generation ``which`` (``generations.AUTH``, …); past ``max_kept`` keys
    the table starts again (a burst of distinct keys)."""

    def __init__(self, which: int, max_age: float, max_kept: int) -> None:
        self.which = which
        self.max_age = max_age
        self.max_kept = max_kept
        self._copies: dict[K, _Copy[V]] = {}

    def generation(self) -> int:
        """The generation now: take it before reading, keep what was read under it."""
        return generations.current().read()[self.which]

    def get(self, key: K, generation: int) -> tuple[V, float] | None:
        """The kept value of ``key`` and its age in seconds, if nothing it was read from has changed."""
        copy = self._copies.get(key)
        if copy is None or copy.generation != generation:
            return None
        age = time.monotonic() - copy.read_at
        if age > self.max_age:
            del self._copies[key]
            return None
        return copy.value, age

    def put(self, key: K, value: V, generation: int) -> None:
        """Keep ``value``, read after ``generation`` was taken."""
        if self.max_age <= 0:
            return
        if len(self._copies) >= self.max_kept:
            self._copies.clear()
        self._copies[key] = _Copy(value, generation, time.monotonic())


def carried_by(sessionmaker: async_sessionmaker[Any], name: str, kept: Kept[K, V]) -> Kept[K, V]:
    """Give every session of ``sessionmaker`` ``kept`` as ``session.info[name]`` (the app's state, once per
    process: ``criteria/terms.py``, ``orgs/service.get_visible_life``), beside the tables it carries
    already; a session without it (a command, a worker, a test's own session) reads each time."""
    info = dict(sessionmaker.kw.get("info") or {})
    info[name] = kept
    sessionmaker.configure(info=info)
    return kept
