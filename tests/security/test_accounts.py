"""Issue 14, item 7: accounts. Usernames are unique whatever their case, passwords follow a policy (12
characters or more, not a common one, not the username), changing one's own password takes the current
one, and every security change to users, roles and service accounts leaves an audit row."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.audit import AuditEntry
from tests.api.evaluation_flow import API
from tests.builders import PASSWORD, Tree, build_country

pytestmark = pytest.mark.anyio

TOKEN = f"{API}/auth/token"


def _new_user(unit_id: int, username: str, password: str = "a-long-passphrase-1") -> dict[str, Any]:
    return {"username": username, "password": password, "full_name": "Lê Văn Tám", "org_unit_id": unit_id}


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        TOKEN, data={"grant_type": "password", "username": username, "password": password}
    )


async def test_usernames_are_unique_whatever_their_case(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit()
    h = tree.auth(await tree.user(("org_admin", unit)))
    first = await client.post(f"{API}/users", json=_new_user(unit.id, "alice"), headers=h)
    assert first.status_code == 201, first.text
    for spelling in ("Alice", "ALICE", " aLiCe "):
        r = await client.post(f"{API}/users", json=_new_user(unit.id, spelling), headers=h)
        assert r.status_code == 409, (spelling, r.text)
        assert r.json()["error"]["code"] == "conflict"
    # The name is kept as typed, and found whatever the case it is typed in at the login.
    second = await client.post(f"{API}/users", json=_new_user(unit.id, "Bao.Tran"), headers=h)
    assert second.json()["username"] == "Bao.Tran"
    assert (await _login(client, "bao.tran", "a-long-passphrase-1")).status_code == 200


@pytest.mark.parametrize(
    "password",
    [
        "short-pass1",  # 11 characters
        "password1234",
        "Password1234",
        "qwerty123456",
        "matkhau123456",
        "aaaaaaaaaaaaaaa",
        "abcabcabcabcabc",
        "1234567890123",
        "            ",
    ],
)
async def test_weak_passwords_are_refused(client: httpx.AsyncClient, tree: Tree, password: str) -> None:
    unit = await tree.unit()
    h = tree.auth(await tree.user(("org_admin", unit)))
    created = await client.post(f"{API}/users", json=_new_user(unit.id, "yeu.kem", password), headers=h)
    assert created.status_code == 422, created.text
    assert created.json()["error"]["code"] == "validation_error"
    assert password.strip() == "" or password not in created.text
    other = await tree.user(("member", unit))
    reset = await client.patch(f"{API}/users/{other.id}", json={"password": password}, headers=h)
    assert reset.status_code == 422, reset.text


async def test_the_password_is_not_the_username(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit()
    h = tree.auth(await tree.user(("org_admin", unit)))
    other = await tree.user(("member", unit), username="trung.lap.ten")
    r = await client.patch(f"{API}/users/{other.id}", json={"password": "Trung.Lap.Ten"}, headers=h)
    assert r.status_code == 422, r.text
    r = await client.post(f"{API}/users", json=_new_user(unit.id, "ten.dai.ne", "TEN.DAI.NE"), headers=h)
    assert r.status_code == 422, r.text


async def test_changing_ones_own_password_takes_the_current_one(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    unit = await tree.unit()
    me = await tree.user(("member", unit), username="tu.doi")
    h = tree.auth(me)
    path = f"{API}/users/{me.id}"
    missing = await client.patch(path, json={"password": "new-passphrase-77"}, headers=h)
    assert missing.status_code == 422, missing.text
    assert missing.json()["error"]["details"] == {"field": "current_password"}
    wrong = await client.patch(
        path, json={"password": "new-passphrase-77", "current_password": "not-my-password"}, headers=h
    )
    assert wrong.status_code == 403, wrong.text
    assert "not-my-password" not in wrong.text
    assert (await _login(client, "tu.doi", "new-passphrase-77")).status_code != 200
    right = await client.patch(
        path, json={"password": "new-passphrase-77", "current_password": PASSWORD}, headers=h
    )
    assert right.status_code == 200, right.text
    assert (await _login(client, "tu.doi", "new-passphrase-77")).status_code == 200
    # Other changes of one's own account need no password; an administrator's reset needs none either.
    assert (await client.patch(path, json={"full_name": "Tự Đổi"}, headers=h)).status_code == 200
    admin = tree.auth(await tree.user(("org_admin", unit)))
    reset = await client.patch(path, json={"password": "reset-by-admin-88"}, headers=admin)
    assert reset.status_code == 200, reset.text
    assert (await _login(client, "tu.doi", "reset-by-admin-88")).status_code == 200


async def _trail(session: AsyncSession, user_id: int) -> list[AuditEntry]:
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.entity_type == "user", AuditEntry.entity_id == user_id)
        .order_by(AuditEntry.id)
    )
    return list((await session.scalars(stmt)).all())


async def test_security_changes_are_audited(
    client: httpx.AsyncClient, tree: Tree, session: AsyncSession
) -> None:
    c = await build_country(tree)
    admin_user = await tree.user(("org_admin", c.district_a))
    h = tree.auth(admin_user)
    created = await client.post(f"{API}/users", json=_new_user(c.commune_a.id, "kiem.toan"), headers=h)
    user_id = created.json()["id"]
    granted = await client.post(
        f"{API}/users/{user_id}/roles", json={"role": "assessor", "org_unit_id": c.school_a.id}, headers=h
    )
    assignment_id = granted.json()["id"]
    assert (await client.delete(f"{API}/users/{user_id}/roles/{assignment_id}", headers=h)).status_code == 204
    path = f"{API}/users/{user_id}"
    assert (await client.patch(path, json={"password": "reset-passphrase-1"}, headers=h)).status_code == 200
    assert (await client.patch(path, json={"is_active": False}, headers=h)).status_code == 200
    assert (await client.patch(path, json={"is_active": True}, headers=h)).status_code == 200
    assert (await client.patch(path, json={"full_name": "Không Ghi"}, headers=h)).status_code == 200
    tokens = (await _login(client, "kiem.toan", "reset-passphrase-1")).json()
    own = {"Authorization": f"Bearer {tokens['access_token']}"}
    body = {"password": "own-new-passphrase", "current_password": "reset-passphrase-1"}
    assert (await client.patch(path, json=body, headers=own)).status_code == 200
    sa = await client.post(
        f"{API}/service-accounts",
        json={"name": "Script", "org_unit_id": c.district_a.id, "roles": ["integration"]},
        headers=h,
    )
    assert sa.status_code == 201, sa.text

    trail = await _trail(session, user_id)
    assert [(e.action, e.actor_user_id) for e in trail] == [
        ("created", admin_user.id),
        ("role_granted", admin_user.id),
        ("role_revoked", admin_user.id),
        ("password_reset", admin_user.id),
        ("deactivated", admin_user.id),
        ("activated", admin_user.id),
        ("password_changed", user_id),
    ]
    assert trail[0].after == {"username": "kiem.toan", "org_unit_id": c.commune_a.id, "person_id": None}
    grant = {"assignment_id": assignment_id, "role": "assessor", "org_unit_id": c.school_a.id}
    assert (trail[1].before, trail[1].after) == (None, grant)
    assert (trail[2].before, trail[2].after) == (grant, None)
    assert (trail[4].before, trail[4].after) == ({"is_active": True}, {"is_active": False})
    service_trail = await _trail(session, sa.json()["id"])
    assert [(e.action, e.actor_user_id) for e in service_trail] == [
        ("service_account_created", admin_user.id)
    ]
    assert service_trail[0].after == {
        "client_id": sa.json()["client_id"],
        "org_unit_id": c.district_a.id,
        "roles": ["integration"],
    }
    # No secret of any kind reaches the trail.
    written = repr([(e.before, e.after) for e in [*trail, *service_trail]])
    for secret in ("passphrase", "$argon2", sa.json()["client_secret"]):
        assert secret not in written
