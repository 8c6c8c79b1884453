"""Callers kept between requests: an authenticated request's subject without a round trip.

Every authenticated request needs its caller: the user, their person and their role assignments (one
statement, ``repository.subject_rows``). A process keeps what it read, per user, under the ``auth``
generation it took *before* the read (``core/generations.py``), and serves it again only while that
generation has not moved and for at most ``CDHT_CACHE_MAX_AGE_SECONDS``:

- a role granted or removed, a user deactivated or deleted, a person linked: the transaction writes
  ``role_assignments``, ``users`` or ``people``, and once it has committed (before its response is sent)
  the generation moves in every process of the host; the very next request, whichever worker answers,
  reads the caller again;
- an inactive or removed user is never kept (their requests read the database and get 401);
- with read replicas, each write mark (``write_marks.py``) writes ``users``, so it moves the generation
  too; a kept subject's time since its caller's last write is aged by the time it was kept.

``GET /me`` answers with those very rows, so its body is kept beside the subject, under the same
generation and age: a kept caller's ``/me`` reads nothing.

The access token is still decoded and checked on every request; only the database read is saved.
"""

from __future__ import annotations

from dataclasses import replace

from app.auth.scope import Subject
from app.core import generations
from app.core.kept import Kept

GENERATION = "cdht.subject_generation"  # session.info: the generation the request's subject is valid at
MAX_KEPT = 20_000  # users per process; past it the table starts again (a burst of distinct callers)


class SubjectCache:
    """The subjects this process read, per user id, and the ``GET /me`` answers written from the same
    rows (``max_age`` 0: none kept; ``core/kept.py``)."""

    def __init__(self, max_age: float) -> None:
        self._kept: Kept[int, Subject] = Kept(generations.AUTH, max_age, MAX_KEPT)
        self._answers: Kept[int, bytes] = Kept(generations.AUTH, max_age, MAX_KEPT)

    @property
    def max_age(self) -> float:
        return self._kept.max_age

    @max_age.setter
    def max_age(self, seconds: float) -> None:
        self._kept.max_age = self._answers.max_age = seconds

    def generation(self) -> int:
        """The ``auth`` generation now: take it before reading a subject, keep the subject under it."""
        return self._kept.generation()

    def get(self, user_id: int, generation: int) -> Subject | None:
        """The kept subject of ``user_id`` if nothing it was read from has changed since."""
        found = self._kept.get(user_id, generation)
        if found is None:
            return None
        subject, age = found
        if subject.seconds_since_write is None:
            return subject
        return replace(subject, seconds_since_write=subject.seconds_since_write + age)

    def put(self, user_id: int, subject: Subject, generation: int) -> None:
        """Keep ``subject``, read after ``generation`` was taken."""
        self._kept.put(user_id, subject, generation)

    def answer(self, user_id: int, generation: int) -> bytes | None:
        """``GET /me``'s body for ``user_id`` (``MeRead``'s JSON) if nothing it was written from has
        changed since: the user, their person and their roles are the ``auth`` generation's tables."""
        found = self._answers.get(user_id, generation)
        return None if found is None else found[0]

    def put_answer(self, user_id: int, body: bytes, generation: int) -> None:
        """Keep ``GET /me``'s ``body``, read after ``generation`` was taken."""
        self._answers.put(user_id, body, generation)
