"""Request dependencies: the authenticated :class:`Subject`, resolved once per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository as repo
from app.auth.login import AuthContext
from app.auth.models import Role
from app.auth.scope import Grant, Subject
from app.core.db import DbSession
from app.core.errors import NotAuthenticated

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_auth_context(request: Request) -> AuthContext:
    auth: AuthContext = request.app.state.auth
    return auth


async def load_subject(session: AsyncSession, user_id: int) -> Subject | None:
    user = await repo.get_user(session, user_id)
    if user is None or not user.is_active:
        return None
    assignments = (await repo.assignments_for(session, [user.id]))[user.id]
    person = (await repo.persons_for(session, [user.id])).get(user.id)
    return Subject(
        user_id=user.id,
        username=user.username,
        is_admin=any(a.role == Role.ADMIN for a in assignments),
        is_service=user.is_service,
        person_id=person.id if person else None,
        grants=tuple(
            Grant(role=Role(a.role), org_unit_id=a.org_unit_id, assignment_id=a.id)
            for a in assignments
            if a.org_unit_id is not None
        ),
    )


async def get_subject(
    session: DbSession,
    ctx: Annotated[AuthContext, Depends(get_auth_context)],
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Subject:
    if not token:
        raise NotAuthenticated("Authentication required.")
    claims = ctx.codec.decode_access(token)
    subject = await load_subject(session, claims.user_id)
    if subject is None:
        raise NotAuthenticated("Invalid or expired token.")
    return subject


CurrentSubject = Annotated[Subject, Depends(get_subject)]
AuthCtx = Annotated[AuthContext, Depends(get_auth_context)]
