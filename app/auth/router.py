"""The token endpoint, logout and ``/me``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response, status

from app.auth import login
from app.auth.deps import AuthCtx, CurrentMe
from app.auth.schemas import MeRead, RevokeRequest, TokenResponse
from app.core.db import DbSession
from app.core.errors import AppError, ValidationFailed
from app.core.routing import ScopedRouter
from app.core.schemas import QueryText

router = ScopedRouter(tags=["auth"])

FormStr = Annotated[str | None, Form(max_length=512)]  # secrets: only ever hashed, never queried raw
FormName = Annotated[QueryText | None, Form(max_length=512)]  # looked up in the database


class UnsupportedGrantType(AppError):
    status_code, code, default_message = 400, "unsupported_grant_type", "Unsupported grant_type."


def _require(**fields: str | None) -> dict[str, str]:
    missing = [name for name, value in fields.items() if not value]
    if missing:
        raise ValidationFailed(f"Missing form field(s): {', '.join(missing)}.", details={"missing": missing})
    return {k: v for k, v in fields.items() if v}


@router.post("/auth/token", response_model=TokenResponse, response_model_exclude_none=True)
async def token(
    request: Request,
    session: DbSession,
    ctx: AuthCtx,
    grant_type: Annotated[str, Form(max_length=64)],
    username: FormName = None,
    password: FormStr = None,
    refresh_token: FormStr = None,
    client_id: FormName = None,
    client_secret: FormStr = None,
    scope: FormStr = None,
) -> TokenResponse:
    """OAuth 2 token endpoint (form-encoded): ``password``, ``refresh_token`` or ``client_credentials``."""
    address = request.client.host if request.client else None
    if grant_type == "password":
        f = _require(username=username, password=password)
        return await login.password_grant(session, ctx, f["username"], f["password"], address)
    if grant_type == "refresh_token":
        f = _require(refresh_token=refresh_token)
        return await login.refresh_grant(session, ctx, f["refresh_token"])
    if grant_type == "client_credentials":
        f = _require(client_id=client_id, client_secret=client_secret)
        return await login.client_credentials_grant(session, ctx, f["client_id"], f["client_secret"], address)
    raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported.")


@router.post("/auth/revoke", status_code=status.HTTP_204_NO_CONTENT)
async def revoke(body: RevokeRequest, session: DbSession) -> Response:
    """Logout: the refresh token and every token rotated from the same login stop working."""
    await login.revoke(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=MeRead)
async def me(caller: CurrentMe) -> Response:
    return Response(caller.body, media_type="application/json")  # MeRead's JSON (auth/deps.get_me)
