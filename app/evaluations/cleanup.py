"""Orphaned evidence files: files in the evidence directory that no evidence row names.

An upload writes its file before its row, and a lost transaction deletes the file again (a rollback
hook). A process that dies between the two — killed, out of memory, power lost — runs no hook, so the file
stays with no row; so does a half-written ``tmp/*.part``. ``cdht cleanup-evidence`` finds such files and
removes them. Only files older than a grace period are touched, so an upload still in flight (its file
written, its row not yet committed) is never taken for an orphan.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.evaluations import repository as repo
from app.evaluations.storage import EvidenceStore

DEFAULT_GRACE = timedelta(hours=1)
_KEY = re.compile(r"^[0-9a-f]{32}$")
_BATCH = 500


@dataclass(frozen=True)
class Orphan:
    path: Path
    size: int


def _candidates(store: EvidenceStore, cutoff: float) -> Iterator[tuple[Path, str | None]]:
    """Files laid out as the store writes them and older than ``cutoff``: ``(path, key)`` for a stored
    file, ``(path, None)`` for a leftover partial upload. Anything else in the folder is not ours."""
    root = store.root
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.stat().st_mtime >= cutoff:
                continue
            if folder.name == "tmp" and path.name.endswith(".part"):
                yield path, None
            elif _KEY.match(path.name) and path.name[:2] == folder.name:
                yield path, path.name


async def find_orphans(
    session: AsyncSession, store: EvidenceStore, grace: timedelta = DEFAULT_GRACE, now: float | None = None
) -> list[Orphan]:
    """Files older than ``grace`` whose storage key no evidence row holds (and stale partial uploads)."""
    cutoff = (time.time() if now is None else now) - grace.total_seconds()
    candidates = list(_candidates(store, cutoff))
    keys = [key for _, key in candidates if key is not None]
    known: set[str] = set()
    for start in range(0, len(keys), _BATCH):
        known |= await repo.stored_keys(session, keys[start : start + _BATCH])
    return [Orphan(path, path.stat().st_size) for path, key in candidates if key is None or key not in known]


def remove(orphans: list[Orphan]) -> int:
    """Delete the orphans (those already gone are skipped); the number removed."""
    removed = 0
    for orphan in orphans:
        try:
            os.remove(orphan.path)
        except FileNotFoundError:
            continue
        removed += 1
    return removed
