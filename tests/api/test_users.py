"""Story 3 of the foundation issue: an org_admin of a district creates users and grants roles inside the
district only; users manage their own account; everything stays scoped."""

from __future__ import annotations

import httpx

from tests.builders import PASSWORD, Tree, build_country

UNIT_ROLES = ["org_admin", "assessor", "approver", "viewer", "member", "integration"]


def new_user(unit_id: int, username: str, password: str = "a-long-password-1") -> dict[str, object]:
    return {"username": username, "password": password, "full_name": "Phạm Văn Nam", "org_unit_id": unit_id}


def assert_no_secrets(r: httpx.Response, *passwords: str) -> None:
    text = r.text.lower()
    assert "password" not in text
    assert "$argon2" not in text
    assert "hash" not in text
    for password in passwords:
        assert password.lower() not in text


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )


async def test_district_admin_creates_users_and_grants_every_role_inside(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    r = await client.post("/api/v1/users", json=new_user(c.commune_a.id, "giao.vien"), headers=h)
    assert r.status_code == 201, r.text
    assert_no_secrets(r, "a-long-password-1")
    user = r.json()
    assert (user["username"], user["org_unit_id"], user["roles"]) == ("giao.vien", c.commune_a.id, [])

    granted = []
    for role, unit in zip(
        UNIT_ROLES, [c.district_a, c.commune_a, c.school_a, c.dept_a, c.commune_a2, c.school_a], strict=True
    ):
        g = await client.post(
            f"/api/v1/users/{user['id']}/roles", json={"role": role, "org_unit_id": unit.id}, headers=h
        )
        assert g.status_code == 201, (role, g.text)
        assert set(g.json()) == {"id", "role", "org_unit_id"}
        assert (g.json()["role"], g.json()["org_unit_id"]) == (role, unit.id)
        granted.append((role, unit.id))

    read = await client.get(f"/api/v1/users/{user['id']}", headers=h)
    assert [(g["role"], g["org_unit_id"]) for g in read.json()["roles"]] == granted
    assert_no_secrets(read)
    # The new user logs in with the password they were given and sees their roles.
    tokens = await login(client, "giao.vien", "a-long-password-1")
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
    assert len(me.json()["roles"]) == len(UNIT_ROLES)


async def test_district_admin_cannot_grant_above_or_beside_the_district(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    sibling_district = await tree.unit("Huyện A2", "district", c.province_a)
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    target = await tree.user(("member", c.school_a))
    before = await tree.snapshot()
    for unit in (c.province_a, c.nation, sibling_district, c.commune_b):
        r = await client.post(
            f"/api/v1/users/{target.id}/roles", json={"role": "viewer", "org_unit_id": unit.id}, headers=h
        )
        assert r.status_code == 404, (unit.name, r.text)
        assert r.json()["error"]["code"] == "not_found"
        r = await client.post("/api/v1/users", json=new_user(unit.id, f"u{unit.id}x"), headers=h)
        assert r.status_code == 404, (unit.name, r.text)
    for body in ({"role": "admin"}, {"role": "admin", "org_unit_id": c.district_a.id}):
        r = await client.post(f"/api/v1/users/{target.id}/roles", json=body, headers=h)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"
    assert await tree.snapshot() == before


async def test_only_an_admin_grants_admin_and_without_a_unit(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.admin())
    target = await tree.user(("viewer", c.school_a))
    r = await client.post(
        f"/api/v1/users/{target.id}/roles", json={"role": "admin", "org_unit_id": c.school_a.id}, headers=h
    )
    assert r.status_code == 422
    r = await client.post(f"/api/v1/users/{target.id}/roles", json={"role": "admin"}, headers=h)
    assert r.status_code == 201, r.text
    assert (r.json()["role"], r.json()["org_unit_id"]) == ("admin", None)
    # The new admin sees what lay outside their viewer subtree before.
    as_target = tree.auth(target)
    assert (await client.get(f"/api/v1/org-units/{c.school_b.id}", headers=as_target)).status_code == 200
    # A role held at no unit other than admin is refused.
    r = await client.post(f"/api/v1/users/{target.id}/roles", json={"role": "viewer"}, headers=h)
    assert r.status_code == 422


async def test_duplicate_username_is_409(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    await tree.user(("member", c.school_b), username="trung.ten")
    r = await client.post("/api/v1/users", json=new_user(c.school_a.id, "trung.ten"), headers=h)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    assert_no_secrets(r, "a-long-password-1")
    # A duplicate role grant is a conflict too, not a second row.
    target = await tree.user(("viewer", c.school_a))
    r = await client.post(
        f"/api/v1/users/{target.id}/roles", json={"role": "viewer", "org_unit_id": c.school_a.id}, headers=h
    )
    assert r.status_code == 409


async def test_revoking_a_role_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    target = await tree.user(unit=c.school_a)
    target_h = tree.auth(target)
    grant = await client.post(
        f"/api/v1/users/{target.id}/roles",
        json={"role": "org_admin", "org_unit_id": c.school_a.id},
        headers=h,
    )
    assert (
        await client.get("/api/v1/people", params={"org_unit_id": c.school_a.id}, headers=target_h)
    ).status_code == 200

    r = await client.delete(f"/api/v1/users/{target.id}/roles/{grant.json()['id']}", headers=h)
    assert r.status_code == 204
    # The same access token, no longer any role: the unit is outside every subtree it sees.
    r = await client.get("/api/v1/people", params={"org_unit_id": c.school_a.id}, headers=target_h)
    assert r.status_code == 404
    assert (
        await client.delete(f"/api/v1/users/{target.id}/roles/{grant.json()['id']}", headers=h)
    ).status_code == 404


async def test_users_manage_their_own_account_but_not_its_status(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    me = await tree.user(("member", c.school_a), username="tu.quan")
    h = tree.auth(me)
    read = await client.get(f"/api/v1/users/{me.id}", headers=h)
    assert read.status_code == 200
    version = read.json()["version"]

    r = await client.patch(
        f"/api/v1/users/{me.id}", json={"full_name": "Tự Quản", "version": version}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["full_name"] == "Tự Quản"
    assert r.json()["version"] == version + 1

    r = await client.patch(f"/api/v1/users/{me.id}", json={"is_active": False}, headers=h)
    assert r.status_code == 403
    r = await client.patch(f"/api/v1/users/{me.id}", json={"full_name": "Cũ", "version": version}, headers=h)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    after = (await client.get(f"/api/v1/users/{me.id}", headers=h)).json()
    assert (after["full_name"], after["is_active"]) == ("Tự Quản", True)


async def test_changing_the_password_changes_the_login(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    me = await tree.user(("member", c.school_a), username="doi.mat.khau")
    old = (await login(client, "doi.mat.khau", PASSWORD)).json()
    r = await client.patch(
        f"/api/v1/users/{me.id}",
        json={"password": "brand-new-secret-9", "current_password": PASSWORD},
        headers=tree.auth(me),
    )
    assert r.status_code == 200, r.text
    assert_no_secrets(r, "brand-new-secret-9")
    assert (await login(client, "doi.mat.khau", "brand-new-secret-9")).status_code == 200
    assert (await login(client, "doi.mat.khau", PASSWORD)).json()["error"]["code"] == "invalid_grant"
    # Sessions opened with the old password end with it.
    r = await client.post(
        "/api/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]}
    )
    assert r.json()["error"]["code"] == "invalid_grant"


async def test_user_lists_are_scoped(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    admin_a = await tree.user(("org_admin", c.province_a), username="admin.a")
    in_a = [await tree.user(("member", u), username=f"a.{u.id}") for u in (c.school_a, c.commune_a2)]
    in_b = [await tree.user(("member", u), username=f"b.{u.id}") for u in (c.commune_b, c.school_b)]
    await tree.admin()
    h = tree.auth(admin_a)

    r = await client.get("/api/v1/users", params={"limit": 200}, headers=h)
    assert r.status_code == 200
    names = {u["username"] for u in r.json()["items"]}
    assert names == {"admin.a", *(u.username for u in in_a)}
    assert r.json()["total"] == 3
    r = await client.get("/api/v1/users", params={"org_unit_id": c.commune_a.id}, headers=h)
    assert [u["username"] for u in r.json()["items"]] == [in_a[0].username]
    r = await client.get("/api/v1/users", params={"org_unit_id": c.province_b.id}, headers=h)
    assert r.status_code == 404
    for user in in_b:
        assert (await client.get(f"/api/v1/users/{user.id}", headers=h)).status_code == 404
    # Inside the scope without a user-managing role: 403, not a list.
    viewer = tree.auth(await tree.user(("viewer", c.province_a)))
    assert (await client.get("/api/v1/users", headers=viewer)).status_code == 403


async def test_admin_of_a_district_cannot_take_over_a_user_with_roles_above_it(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    # Lives in the district, but holds a province role (and, worse, may be an admin).
    official = await tree.user(("org_admin", c.province_a), unit=c.commune_a, username="province.official")
    chief = await tree.user(("admin", None), unit=c.commune_a, username="chief")
    for user in (official, chief):
        for body in ({"password": "hijacked-password"}, {"is_active": False}, {"full_name": "X"}):
            r = await client.patch(f"/api/v1/users/{user.id}", json=body, headers=h)
            assert r.status_code == 403, (user.username, body, r.text)
        assert (await login(client, user.username, PASSWORD)).status_code == 200
        assert (await login(client, user.username, "hijacked-password")).status_code != 200
