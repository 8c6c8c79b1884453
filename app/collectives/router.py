"""Household and clan endpoints: ``/households`` and ``/clans``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, status

from app.auth.deps import CurrentSubject
from app.collectives import service
from app.collectives.schemas import (
    ClanCreate,
    ClanRead,
    CollectiveUpdate,
    HouseholdCreate,
    HouseholdRead,
    HouseholdsReplace,
    MembersReplace,
)
from app.core.db import DbSession
from app.core.pagination import Page, Pagination
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID, IdPath, QueryText, if_match

router = ScopedRouter(tags=["collectives"])

UnitFilter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Its subtree.")]
Search = Annotated[QueryText | None, Query(max_length=100, description="Part of the name or the code.")]
Expected = Annotated[int | None, Depends(if_match)]


@router.post("/households", status_code=status.HTTP_201_CREATED, response_model=HouseholdRead)
async def create_household(body: HouseholdCreate, subject: CurrentSubject, session: DbSession) -> object:
    """A household (hộ gia đình) at ``org_unit_id`` with its members: a person belongs to one household
    at a time (409 otherwise)."""
    return await service.create_household(session, subject, body)


@router.get("/households", response_model=Page[HouseholdRead])
async def list_households(
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    org_unit_id: UnitFilter = None,
    q: Search = None,
) -> object:
    """Households placed in the subtree of ``org_unit_id`` (or everywhere the caller may read people)."""
    items, total = await service.list_collectives(
        session, subject, service.HOUSEHOLD, page, org_unit_id=org_unit_id, q=q
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/households/{household_id}", response_model=HouseholdRead)
async def get_household(household_id: IdPath, subject: CurrentSubject, session: DbSession) -> object:
    return await service.get(session, subject, service.HOUSEHOLD, household_id)


@router.patch("/households/{household_id}", response_model=HouseholdRead)
async def update_household(
    household_id: IdPath,
    body: CollectiveUpdate,
    subject: CurrentSubject,
    session: DbSession,
    expected: Expected,
) -> object:
    return await service.update(session, subject, service.HOUSEHOLD, household_id, body, expected)


@router.put("/households/{household_id}/members", response_model=HouseholdRead)
async def replace_members(
    household_id: IdPath,
    body: MembersReplace,
    subject: CurrentSubject,
    session: DbSession,
    expected: Expected,
) -> object:
    """Today's members as a whole, from ``effective_on`` (default today): past years keep the members
    they had."""
    return await service.replace_set(session, subject, service.HOUSEHOLD, household_id, body, expected)


@router.post("/clans", status_code=status.HTTP_201_CREATED, response_model=ClanRead)
async def create_clan(body: ClanCreate, subject: CurrentSubject, session: DbSession) -> object:
    """A clan (dòng họ) at ``org_unit_id`` with its households: a household belongs to one clan at a
    time (409 otherwise)."""
    return await service.create_clan(session, subject, body)


@router.get("/clans", response_model=Page[ClanRead])
async def list_clans(
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    org_unit_id: UnitFilter = None,
    q: Search = None,
) -> object:
    """Clans placed in the subtree of ``org_unit_id`` (or everywhere the caller may read people)."""
    items, total = await service.list_collectives(
        session, subject, service.CLAN, page, org_unit_id=org_unit_id, q=q
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/clans/{clan_id}", response_model=ClanRead)
async def get_clan(clan_id: IdPath, subject: CurrentSubject, session: DbSession) -> object:
    return await service.get(session, subject, service.CLAN, clan_id)


@router.patch("/clans/{clan_id}", response_model=ClanRead)
async def update_clan(
    clan_id: IdPath, body: CollectiveUpdate, subject: CurrentSubject, session: DbSession, expected: Expected
) -> object:
    return await service.update(session, subject, service.CLAN, clan_id, body, expected)


@router.put("/clans/{clan_id}/households", response_model=ClanRead)
async def replace_households(
    clan_id: IdPath,
    body: HouseholdsReplace,
    subject: CurrentSubject,
    session: DbSession,
    expected: Expected,
) -> object:
    """Today's households of the clan as a whole, from ``effective_on`` (default today)."""
    return await service.replace_set(session, subject, service.CLAN, clan_id, body, expected)
