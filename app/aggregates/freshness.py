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

Progress, breakdown and trend (:func:`answered`) keep their bodies by the same values
(``conditional.KeptBodies``): their bodies depend on nothing else, so a read that finds the counters
where an earlier one found them answers that one's bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import repository as repo
from app.auth import subjects
from app.auth.policy import Action
from app.auth.scope import Subject
from app.core import conditional, i18n
from app.core.dates import today
from app.orgs.service import get_visible_with


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
    """The dashboards' conditional GET (completeness and the annual report; progress, breakdown and trend
    through :func:`answered`): ``304`` if the client's ``If-None-Match`` is still current, else ``None``
    with the ``ETag`` on ``response``. Called before the read, on the read's own session."""
    tag, _ = await _tag(request, session, subject, unit_id, action, records=records, lineage=lineage)
    return conditional.answer(request, response, tag)


async def _tag(
    request: Request,
    session: AsyncSession,
    subject: Subject,
    unit_id: int,
    action: Action,
    *,
    records: bool = False,
    lineage: bool = False,
) -> tuple[str, tuple[Any, ...]]:
    """The request's tag and what it was made of: the change counters behind a read of ``unit_id`` by
    ``subject`` for ``action``, and the date. The tag is kept for the next poll's ``304`` if the caller was
    read at the generation taken before the counters."""
    tags: conditional.TagCache = request.app.state.tags
    stamp = tags.stamp()  # before the counters are read: a change committed meanwhile drops the tag
    counters = repo.change_counters(unit_id, records=records, lineage=lineage)
    read = await get_visible_with(session, subject, unit_id, action, counters)
    parts = (*read, today().isoformat())
    tag = conditional.etag(request, subject.user_id, *parts)
    if (subject_at := session.info.get(subjects.GENERATION)) is not None:
        tags.keep(request, subject.user_id, tag, stamp, subject_at)  # the next poll's 304, if nothing moves
    return tag, parts


async def answered(
    request: Request,
    response: Response,
    session: AsyncSession,
    subject: Subject,
    read: Callable[..., Awaitable[BaseModel]],
    unit_id: int,
    *args: Any,
    lineage: bool = False,
) -> Response:
    """A dashboard read of ``unit_id`` with its ``ETag``: ``304`` for a current ``If-None-Match``; else
    ``read(session, subject, unit_id, *args)``'s body as ``response_model`` would write it — or the same
    bytes, kept from a request that found the same change counters (``conditional.KeptBodies``; the body
    depends on the read's arguments, the language and what the counters count, never on the caller, who
    passed the scope check in the statement that read the counters)."""
    tag, parts = await _tag(request, session, subject, unit_id, Action.AGGREGATE_READ, lineage=lineage)
    if done := conditional.answer(request, response, tag):
        return done
    bodies: conditional.KeptBodies = request.app.state.bodies
    key = (read.__module__, read.__qualname__, unit_id, args, i18n.current(), parts)
    body = await bodies.json(key, lambda: read(session, subject, unit_id, *args))
    return conditional.tagged(Response(body, media_type="application/json"), response)
