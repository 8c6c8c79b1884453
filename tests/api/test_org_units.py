"""Stories 2 and 4 of the foundation issue: building and reshaping the tree, scoped."""

from __future__ import annotations

import httpx

from tests.builders import Tree, build_country


async def test_admin_builds_a_tree_of_any_depth(client: httpx.AsyncClient, tree: Tree) -> None:
    h = tree.auth(await tree.admin())
    parent_id = None
    chain = [
        ("Việt Nam", "nation"),
        ("Tỉnh Kon Tum", "province"),
        ("Huyện Kon Rẫy", "district"),
        ("Xã Đăk Ruồng", "commune"),
        ("Trường TH Đăk Ruồng", "school"),
        ("Tổ chuyên môn 1", "unit"),
    ]
    for depth, (name, kind) in enumerate(chain):
        r = await client.post(
            "/api/v1/org-units", json={"name": name, "kind": kind, "parent_id": parent_id}, headers=h
        )
        assert r.status_code == 201, r.text
        assert r.json()["depth"] == depth
        parent_id = r.json()["id"]
    root = (await client.get("/api/v1/org-units", params={"q": "Việt Nam"}, headers=h)).json()["items"][0]
    r = await client.get(f"/api/v1/org-units/{root['id']}/descendants", headers=h)
    assert r.json()["total"] == 5


async def test_province_holds_communes_directly_after_2025(client: httpx.AsyncClient, tree: Tree) -> None:
    nation = await tree.unit("VN", "nation")
    province = await tree.unit("Tỉnh", "province", nation)
    h = tree.auth(await tree.admin())
    r = await client.post(
        "/api/v1/org-units",
        json={"name": "Xã Mới", "kind": "commune", "parent_id": province.id, "code": "27001"},
        headers=h,
    )
    assert r.status_code == 201
    r = await client.get("/api/v1/org-units", params={"code": "27001"}, headers=h)
    assert [u["name"] for u in r.json()["items"]] == ["Xã Mới"]


async def test_move_subtree_and_refuse_move_into_itself(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.admin())
    r = await client.post(
        f"/api/v1/org-units/{c.commune_a.id}/move", json={"parent_id": c.province_a.id}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["depth"] == 2
    dept = (await client.get(f"/api/v1/org-units/{c.dept_a.id}", headers=h)).json()
    assert dept["depth"] == 4
    ids = {
        u["id"]
        for u in (await client.get(f"/api/v1/org-units/{c.district_a.id}/descendants", headers=h)).json()[
            "items"
        ]
    }
    assert c.school_a.id not in ids
    r = await client.post(
        f"/api/v1/org-units/{c.province_a.id}/move", json={"parent_id": c.school_a.id}, headers=h
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"


async def test_sibling_subtree_is_404_on_every_unit_route(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.province_a)))
    target = c.school_b.id
    calls = [
        client.get(f"/api/v1/org-units/{target}", headers=h),
        client.patch(f"/api/v1/org-units/{target}", json={"name": "X"}, headers=h),
        client.delete(f"/api/v1/org-units/{target}", headers=h),
        client.post(f"/api/v1/org-units/{target}/move", json={"parent_id": c.commune_a.id}, headers=h),
        client.get(f"/api/v1/org-units/{target}/descendants", headers=h),
        client.post(f"/api/v1/org-units/{c.commune_a.id}/move", json={"parent_id": target}, headers=h),
        client.get("/api/v1/org-units", params={"parent_id": target}, headers=h),
        client.post("/api/v1/org-units", json={"name": "X", "kind": "unit", "parent_id": target}, headers=h),
    ]
    for call in calls:
        r = await call
        assert r.status_code == 404, (r.request.method, r.request.url, r.text)
    unit = (await client.get(f"/api/v1/org-units/{target}", headers=tree.auth(await tree.admin()))).json()
    assert unit["name"] == "Trường B"


async def test_viewer_inside_scope_gets_403_on_writes(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("viewer", c.province_a)))
    assert (await client.get(f"/api/v1/org-units/{c.school_a.id}", headers=h)).status_code == 200
    r = await client.patch(f"/api/v1/org-units/{c.school_a.id}", json={"name": "X"}, headers=h)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"


