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
    """The caller as of this request (an inactive or removed user: None), in one statement."""
    rows = await repo.subject_rows(session, user_id)
    if not rows or not rows[0].is_active:
        return None
    first = rows[0]
    granted = [r for r in rows if r.assignment_id is not None and r.role is not None]
    return Subject(
        user_id=user_id,
        username=first.username,
        is_admin=any(r.role == Role.ADMIN for r in granted),
        is_service=first.is_service,
        person_id=first.person_id,
        grants=tuple(
            Grant(role=Role(r.role), org_unit_id=r.org_unit_id, assignment_id=r.assignment_id)
            for r in granted
            if r.org_unit_id is not None and r.role is not None and r.assignment_id is not None
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
