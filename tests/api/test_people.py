"""Story 6 of the foundation issue: people are created in a unit with their group; a citizen id is stored
but never returned whole; person-level data is only for the roles that work with it, and the person."""

from __future__ import annotations

import httpx

from tests.builders import Tree, build_country

CITIZEN_ID = "001085001234"
MASKED = "********1234"


def person_body(unit_id: int, **extra: object) -> dict[str, object]:
    return {"full_name": "Nguyễn Thị Hoa", "org_unit_id": unit_id, "group": "staff", **extra}


async def test_citizen_id_is_stored_but_only_ever_returned_masked(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    created = await client.post(
        "/api/v1/people",
        json=person_body(c.school_a.id, citizen_id=CITIZEN_ID, birth_year=1988, gender="female"),
        headers=h,
    )
    assert created.status_code == 201, created.text
    person = created.json()
    assert (person["org_unit_id"], person["group"], person["birth_year"]) == (c.school_a.id, "staff", 1988)
    pid = person["id"]

    responses = [
        created,
        await client.get(f"/api/v1/people/{pid}", headers=h),
        await client.get("/api/v1/people", headers=h),
        await client.get("/api/v1/people", params={"q": "Hoa", "org_unit_id": c.commune_a.id}, headers=h),
        await client.patch(f"/api/v1/people/{pid}", json={"full_name": "Nguyễn Thị Hoà"}, headers=h),
    ]
    for r in responses:
        assert r.status_code == 200 or r.status_code == 201, r.text
        assert CITIZEN_ID not in r.text
        assert "001085" not in r.text
        body = r.json()
        for item in body.get("items", [body]):
            assert item["citizen_id"] == MASKED

    # The number is stored whole: another record the caller can edit cannot take it (a caller who cannot
    # see the holder gets a claim instead: tests/security/test_citizen_id_oracle.py).
    dup = await client.post(
        "/api/v1/people", json=person_body(c.school_a.id, citizen_id=CITIZEN_ID), headers=h
    )
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "conflict"
    assert CITIZEN_ID not in dup.text

    # Changing it returns the new one masked; another person cannot be given a taken one.
    r = await client.patch(f"/api/v1/people/{pid}", json={"citizen_id": "036190009876"}, headers=h)
    assert r.json()["citizen_id"] == "********9876"
    assert "036190009876" not in r.text
    other = await tree.person(c.school_a, citizen_id="123456789")
    r = await client.get(f"/api/v1/people/{other.id}", headers=h)
    assert r.json()["citizen_id"] == "*****6789"
    r = await client.patch(f"/api/v1/people/{other.id}", json={"citizen_id": "036190009876"}, headers=h)
    assert r.status_code == 409
    assert (await client.get(f"/api/v1/people/{other.id}", headers=h)).json()["citizen_id"] == "*****6789"


async def test_every_group_is_accepted(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.commune_a)))
    for group in ("resident", "worker", "staff", "student"):
        r = await client.post("/api/v1/people", json=person_body(c.school_a.id, group=group), headers=h)
        assert r.status_code == 201, r.text
        assert r.json()["group"] == group
    r = await client.post("/api/v1/people", json=person_body(c.school_a.id, group="retiree"), headers=h)
    assert r.status_code == 422