async def test_stale_version_is_409_and_changes_nothing(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.admin())
    current = (await client.get(f"/api/v1/org-units/{c.school_a.id}", headers=h)).json()
    ok = await client.patch(
        f"/api/v1/org-units/{c.school_a.id}", json={"name": "Mới", "version": current["version"]}, headers=h
    )
    assert ok.status_code == 200
    assert ok.json()["version"] == current["version"] + 1
    stale = await client.patch(
        f"/api/v1/org-units/{c.school_a.id}", json={"name": "Cũ", "version": current["version"]}, headers=h
    )
    assert stale.status_code == 409
    stale_header = await client.patch(
        f"/api/v1/org-units/{c.school_a.id}", json={"name": "Cũ"}, headers={**h, "If-Match": '"1"'}
    )
    assert stale_header.status_code == 409
    assert (await client.get(f"/api/v1/org-units/{c.school_a.id}", headers=h)).json()["name"] == "Mới"


async def test_delete_only_empty_units(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.admin())
    assert (await client.delete(f"/api/v1/org-units/{c.school_a.id}", headers=h)).status_code == 409
    await tree.person(c.commune_a2)
    assert (await client.delete(f"/api/v1/org-units/{c.commune_a2.id}", headers=h)).status_code == 409
    assert (await client.delete(f"/api/v1/org-units/{c.dept_a.id}", headers=h)).status_code == 204
    assert (await client.get(f"/api/v1/org-units/{c.dept_a.id}", headers=h)).status_code == 404


async def test_bad_input_is_a_clear_422(client: httpx.AsyncClient, tree: Tree) -> None:
    nation = await tree.unit("VN", "nation")
    h = tree.auth(await tree.admin())
    bodies = [
        {"name": "X", "kind": "unit", "parent_id": nation.id, "colour": "red"},
        {"name": "", "kind": "unit", "parent_id": nation.id},
        {"name": "x" * 10_000, "kind": "unit", "parent_id": nation.id},
        {"name": "X\x00Y", "kind": "unit", "parent_id": nation.id},
        {"name": "X", "kind": "planet", "parent_id": nation.id},
        {"name": "X", "kind": "unit", "parent_id": "abc"},
        {"name": "X", "kind": "unit", "parent_id": 99999999999},
    ]
    for body in bodies:
        r = await client.post("/api/v1/org-units", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    for params in ({"limit": 201}, {"offset": -1}, {"limit": 0}):
        r = await client.get("/api/v1/org-units", params=params, headers=h)
        assert r.status_code == 422
    r = await client.post(
        "/api/v1/org-units", json={"name": "X", "kind": "unit", "parent_id": 987654}, headers=h
    )
    assert r.status_code == 404


async def test_duplicate_code_is_409(client: httpx.AsyncClient, tree: Tree) -> None:
    nation = await tree.unit("VN", "nation", code="DUP-1")
    h = tree.auth(await tree.admin())
    r = await client.post(
        "/api/v1/org-units",
        json={"name": "X", "kind": "province", "parent_id": nation.id, "code": "DUP-1"},
        headers=h,
    )
    assert r.status_code == 409


async def test_only_admin_creates_roots(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.nation)))
    r = await client.post("/api/v1/org-units", json={"name": "Root", "kind": "nation"}, headers=h)
    assert r.status_code == 403


async def test_search_takes_percent_and_underscore_as_typed(client: httpx.AsyncClient, tree: Tree) -> None:
    """``q`` is matched as typed (issue #16): ``%`` and ``_`` are characters, not LIKE wildcards."""
    c = await build_country(tree)
    for name in ("Thôn 50% A", "Thôn 500", "Tổ_1", "Tổ 1"):
        await tree.unit(name, "village", c.commune_a)
    h = tree.auth(await tree.user(("viewer", c.commune_a)))

    async def names(q: str) -> list[str]:
        r = await client.get("/api/v1/org-units", params={"q": q, "limit": 100}, headers=h)
        assert r.status_code == 200, r.text
        return sorted(i["name"] for i in r.json()["items"])

    assert await names("50%") == ["Thôn 50% A"]
    assert await names("ổ_") == ["Tổ_1"]
    assert await names("thôn 50") == ["Thôn 50% A", "Thôn 500"]
