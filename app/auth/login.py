"""The OAuth 2 token endpoint's grants: password, refresh_token (rotating, reuse revokes the family) and
client_credentials (service accounts), plus logout.

The password and client-credentials grants count the attempt (app/auth/throttle.py) and read the account
in a short transaction of their own, committed before the secret is checked: a wrong secret rolls the
request's transaction back, and the count must survive it. The slow hash is then verified with no
transaction open, and only a success writes through the request's session (the counter's reset and the
new refresh token).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import repository as repo
from app.auth.models import RefreshToken, User
from app.auth.schemas import TokenResponse
from app.auth.subjects import SubjectCache
from app.auth.throttle import LoginThrottle
from app.core.db import unit_of_work, utcnow
from app.core.errors import InvalidGrant
from app.core.security import digest, digests_equal, new_opaque_token, verify_and_update
from app.core.tokens import TokenCodec


@dataclass(frozen=True)
class AuthContext:
    codec: TokenCodec
    throttle: LoginThrottle
    refresh_lifetime: timedelta
    # Where the throttle's own transactions come from: the app's sessionmaker (each session is a
    # connection of its own; in the tests, a savepoint of the test's transaction).
    sessionmaker: async_sessionmaker[AsyncSession]
    # The callers this process keeps between requests (app/auth/subjects.py).
    subjects: SubjectCache
    # With read replicas, a request that changes rows marks its caller (read-your-writes:
    # app/auth/write_marks.py).
    track_writes: bool = False


async def _counted_lookup(ctx: AuthContext, name: str, address: str | None) -> User | None:
    """Count the attempt (429 when over the limit) and read the account, committed at once."""
    async with unit_of_work(ctx.sessionmaker) as own:
        await ctx.throttle.attempt(own, name, address)
        return await repo.get_user_by_username(own, name)


async def password_grant(
    session: AsyncSession, ctx: AuthContext, username: str, password: str, address: str | None
) -> TokenResponse:
    user = await _counted_lookup(ctx, username, address)
    usable = user is not None and user.is_active and not user.is_service
    ok, rehashed = await verify_and_update(password, user.password_hash if usable and user else None)
    if not ok or user is None:
        raise InvalidGrant("Wrong username or password.")
    if rehashed is not None:
        # Hashed with older parameters: stored again with today's, now that the password is at hand.
        await repo.set_password_hash(session, user.id, rehashed)
    await ctx.throttle.succeeded(session, username, address)
    return await _issue(session, ctx, user, family=uuid.uuid4().hex)


async def client_credentials_grant(
    session: AsyncSession, ctx: AuthContext, client_id: str, client_secret: str, address: str | None
) -> TokenResponse:
    user = await _counted_lookup(ctx, client_id, address)
    presented = digest(client_secret)
    stored = user.password_hash if user is not None and user.is_service and user.is_active else ""
    if user is None or not digests_equal(presented, stored):
        raise InvalidGrant("Wrong client id or secret.")
    await ctx.throttle.succeeded(session, client_id, address)
    access, expires_in = ctx.codec.issue_access(str(user.id))
    return TokenResponse(access_token=access, expires_in=expires_in)


async def refresh_grant(session: AsyncSession, ctx: AuthContext, refresh_token: str) -> TokenResponse:
    stored = await repo.get_refresh_token(session, digest(refresh_token))
    if stored is None:
        raise InvalidGrant("Unknown refresh token.")
    now = utcnow()
    if stored.used_at is not None or stored.revoked_at is not None:
        # A rotated token came back: someone holds a copy. End every session of this login.
        await repo.revoke_family(session, stored.family, now)
        raise InvalidGrant("Refresh token already used; please log in again.", keep_changes=True)
    if stored.expires_at <= now:
        raise InvalidGrant("Refresh token expired; please log in again.")
    user = await repo.get_user(session, stored.user_id)
    if user is None or not user.is_active:
        raise InvalidGrant("Account disabled.")
    stored.used_at = now
    return await _issue(session, ctx, user, family=stored.family)


async def revoke(session: AsyncSession, refresh_token: str) -> None:
    """Logout: revoke the token's whole family. Unknown tokens are ignored (RFC 7009)."""
    stored = await repo.get_refresh_token(session, digest(refresh_token))
    if stored is not None:
        await repo.revoke_family(session, stored.family, utcnow())


async def _issue(session: AsyncSession, ctx: AuthContext, user: User, *, family: str) -> TokenResponse:
    access, expires_in = ctx.codec.issue_access(str(user.id))
    refresh = new_opaque_token()
    session.add(
        RefreshToken(
            user_id=user.id,
            family=family,
            token_digest=digest(refresh),
            expires_at=utcnow() + ctx.refresh_lifetime,
        )
    )
    await session.flush()
    return TokenResponse(access_token=access, expires_in=expires_in, refresh_token=refresh)