async def test_viewer_sees_no_person_level_data(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    person = await tree.person(c.school_a)
    h = tree.auth(await tree.user(("viewer", c.province_a)))
    for r in (
        await client.get("/api/v1/people", headers=h),
        await client.get("/api/v1/people", params={"org_unit_id": c.school_a.id}, headers=h),
        await client.get(f"/api/v1/people/{person.id}", headers=h),
        await client.patch(f"/api/v1/people/{person.id}", json={"full_name": "X"}, headers=h),
        await client.post("/api/v1/people", json=person_body(c.school_a.id), headers=h),
    ):
        assert r.status_code == 403, (r.request.method, r.request.url, r.text)
        assert r.json()["error"]["code"] == "forbidden"
        assert person.full_name not in r.text
    # ... while units stay readable for them.
    assert (await client.get(f"/api/v1/org-units/{c.school_a.id}", headers=h)).status_code == 200


async def test_member_reaches_only_their_own_record(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    user = await tree.user(("member", c.school_a))
    mine = await tree.person(c.school_a, user=user)
    colleague = await tree.person(c.school_a)
    elsewhere = await tree.person(c.school_b)
    h = tree.auth(user)

    r = await client.get(f"/api/v1/people/{mine.id}", headers=h)
    assert r.status_code == 200
    assert r.json()["user_id"] == user.id
    assert (await client.get(f"/api/v1/people/{colleague.id}", headers=h)).status_code == 403
    assert (await client.get(f"/api/v1/people/{elsewhere.id}", headers=h)).status_code == 404
    listed = await client.get("/api/v1/people", headers=h)
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["items"]] == [mine.id]
    # Reading is not editing: a member cannot rewrite their own record.
    assert (
        await client.patch(f"/api/v1/people/{mine.id}", json={"group": "student"}, headers=h)
    ).status_code == 403
    me = (await client.get("/api/v1/me", headers=h)).json()
    assert me["person"]["id"] == mine.id


async def test_list_filters_by_group_text_and_subtree(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.province_a)))
    made = {}
    for name, unit, group in [
        ("Tran Van Binh", c.school_a, "staff"),
        ("Le Thi Binh", c.dept_a, "student"),
        ("Pham Van An", c.dept_a, "staff"),
        ("Hoang Van Cuong", c.commune_a2, "resident"),
        ("Binh B", c.school_b, "staff"),  # province B: never listed for this caller
    ]:
        admin = tree.auth(await tree.admin())
        r = await client.post(
            "/api/v1/people", json={"full_name": name, "org_unit_id": unit.id, "group": group}, headers=admin
        )
        made[name] = r.json()["id"]

    async def names(**params: object) -> list[str]:
        r = await client.get("/api/v1/people", params=params, headers=h)
        assert r.status_code == 200, r.text
        return sorted(p["full_name"] for p in r.json()["items"])

    assert await names() == ["Hoang Van Cuong", "Le Thi Binh", "Pham Van An", "Tran Van Binh"]
    assert await names(group="staff") == ["Pham Van An", "Tran Van Binh"]
    assert await names(q="binh") == ["Le Thi Binh", "Tran Van Binh"]
    assert await names(org_unit_id=c.school_a.id) == ["Le Thi Binh", "Pham Van An", "Tran Van Binh"]
    assert await names(org_unit_id=c.school_a.id, group="staff", q="van") == ["Pham Van An", "Tran Van Binh"]
    assert await names(org_unit_id=c.commune_a2.id) == ["Hoang Van Cuong"]
    r = await client.get("/api/v1/people", params={"org_unit_id": c.school_b.id}, headers=h)
    assert r.status_code == 404


async def test_pagination_total_limit_offset(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.school_a)))
    ids = {(await tree.person(c.dept_a)).id for _ in range(5)}
    await tree.person(c.school_b)

    seen: list[int] = []
    for offset in (0, 2, 4):
        r = await client.get("/api/v1/people", params={"limit": 2, "offset": offset}, headers=h)
        body = r.json()
        assert (body["total"], body["limit"], body["offset"]) == (5, 2, offset)
        seen += [p["id"] for p in body["items"]]
    assert len(seen) == 5
    assert set(seen) == ids
    r = await client.get("/api/v1/people", params={"offset": 10}, headers=h)
    assert (r.json()["items"], r.json()["total"], r.json()["limit"]) == ([], 5, 50)


async def test_stale_version_is_409_and_changes_nothing(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.school_a)))
    person = await tree.person(c.school_a)
    r = await client.patch(f"/api/v1/people/{person.id}", json={"birth_year": 1990, "version": 1}, headers=h)
    assert r.status_code == 200
    assert r.json()["version"] == 2
    r = await client.patch(f"/api/v1/people/{person.id}", json={"birth_year": 1970, "version": 1}, headers=h)
    assert r.status_code == 409
    r = await client.patch(
        f"/api/v1/people/{person.id}", json={"birth_year": 1970}, headers={**h, "If-Match": "1"}
    )
    assert r.status_code == 409
    assert (await client.get(f"/api/v1/people/{person.id}", headers=h)).json()["birth_year"] == 1990
