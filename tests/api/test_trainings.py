"""Story 4 of the plans issue: training sessions on the criteria (tập huấn / quán triệt) and trained_pct."""

from __future__ import annotations

import httpx

from tests.builders import Tree, build_country

API = "/api/v1"


async def _trained(client: httpx.AsyncClient, h: dict[str, str], unit_id: int, year: int) -> dict:
    r = await client.get(
        f"{API}/aggregates/progress", params={"org_unit_id": unit_id, "year": year}, headers=h
    )
    assert r.status_code == 200, r.text
    return next(m for m in r.json()["metrics"] if m["metric"] == "trained_pct")


async def test_sessions_and_attendees_give_trained_pct(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    admin_user = await tree.user(("org_admin", c.district_a))
    h = tree.auth(admin_user)
    viewer = tree.auth(await tree.user(("viewer", c.district_a)))
    school = [await tree.person(c.school_a, group) for group in ("staff",) * 4 + ("student",) * 2]
    commune = [await tree.person(c.commune_a2, "resident") for _ in range(4)]
    worker = await tree.person(c.commune_a2, "worker")  # trained only in 2024
    # A year has data once somebody in the subtree is evaluated in it.
    await tree.evaluation(school[0], 2025, "submitted")
    await tree.evaluation(commune[0], 2024, "submitted")

    r = await client.post(
        f"{API}/training-sessions",
        json={
            "org_unit_id": c.district_a.id,
            "title": "Hội nghị quán triệt Kế hoạch Xây dựng mô hình Công dân học tập",
            "held_on": "2025-03-14",
            "attendee_ids": [p.id for p in school[:3]] + [commune[0].id],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["year"], first["attendee_count"], first["version"]) == (2025, 4, 1)
    assert first["created_by"] == admin_user.id
    # A second session the same year: people trained twice count once.
    r = await client.post(
        f"{API}/training-sessions",
        json={
            "org_unit_id": c.school_a.id,
            "title": "Tập huấn bộ tiêu chí",
            "held_on": "2025-09-05",
            "attendee_ids": [school[0].id, school[3].id],
        },
        headers=h,
    )
    assert r.status_code == 201
    # A session of another year does not count for 2025.
    r = await client.post(
        f"{API}/training-sessions",
        json={
            "org_unit_id": c.commune_a2.id,
            "title": "Tập huấn 2024",
            "held_on": "2024-05-01",
            "attendee_ids": [p.id for p in commune] + [worker.id],
        },
        headers=h,
    )
    assert r.status_code == 201

    # trained_pct counts staff and workers only: the 4 staff and the worker (not the 2 students nor the 4
    # residents). Trained in 2025: the 4 staff (school[0] twice counts once; the resident commune[0] does
    # not count); the worker was trained in 2024 only.
    row = await _trained(client, viewer, c.district_a.id, 2025)
    assert (row["numerator"], row["denominator"], row["actual"]) == (4, 5, 80.0)
    assert (await _trained(client, viewer, c.school_a.id, 2025))["numerator"] == 4
    commune_2024 = await _trained(client, viewer, c.commune_a2.id, 2024)
    assert (commune_2024["numerator"], commune_2024["denominator"], commune_2024["actual"]) == (1, 1, 100.0)

    r = await client.put(
        f"{API}/training-sessions/{first['id']}/attendees",
        json={"version": 1, "attendee_ids": [p.id for p in commune] + [worker.id]},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    # The first session now has the 4 residents (not counted) and the worker; the second its 2 staff.
    assert (await _trained(client, viewer, c.district_a.id, 2025))["numerator"] == 3  # the worker + 2 staff
    r = await client.put(
        f"{API}/training-sessions/{first['id']}/attendees", json={"version": 1, "attendee_ids": []}, headers=h
    )
    assert r.status_code == 409

    listed = await client.get(f"{API}/training-sessions", params={"org_unit_id": c.school_a.id}, headers=h)
    assert [s["title"] for s in listed.json()["items"]] == ["Tập huấn bộ tiêu chí"]
    listed = await client.get(f"{API}/training-sessions", params={"year": 2025}, headers=h)
    assert listed.json()["total"] == 2


async def test_attendees_outside_the_subtree_are_refused(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.nation)))
    inside = await tree.person(c.school_a)
    elsewhere = await tree.person(c.school_b)
    before = await tree.snapshot()
    for attendees in ([inside.id, elsewhere.id], [inside.id, 2000000000]):
        r = await client.post(
            f"{API}/training-sessions",
            json={
                "org_unit_id": c.district_a.id,
                "title": "T",
                "held_on": "2025-01-02",
                "attendee_ids": attendees,
            },
            headers=h,
        )
        assert r.status_code == 409, r.text
        assert r.json()["error"]["details"] == {"person_ids": [attendees[1]]}
    body = {
        "org_unit_id": c.district_a.id,
        "title": "T",
        "held_on": "2025-01-02",
        "attendee_ids": [inside.id] * 2,
    }
    assert (await client.post(f"{API}/training-sessions", json=body, headers=h)).status_code == 422
    body = {"org_unit_id": c.district_a.id, "title": "T", "held_on": "1999-12-31"}
    assert (await client.post(f"{API}/training-sessions", json=body, headers=h)).status_code == 422
    assert await tree.snapshot() == before


async def test_training_scope(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    admin = tree.auth(await tree.user(("org_admin", c.district_a)))
    body = {"org_unit_id": c.school_a.id, "title": "T", "held_on": "2025-01-02", "attendee_ids": []}
    created = (await client.post(f"{API}/training-sessions", json=body, headers=admin)).json()
    url = f"{API}/training-sessions/{created['id']}"

    sibling = tree.auth(await tree.user(("org_admin", c.province_b)))
    assert (await client.get(url, headers=sibling)).status_code == 404
    r = await client.put(f"{url}/attendees", json={"attendee_ids": []}, headers=sibling)
    assert r.status_code == 404
    assert (await client.post(f"{API}/training-sessions", json=body, headers=sibling)).status_code == 404

    viewer = tree.auth(await tree.user(("viewer", c.district_a)))  # attendance is person-level data
    assert (await client.get(url, headers=viewer)).status_code == 403
    assert (await client.get(f"{API}/training-sessions", headers=viewer)).status_code == 403
    assessor = tree.auth(await tree.user(("assessor", c.district_a)))
    assert (await client.get(url, headers=assessor)).status_code == 200
    r = await client.put(f"{url}/attendees", json={"attendee_ids": []}, headers=assessor)
    assert r.status_code == 403
    assert (await client.post(f"{API}/training-sessions", json=body, headers=assessor)).status_code == 403
