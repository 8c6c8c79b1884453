"""Request dependencies: the authenticated :class:`Subject`, resolved once per request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import repository as repo
from app.auth import subjects, write_marks
from app.auth.login import AuthContext
from app.auth.models import Role
from app.auth.scope import Grant, Subject
from app.auth.service import me_json
from app.core.db import DbSession
from app.core.deps import AppReplicas, AppSessionmaker
from app.core.errors import NotAuthenticated

T = TypeVar("T")

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_auth_context(request: Request) -> AuthContext:
    auth: AuthContext = request.app.state.auth
    return auth


def subject_of(user_id: int, rows: Sequence[repo.SubjectRow]) -> Subject | None:
    """The caller as these rows describe them (an inactive or removed user: None)."""
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
        seconds_since_write=write_marks.seconds_since(first.last_write_at, first.now),
        grants=tuple(
            Grant(role=Role(r.role), org_unit_id=r.org_unit_id, assignment_id=r.assignment_id)
            for r in granted
            if r.org_unit_id is not None and r.role is not None and r.assignment_id is not None
        ),
    )


async def load_subject(session: AsyncSession, user_id: int) -> Subject | None:
    """The caller as of this request (an inactive or removed user: None), in one statement."""
    return subject_of(user_id, await repo.subject_rows(session, user_id))


@dataclass(frozen=True)
class Me:
    """``GET /me``'s caller and its answer (``MeRead``'s JSON), written from the rows the caller was read
    from (one statement, not two), or kept with them (``subjects.py``)."""

    subject: Subject
    body: bytes


async def load_me(session: AsyncSession, user_id: int) -> Me | None:
    rows = await repo.me_rows(session, user_id)
    if rows is None:
        return None
    subject = subject_of(user_id, rows.subject_rows())
    return Me(subject, me_json(rows)) if subject is not None else None


def _user_id(ctx: AuthContext, token: str | None) -> int:
    """The bearer token's user; 401 without a token or with a bad one."""
    if not token:
        raise NotAuthenticated("Authentication required.")
    return ctx.codec.decode_access(token).user_id


async def _read(
    session: AsyncSession, user_id: int, load: Callable[[AsyncSession, int], Awaitable[T | None]]
) -> T:
    """The caller, read by ``load``; 401 for a user who is inactive or gone."""
    try:
        found = await load(session, user_id)
    except DBAPIError as exc:
        # The request's first statement found its pooled connection dead (the server restarted or closed
        # it). The pool has invalidated it, and every connection as old: read again on a fresh one. This
        # once-per-restart retry replaces a ping round trip before every checkout (``make_engine``).
        if not exc.connection_invalidated:
            raise
        await session.rollback()
        found = await load(session, user_id)
    if found is None:
        raise NotAuthenticated("Invalid or expired token.")
    return found


def _track_writes(session: AsyncSession, ctx: AuthContext, subject: Subject) -> Subject:
    if ctx.track_writes:
        write_marks.track(session, subject.user_id)  # read-your-writes: a write sets the caller's mark
    return subject


async def get_subject(
    request: Request, session: DbSession, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Subject:
    """The caller: kept by this process while nothing they were read from has changed
    (``subjects.py``), else read in one statement. The context is read from the app, not through
    :func:`get_auth_context`: every dependency costs FastAPI's solving on every request."""
    ctx: AuthContext = request.app.state.auth
    user_id = _user_id(ctx, token)
    generation = ctx.subjects.generation()  # before the read: a change committed meanwhile drops the copy
    subject = ctx.subjects.get(user_id, generation)
    if subject is None:
        subject = await _read(session, user_id, load_subject)
        ctx.subjects.put(user_id, subject, generation)
    session.info[subjects.GENERATION] = generation
    return _track_writes(session, ctx, subject)


async def get_me(
    request: Request, session: DbSession, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Me:
    """:func:`get_subject` for ``GET /me``, with its answer: both kept while nothing they were read from
    has changed, else read together in one statement."""
    ctx: AuthContext = request.app.state.auth
    user_id = _user_id(ctx, token)
    generation = ctx.subjects.generation()  # before the read, as get_subject's
    subject = ctx.subjects.get(user_id, generation)
    body = ctx.subjects.answer(user_id, generation) if subject is not None else None
    if subject is None or body is None:
        me = await _read(session, user_id, load_me)
        subject, body = me.subject, me.body
        ctx.subjects.put(user_id, subject, generation)
        ctx.subjects.put_answer(user_id, body, generation)
    session.info[subjects.GENERATION] = generation
    return Me(_track_writes(session, ctx, subject), body)


CurrentSubject = Annotated[Subject, Depends(get_subject)]
CurrentMe = Annotated[Me, Depends(get_me)]
AuthCtx = Annotated[AuthContext, Depends(get_auth_context)]


async def get_read_session(
    session: DbSession, subject: CurrentSubject, replicas: AppReplicas
) -> AsyncIterator[AsyncSession]:
    """The session a dashboard's body reads use: a read replica's, or (no replica configured, the caller
    wrote recently, no replica fit) the request's own. Identity and scope of single objects stay on
    ``DbSession``, the primary (``app/core/replicas.py``)."""
    if not replicas.enabled:
        yield session
        return
    async with replicas.read_session(session, subject.seconds_since_write) as read:
        yield read


async def get_read_sessionmaker(
    subject: CurrentSubject, replicas: AppReplicas, primary: AppSessionmaker
) -> async_sessionmaker[AsyncSession]:
    """:func:`get_read_session`'s choice for reads that outlive the request (streamed exports)."""
    return await replicas.read_sessionmaker(primary, subject.seconds_since_write)


ReadSession = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
ReadSessionmaker = Annotated[async_sessionmaker[AsyncSession], Depends(get_read_sessionmaker)]
