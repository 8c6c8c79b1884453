"""What a dashboard's ETag is made of (``core/conditional.py`` makes the tag): the caller may read the
unit (the same check as the read itself: 404 outside scope, 403 without the role — a 304 never answers
what a 200 would not), and in the same statement the change counters the answer depends on:

- the counters of the unit, every year (``aggregate_versions``): a write below the unit moves the unit's
  own versions, since every counter write touches all the cell's ancestors; with ``lineage`` the answer
  re-bases counts of units that may lie elsewhere in today's tree, so the versions of the tree's roots
  (moved by every counter write) are read instead;
- the ``reference`` epoch (the tree, plans, targets, calendars, submissions) and, for the annual report,
  the ``records`` epoch (``epochs.py``);
- today's date (Vietnam): what is late or overdue changes at midnight with no write at all.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import repository as repo
from app.auth import subjects
from app.auth.policy import Action
from app.auth.scope import Subject
from app.core import conditional
from app.core.dates import today
from app.orgs.service import get_visible_with


async def fingerprint(
    session: AsyncSession,
    subject: Subject,
    unit_id: int,
    action: Action,
    *,
    records: bool = False,
    lineage: bool = False,
) -> tuple[Any, ...]:
    """The change counters behind a read of ``unit_id`` by ``subject`` for ``action``."""
    counters = repo.change_counters(unit_id, records=records, lineage=lineage)
    return (*await get_visible_with(session, subject, unit_id, action, counters), today().isoformat())


async def unchanged(
    request: Request,
    response: Response,
    session: AsyncSession,
    subject: Subject,
    unit_id: int,
    action: Action = Action.AGGREGATE_READ,
    *,
    records: bool = False,
    lineage: bool = False,
) -> Response | None:
    """The dashboards' conditional GET (progress, breakdown, trend; completeness and the annual report
    too): ``304`` if the client's ``If-None-Match`` is still current, else ``None`` with the ``ETag`` on
    ``response``. Called before the read, on the read's own session."""
    tags: conditional.TagCache = request.app.state.tags
    stamp = tags.stamp()  # before the counters are read: a change committed meanwhile drops the tag
    parts = await fingerprint(session, subject, unit_id, action, records=records, lineage=lineage)
    tag = conditional.etag(request, subject.user_id, *parts)
    if (subject_at := session.info.get(subjects.GENERATION)) is not None:
        tags.keep(request, subject.user_id, tag, stamp, subject_at)  # the next poll's 304, if nothing moves
    return conditional.answer(request, response, tag)
