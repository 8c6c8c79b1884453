"""Change generations shared by every process of one host: when a copy kept in memory must be read again.

A process may keep what it read from the database between requests (the caller's identity,
``auth/subjects.py``; a dashboard's ETag, ``core/conditional.py``) only if a change made by *any* process
reaches it before the next request. Each generation is a counter in a small file under the var directory
(``var/run/generations``), mapped into the memory of every process that uses it: the workers of
``cdht serve --workers N``, the import and webhook workers, the ``cdht`` commands. Reading it costs a
memory read, no round trip.

- A transaction that committed writes to a generation's tables moves that generation by one, *after* the
  commit (``core/writes.py`` notes the tables; :func:`_moved` runs once the commit is done) and so before
  the request's response is sent: the next request, in any process, sees the new number.
- A reader takes the generation *before* it reads the database, and keeps its copy under that number; the
  copy serves only while the generation is still that number. A read that overlapped the commit was taken
  under the older number, so it is dropped.

Generations:

- ``auth``: who the caller is and may act as (``users``, ``role_assignments``, ``people``);
- ``dashboards``: what a dashboard's ETag is made of (the counters' versions and the change epochs, which
  every write a dashboard could show moves: ``aggregates/epochs.py``, ``aggregates/versions.py``), and
  ``auth`` too, since the tag's check of the caller's scope depends on it;
- ``criteria``: the criteria sets' scoring terms and indicators (``criteria_sets``, ``criteria``,
  ``indicators``; ``criteria/terms.py``). A set an evaluation uses is frozen, so in practice this moves
  when ``cdht seed`` loads new sets, and at a restore;
- ``orgs``: the org tree (its units, links, closure, successions and former names): the pages of units
  ``GET /org-units`` answers (``orgs/pages.py``). It moves when a unit is created, changed, moved or
  ended, and at a reorganisation.

A write the sessions do not see (SQL typed into ``psql``, a restore) moves nothing: copies are also
dropped after ``CDHT_CACHE_MAX_AGE_SECONDS`` (``core/config.py``), and ``cdht restore`` moves every
generation itself. Processes on *other hosts* do not share the file: a deployment that runs the API on
several hosts against one database sets ``CDHT_CACHE_MAX_AGE_SECONDS=0`` (nothing is kept).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
from pathlib import Path

from app.core import writes

AUTH = 0
DASHBOARDS = 1
CRITERIA = 2
ORGS = 3
_LAYOUT = struct.Struct("<4Q")  # one unsigned 64-bit counter per generation (a shorter file grows)

AUTH_TABLES = frozenset({"users", "role_assignments", "people"})
DASHBOARD_TABLES = frozenset({"aggregate_versions", "change_epochs"})
CRITERIA_TABLES = frozenset({"criteria_sets", "criteria", "indicators"})
ORG_TABLES = frozenset(
    {"org_units", "org_unit_links", "org_unit_closure", "org_unit_successions", "org_unit_former_names"}
)


class Generations:
    """The counters, mapped from ``path`` (shared with every process that maps it), or kept in this
    process's memory alone (``path=None``)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        if path is None:
            self._map = mmap.mmap(-1, _LAYOUT.size)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            if os.fstat(self._fd).st_size < _LAYOUT.size:
                os.ftruncate(self._fd, _LAYOUT.size)  # zeros
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._map = mmap.mmap(self._fd, _LAYOUT.size)

    def read(self) -> tuple[int, int, int, int]:
        """(auth, dashboards, criteria, orgs), as they are now."""
        auth, dashboards, criteria, orgs = _LAYOUT.unpack_from(self._map, 0)
        return auth, dashboards, criteria, orgs

    def move(
        self, *, auth: bool = False, dashboards: bool = False, criteria: bool = False, orgs: bool = False
    ) -> None:
        """Move the named generations by one (``auth`` moves ``dashboards`` too), atomically for every
        process: under the file's lock, so two processes moving at once both count."""
        if not (auth or dashboards or criteria or orgs):
            return
        with self._lock:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                now_auth, now_dashboards, now_criteria, now_orgs = _LAYOUT.unpack_from(self._map, 0)
                _LAYOUT.pack_into(
                    self._map,
                    0,
                    now_auth + auth,
                    now_dashboards + (auth or dashboards),
                    now_criteria + criteria,
                    now_orgs + orgs,
                )
            finally:
                if self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)


_installed: Generations | None = None


def install(path: Path | None) -> Generations:
    """This process's generations: the file at ``path`` (the app, the commands: ``var/run/generations``);
    the same file again is the same mapping."""
    global _installed
    if _installed is None or _installed.path != path:
        _installed = Generations(path)
    return _installed


def current() -> Generations:
    """The installed generations (by default this process's own, until :func:`install` names a file)."""
    return _installed if _installed is not None else install(None)


def path_for(var_dir: Path) -> Path:
    return var_dir / "run" / "generations"


def _moved(tables: writes.Tables) -> None:
    unknown = None in tables
    current().move(
        auth=unknown or not AUTH_TABLES.isdisjoint(tables),
        dashboards=unknown or not DASHBOARD_TABLES.isdisjoint(tables),
        criteria=unknown or not CRITERIA_TABLES.isdisjoint(tables),
        orgs=unknown or not ORG_TABLES.isdisjoint(tables),
    )


writes.on_committed(_moved)
