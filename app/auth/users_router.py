"""User, role assignment and service-account endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response, status

from app.auth import service
from app.auth.deps import AuthCtx, CurrentSubject
from app.auth.schemas import (
    RoleAssignmentCreate,
    RoleAssignmentRead,
    ServiceAccountCreate,
    ServiceAccountCreated,
    ServiceAccountRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from app.core.db import DbSession
from app.core.pagination import Page, Pagination
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID, IdPath, QueryText, if_match

router = ScopedRouter(tags=["users"])


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserRead)
async def create_user(body: UserCreate, subject: CurrentSubject, session: DbSession) -> UserRead:
    return await service.create_user(session, subject, body)


@router.get("/users", response_model=Page[UserRead])
async def list_users(
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    org_unit_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    q: Annotated[QueryText | None, Query(max_length=100)] = None,
) -> object:
    items, total = await service.list_users(session, subject, page, org_unit_id, q)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/users/{user_id}", response_model=UserRead)
async def get_user(user_id: IdPath, subject: CurrentSubject, session: DbSession) -> UserRead:
    return await service.get_user(session, subject, user_id)


@router.patch("/users/{user_id}", response_model=UserRead)
async def update_user(
    user_id: IdPath,
    body: UserUpdate,
    subject: CurrentSubject,
    session: DbSession,
    expected: Annotated[int | None, Depends(if_match)],
    ctx: AuthCtx,
) -> UserRead:
    """Users change their own name, email and password (with ``current_password``); org_admins also
    reset passwords and (de)activate."""
    return await service.update_user(session, subject, user_id, body, expected, throttle=ctx.throttle)


@router.post("/users/{user_id}/roles", status_code=status.HTTP_201_CREATED, response_model=RoleAssignmentRead)
async def grant_role(
    user_id: IdPath, body: RoleAssignmentCreate, subject: CurrentSubject, session: DbSession
) -> object:
    """Grant a role at a unit inside the caller's subtree (``admin`` only by an admin, with no unit)."""
    return await service.grant_role(session, subject, user_id, body)


@router.delete("/users/{user_id}/roles/{assignment_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_role(
    user_id: IdPath, assignment_id: IdPath, subject: CurrentSubject, session: DbSession
) -> Response:
    await service.revoke_role(session, subject, user_id, assignment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/service-accounts", status_code=status.HTTP_201_CREATED, response_model=ServiceAccountCreated)
async def create_service_account(
    body: ServiceAccountCreate, subject: CurrentSubject, session: DbSession
) -> ServiceAccountCreated:
    """Create a client-credentials account; ``client_secret`` is shown in this response only."""
    return await service.create_service_account(session, subject, body)


@router.get("/service-accounts", response_model=Page[ServiceAccountRead])
async def list_service_accounts(subject: CurrentSubject, session: DbSession, page: Pagination) -> object:
    items, total = await service.list_service_accounts(session, subject, page)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
