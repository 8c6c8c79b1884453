"""Org unit endpoints."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, Query, Request, Response, status

from app.auth.deps import CurrentSubject
from app.auth.policy import Action
from app.core.db import DbSession
from app.core.pagination import Page, Pagination
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID, IdPath, QueryText, if_match
from app.orgs import pages, service
from app.orgs.models import OrgKind
from app.orgs.schemas import OrgUnitCreate, OrgUnitMove, OrgUnitRead, OrgUnitUpdate

router = ScopedRouter(prefix="/org-units", tags=["org units"])
IfMatch = Annotated[int | None, Depends(if_match)]
AsOf = Annotated[
    date | None, Query(description="The tree as it stood that day (YYYY-MM-DD; default: today).")
]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrgUnitRead)
async def create_unit(body: OrgUnitCreate, subject: CurrentSubject, session: DbSession) -> object:
    """Create a unit under ``parent_id`` (org_admin of the parent's subtree); a root needs an admin."""
    return await service.to_read(session, await service.create(session, subject, body))


@router.get("", response_model=Page[OrgUnitRead])
async def list_units(
    request: Request,
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    parent_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    kind: OrgKind | None = None,
    q: Annotated[QueryText | None, Query(max_length=100)] = None,
    code: Annotated[QueryText | None, Query(max_length=64)] = None,
    as_of: AsOf = None,
) -> Response:
    """Children of ``parent_id``; without it, the caller's top units — or, with ``q``/``kind``/``code``,
    a search of everything the caller can see. All as the tree stood on ``as_of`` (default today)."""
    query = service.UnitQuery(parent_id, kind, q, code, as_of)
    body = await pages.list_units_json(request.app.state.bodies, session, subject, page, query)
    return Response(body, media_type="application/json")  # kept while the tree has not changed (pages.py)


@router.get("/{unit_id}", response_model=OrgUnitRead)
async def get_unit(
    unit_id: IdPath, subject: CurrentSubject, session: DbSession, as_of: AsOf = None
) -> object:
    """A unit, ended ones included (with its parent on its last day); with ``as_of``, its name, code and
    parent on that day (a breadcrumb of a past year)."""
    unit = await service.get_visible(session, subject, unit_id, Action.UNIT_READ)
    return await service.to_read(session, unit, as_of)


@router.patch("/{unit_id}", response_model=OrgUnitRead)
async def update_unit(
    unit_id: IdPath, body: OrgUnitUpdate, subject: CurrentSubject, session: DbSession, expected: IfMatch
) -> object:
    return await service.to_read(session, await service.update(session, subject, unit_id, body, expected))


@router.delete("/{unit_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_unit(
    unit_id: IdPath, subject: CurrentSubject, session: DbSession, expected: IfMatch
) -> Response:
    """Delete an empty unit (no child units, people, users or records)."""
    await service.delete(session, subject, unit_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{unit_id}/descendants", response_model=Page[OrgUnitRead])
async def list_descendants(
    unit_id: IdPath,
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    kind: OrgKind | None = None,
    as_of: AsOf = None,
) -> object:
    items, total = await service.list_descendants(session, subject, unit_id, page, kind, as_of)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/{unit_id}/move", response_model=OrgUnitRead)
async def move_unit(
    unit_id: IdPath, body: OrgUnitMove, subject: CurrentSubject, session: DbSession, expected: IfMatch
) -> object:
    """Re-hang the unit and its whole subtree under ``parent_id`` (409 into its own subtree)."""
    return await service.to_read(session, await service.move(session, subject, unit_id, body, expected))
