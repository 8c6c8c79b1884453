"""Pages of org units kept by the process (issue #15): ``GET /org-units`` is every client's tree browser,
read far more often than the tree changes (a unit created, moved, renamed or ended; a reorganisation).

A page's JSON is kept in ``app.state.bodies`` (``core/conditional.KeptBodies``: its byte budget,
``CDHT_KEPT_BODIES_MB``, and ``CDHT_CACHE_MAX_AGE_SECONDS``) under what it was read from, taken *before*
the read:

- the ``orgs`` generation (``core/generations.py``): a committed write to the tree's tables, in any process
  of the host, moves it before the writing request's response is sent, so the next read has another key;
- what the read uses of the caller (``auth/covers.reach_key``): whether they are an admin and the units
  where their roles sit (for ``unit.read``, and every role for their top units), so colleagues with the
  same roles share a page and a granted or removed role is another key;
- the arguments, the day (``as_of``, default today: tomorrow is another key) and the language.

A ``parent_id`` outside the caller's scope is read, and refused, every time: nothing is kept of an error.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.covers import reach_key
from app.auth.policy import Action
from app.auth.scope import Subject
from app.core import conditional, generations, i18n
from app.core.dates import today
from app.core.pagination import Page, PageParams
from app.orgs import service
from app.orgs.schemas import OrgUnitRead


async def list_units_json(
    bodies: conditional.KeptBodies,
    session: AsyncSession,
    subject: Subject,
    params: PageParams,
    query: service.UnitQuery,
) -> bytes:
    """:func:`service.list_units`' page as its route's response model writes it, kept or read."""
    query = query._replace(as_of=query.as_of or today())  # the day itself: tomorrow is another key
    # Taken before the read: a change committed meanwhile moves it, so the page kept is never served again.
    generation = generations.current().read()[generations.ORGS]
    reach = (reach_key(subject, Action.UNIT_READ), reach_key(subject))
    key = ("org-units", generation, reach, params.limit, params.offset, query, i18n.current())

    async def read() -> Page[OrgUnitRead]:
        items, total = await service.list_units(session, subject, params, query)
        return Page[OrgUnitRead](items=items, total=total, limit=params.limit, offset=params.offset)

    return await bodies.json(key, read)
