"""Story 5 of the foundation issue: OAuth 2 login, rotating refresh tokens, logout, lockout, service
accounts, and what a bad bearer token gets."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from jose import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.tokens import ALGORITHM
from tests.builders import PASSWORD, Tree, build_country

TOKEN = "/api/v1/auth/token"


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(
        TOKEN, data={"grant_type": "password", "username": username, "password": password}
    )


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": token})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_invalid_grant(r: httpx.Response) -> None:
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"]["code"] == "invalid_grant"


def assert_401(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "not_authenticated"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def fake_clock(app: FastAPI) -> FakeClock:
    clock = FakeClock()
    app.state.auth.throttle.clock = clock
    return clock


async def test_password_grant_returns_the_token_response(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    user = await tree.user(("viewer", c.province_a), username="lan.nguyen")
    r = await login(client, "lan.nguyen")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 15 * 60
    assert body["refresh_token"] and body["refresh_token"] != body["access_token"]
    header = jwt.get_unverified_header(body["access_token"])
    claims = jwt.get_unverified_claims(body["access_token"])
    assert header["alg"] == ALGORITHM
    assert {"sub", "exp", "iat", "iss", "aud", "jti", "typ"} <= set(claims)
    assert claims["exp"] - claims["iat"] == body["expires_in"]

    me = await client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["user"]["id"] == user.id
    assert me.json()["user"]["username"] == "lan.nguyen"
    assert [(g["role"], g["org_unit_id"]) for g in me.json()["roles"]] == [("viewer", c.province_a.id)]
    assert "password" not in me.text


async def test_wrong_password_and_unknown_user_answer_alike(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit()
    await tree.user(("member", unit), username="known.user")
    wrong = await login(client, "known.user", "not-the-password")
    unknown = await login(client, "nobody.here", "not-the-password")
    assert_invalid_grant(wrong)
    assert_invalid_grant(unknown)
    assert (wrong.status_code, wrong.json()) == (unknown.status_code, unknown.json())
    assert "access_token" not in wrong.text


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit()
    await tree.user(("member", unit), username="rotating")
    first = (await login(client, "rotating")).json()

    second = await refresh(client, first["refresh_token"])
    assert second.status_code == 200, second.text
    second_body = second.json()
    assert second_body["refresh_token"] != first["refresh_token"]
    assert (await client.get("/api/v1/me", headers=bearer(second_body["access_token"]))).status_code == 200
    third = (await refresh(client, second_body["refresh_token"])).json()

    # A rotated token comes back (someone kept a copy): refused, and the whole login ends.
    assert_invalid_grant(await refresh(client, first["refresh_token"]))
    assert_invalid_grant(await refresh(client, third["refresh_token"]))

    # Another login of the same user is a different family and keeps working.
    other = (await login(client, "rotating")).json()
    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_refresh_token_is_not_an_access_token(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit()
    await tree.user(("member", unit), username="mixup")
    body = (await login(client, "mixup")).json()
    assert_401(await client.get("/api/v1/me", headers=bearer(body["refresh_token"])))
    assert_invalid_grant(await refresh(client, body["access_token"]))


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit()
    await tree.user(("member", unit), username="leaving")
    first = (await login(client, "leaving")).json()
    rotated = (await refresh(client, first["refresh_token"])).json()
    r = await client.post("/api/v1/auth/revoke", json={"refresh_token": rotated["refresh_token"]})
    assert r.status_code == 204
    assert_invalid_grant(await refresh(client, rotated["refresh_token"]))
    # Unknown tokens are accepted silently (RFC 7009), so logout never reveals what exists.
    assert (await client.post("/api/v1/auth/revoke", json={"refresh_token": "nope"})).status_code == 204


async def test_five_bad_passwords_lock_the_username(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI
) -> None:
    clock = fake_clock(app)
    unit = await tree.unit()
    await tree.user(("member", unit), username="target")
    await tree.user(("member", unit), username="bystander")
    for _ in range(5):
        assert_invalid_grant(await login(client, "target", "guess-guess"))

    locked = await login(client, "target", "guess-guess")
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "rate_limited"
    assert 0 < int(locked.headers["retry-after"]) <= app.state.settings.login_lockout_seconds

    # Even the right password is refused while the lock lasts; other users are not affected.
    right = await login(client, "target")
    assert right.status_code == 429
    assert "access_token" not in right.text
    assert (await login(client, "bystander")).status_code == 200

    clock.now += app.state.settings.login_lockout_seconds + 1
    assert (await login(client, "target")).status_code == 200


async def test_a_success_resets_the_failure_count(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI
) -> None:
    fake_clock(app)
    unit = await tree.unit()
    await tree.user(("member", unit), username="forgetful")
    for _ in range(4):
        assert_invalid_grant(await login(client, "forgetful", "guess-guess"))
    assert (await login(client, "forgetful")).status_code == 200
    for _ in range(4):
        assert_invalid_grant(await login(client, "forgetful", "guess-guess"))
    assert (await login(client, "forgetful")).status_code == 200


async def test_service_account_uses_client_credentials(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    created = await client.post(
        "/api/v1/service-accounts",
        json={"name": "Phòng GD&ĐT script", "org_unit_id": c.district_a.id, "roles": ["integration"]},
        headers=h,
    )
    assert created.status_code == 201, created.text
    sa = created.json()
    assert sa["client_id"] and len(sa["client_secret"]) >= 32
    assert [(g["role"], g["org_unit_id"]) for g in sa["roles"]] == [("integration", c.district_a.id)]

    listed = await client.get("/api/v1/service-accounts", headers=h)
    assert listed.status_code == 200
    assert [s["client_id"] for s in listed.json()["items"]] == [sa["client_id"]]
    assert sa["client_secret"] not in listed.text
    assert "client_secret" not in listed.text

    r = await client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": sa["client_id"],
            "client_secret": sa["client_secret"],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}  # no refresh token
    me = await client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.json()["user"]["is_service"] is True
    assert sa["client_secret"] not in me.text

    wrong = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials", "client_id": sa["client_id"], "client_secret": "x" * 43},
    )
    assert_invalid_grant(wrong)
    # The secret is not a password: a service account cannot use the password grant.
    assert_invalid_grant(await login(client, sa["client_id"], sa["client_secret"]))


async def test_unsupported_grant_type(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN, data={"grant_type": "authorization_code", "code": "abc"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "unsupported_grant_type"
    missing = await client.post(TOKEN, data={"grant_type": "password", "username": "x"})
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "validation_error"


async def test_deactivated_user_loses_access_and_refresh(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    admin_h = tree.auth(await tree.user(("org_admin", c.district_a)))
    user = await tree.user(("assessor", c.school_a), username="moving.on")
    tokens = (await login(client, "moving.on")).json()
    assert (await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))).status_code == 200

    r = await client.patch(f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin_h)
    assert r.status_code == 200, r.text
    assert r.json()["is_active"] is False

    assert_401(await client.get("/api/v1/me", headers=bearer(tokens["access_token"])))
    assert_invalid_grant(await refresh(client, tokens["refresh_token"]))
    assert_invalid_grant(await login(client, "moving.on"))


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_bad_bearer_tokens_are_401_with_a_challenge(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit()
    user = await tree.user(("org_admin", unit))
    good = tree.auth(user)["Authorization"].removeprefix("Bearer ")
    expired, _ = tree.codec.issue_access(str(user.id), now=datetime.now(UTC) - timedelta(hours=1))
    claims = jwt.get_unverified_claims(good)
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    other_key = jwt.encode(claims, "another-key-another-key-another-key", algorithm=ALGORITHM)
    header, _, signature = good.split(".")
    tampered = f"{header}.{_b64({**claims, 'sub': '1'})}.{signature}"
    for token in (expired, "garbage", alg_none, other_key, tampered, ""):
        r = await client.get(f"/api/v1/org-units/{unit.id}", headers=bearer(token))
        assert_401(r)
    assert (await client.get(f"/api/v1/org-units/{unit.id}", headers=bearer(good))).status_code == 200
    assert_401(await client.get(f"/api/v1/org-units/{unit.id}", headers={"Authorization": f"Basic {good}"}))


async def test_a_hash_made_with_older_parameters_is_upgraded_at_login(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    """pwdlib's verify_and_update (issue #16): a password hashed with weaker Argon2 parameters still logs
    in, and the stored hash is replaced by one with today's."""
    c = await build_country(tree)
    user = await tree.user(("viewer", c.province_a), username="old.hash")
    weak = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8 * 1024, parallelism=1),)).hash(PASSWORD)
    user.password_hash = weak
    await tree.session.commit()
    assert (await login(client, "old.hash")).status_code == 200
    await tree.session.refresh(user)
    assert user.password_hash != weak
    current = Argon2Hasher()
    assert current.verify(PASSWORD, user.password_hash) and not current.check_needs_rehash(user.password_hash)
    # Once upgraded, it stays: the next login changes nothing.
    assert (await login(client, "old.hash")).status_code == 200
    upgraded = user.password_hash
    await tree.session.refresh(user)
    assert user.password_hash == upgraded
