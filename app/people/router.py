"""Person endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, status

from app.auth.deps import CurrentSubject
from app.auth.policy import Action
from app.core.db import DbSession
from app.core.pagination import Page, Pagination
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID, IdPath, QueryText, if_match
from app.people import claims, service, transfers
from app.people.models import Group
from app.people.schemas import (
    CitizenIdClaimRead,
    CitizenIdClaimResolve,
    PersonCreate,
    PersonRead,
    PersonUpdate,
    TransferCreate,
    TransferRead,
)

router = ScopedRouter(prefix="/people", tags=["people"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PersonRead)
async def create_person(body: PersonCreate, subject: CurrentSubject, session: DbSession) -> object:
    return await service.create(session, subject, body)


@router.get("", response_model=Page[PersonRead])
async def list_people(
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    org_unit_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    group: Group | None = None,
    q: Annotated[QueryText | None, Query(max_length=100)] = None,
) -> object:
    """People in the subtree of ``org_unit_id`` (or everywhere the caller may see people)."""
    items, total = await service.list_people(
        session, subject, page, org_unit_id=org_unit_id, group=group, q=q
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/citizen-id-claims", response_model=Page[CitizenIdClaimRead])
async def list_citizen_id_claims(
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    org_unit_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> object:
    """Records registered with a citizen id that another record holds, where the caller may edit both
    (claimants in the subtree of ``org_unit_id``), oldest first. See ``app/people/claims.py``."""
    pairs, total = await claims.list_claims(session, subject, page, org_unit_id=org_unit_id)
    read = PersonRead.model_validate
    items = [CitizenIdClaimRead(claimant=read(c), holder=read(h)) for c, h in pairs]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/{person_id}/citizen-id-claim", response_model=PersonRead)
async def resolve_citizen_id_claim(
    person_id: IdPath, body: CitizenIdClaimResolve, subject: CurrentSubject, session: DbSession
) -> object:
    """Decide whether the claimant and the holder of its citizen id are one person: the record that
    remains (the holder, moved to the claimant's unit; or the claimant, without the id)."""
    claimant = await service.get_visible(session, subject, person_id, Action.PERSON_WRITE)
    return await claims.resolve(session, subject, claimant, body.same_person)


@router.get("/{person_id}", response_model=PersonRead)
async def get_person(person_id: IdPath, subject: CurrentSubject, session: DbSession) -> object:
    return await service.get_visible(session, subject, person_id, Action.PERSON_READ)


@router.patch("/{person_id}", response_model=PersonRead)
async def update_person(
    person_id: IdPath,
    body: PersonUpdate,
    subject: CurrentSubject,
    session: DbSession,
    expected: Annotated[int | None, Depends(if_match)],
) -> object:
    return await service.update(session, subject, person_id, body, expected)


@router.post("/{person_id}/transfers", status_code=status.HTTP_201_CREATED, response_model=TransferRead)
async def transfer_person(
    person_id: IdPath, body: TransferCreate, subject: CurrentSubject, session: DbSession
) -> object:
    """Move the person to another unit and/or group from ``effective_on`` (today or earlier). Years
    before that date keep counting them where they were."""
    person = await service.get_visible(session, subject, person_id, Action.PERSON_WRITE)
    return await transfers.transfer(session, subject, person, body)


@router.get("/{person_id}/transfers", response_model=Page[TransferRead])
async def list_transfers(
    person_id: IdPath, subject: CurrentSubject, session: DbSession, page: Pagination
) -> object:
    """The person's transfers, oldest first (reorganisations that moved them included)."""
    person = await service.get_visible(session, subject, person_id, Action.PERSON_READ)
    items, total = await transfers.list_transfers(session, person, page)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
