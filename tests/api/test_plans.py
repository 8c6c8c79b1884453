"""Plans and targets over HTTP: story 1 of the plans issue (a district enters its plan under the
province's), validation, versioning and scope."""

from __future__ import annotations

from typing import Any

import httpx

from tests.builders import Country, Tree, build_country

API = "/api/v1"


def _plan(unit_id: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "org_unit_id": unit_id,
        "title": "Kế hoạch thực hiện Chương trình Xây dựng mô hình Công dân học tập",
        "start_year": 2021,
        "end_year": 2030,
        "targets": [
            {"metric": "adults_recognised_pct", "year": 2025, "value": 40},
            {"metric": "adults_recognised_pct", "year": 2030, "value": 60},
            {"metric": "staff_recognised_pct", "year": 2025, "value": 60.5},
        ],
    }
    body.update(extra)
    return body


async def _province_plan(client: httpx.AsyncClient, tree: Tree, c: Country) -> dict[str, Any]:
    h = tree.auth(await tree.user(("org_admin", c.province_a)))
    r = await client.post(f"{API}/plans", json=_plan(c.province_a.id, document_no="126/KH-UBND"), headers=h)
    assert r.status_code == 201, r.text
    return r.json()


async def test_district_enters_its_plan_under_the_province_plan(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    province_plan = await _province_plan(client, tree, c)
    district_admin = await tree.user(("org_admin", c.district_a))
    h = tree.auth(district_admin)

    body = _plan(
        c.district_a.id,
        title="Kế hoạch triển khai Chương trình trên địa bàn huyện Kon Rẫy",
        document_no="45/KH-UBND",
        issued_on="2022-10-03",
        parent_plan_id=province_plan["id"],
    )
    r = await client.post(f"{API}/plans", json=body, headers=h)
    assert r.status_code == 201, r.text
    plan = r.json()
    assert plan["parent_plan_id"] == province_plan["id"]
    assert plan["version"] == 1 and plan["created_by"] == district_admin.id
    assert plan["issued_on"] == "2022-10-03" and plan["document_no"] == "45/KH-UBND"
    assert plan["targets"] == [
        {"metric": "adults_recognised_pct", "year": 2025, "value": 40.0},
        {"metric": "adults_recognised_pct", "year": 2030, "value": 60.0},
        {"metric": "staff_recognised_pct", "year": 2025, "value": 60.5},
    ]
    assert (await client.get(f"{API}/plans/{plan['id']}", headers=h)).json() == plan

    # The province plan applies to the district: readable from below, not writable (403, not 404).
    assert (await client.get(f"{API}/plans/{province_plan['id']}", headers=h)).status_code == 200
    r = await client.patch(f"{API}/plans/{province_plan['id']}", json={"title": "Đổi"}, headers=h)
    assert r.status_code == 403

    listed = await client.get(f"{API}/plans", params={"org_unit_id": c.district_a.id}, headers=h)
    assert [p["id"] for p in listed.json()["items"]] == [plan["id"]]
    chain = await client.get(
        f"{API}/plans", params={"org_unit_id": c.district_a.id, "above": True}, headers=h
    )
    assert {p["id"] for p in chain.json()["items"]} == {plan["id"], province_plan["id"]}
    everything = (await client.get(f"{API}/plans", headers=h)).json()
    assert everything["total"] == 2


async def test_bad_targets_are_422_and_write_nothing(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    bad = [
        {"metric": "happiness_pct", "year": 2025, "value": 50},  # unknown metric
        {"metric": "staff_recognised_pct", "year": 2025, "value": 100.01},  # above 100
        {"metric": "staff_recognised_pct", "year": 2025, "value": -1},  # below 0
        {"metric": "staff_recognised_pct", "year": 2035, "value": 80},  # outside 2021–2030
        {"metric": "staff_recognised_pct", "year": 2025, "value": 33.333},  # more than 2 decimals
    ]
    before = await tree.snapshot()
    for target in bad:
        r = await client.post(f"{API}/plans", json=_plan(c.district_a.id, targets=[target]), headers=h)
        assert r.status_code == 422, (target, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    twice = [{"metric": "staff_recognised_pct", "year": 2025, "value": v} for v in (60, 70)]
    r = await client.post(f"{API}/plans", json=_plan(c.district_a.id, targets=twice), headers=h)
    assert r.status_code == 422 and "twice" in r.text
    r = await client.post(f"{API}/plans", json=_plan(c.district_a.id, start_year=2031), headers=h)
    assert r.status_code == 422
    r = await client.post(f"{API}/plans", json=_plan(c.district_a.id, version=3), headers=h)
    assert r.status_code == 422  # server-set fields cannot be sent
    assert await tree.snapshot() == before


async def test_plans_and_targets_are_versioned(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    plan = (await client.post(f"{API}/plans", json=_plan(c.district_a.id), headers=h)).json()
    url = f"{API}/plans/{plan['id']}"

    r = await client.patch(url, json={"title": "Kế hoạch (sửa đổi)", "version": 1}, headers=h)
    assert r.status_code == 200 and r.json()["version"] == 2
    r = await client.patch(url, json={"title": "Kế hoạch cũ", "version": 1}, headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    r = await client.patch(url, json={"title": "Kế hoạch cũ"}, headers={**h, "If-Match": '"1"'})
    assert r.status_code == 409

    new_targets = [{"metric": "trained_pct", "year": 2025, "value": 100}]
    r = await client.put(f"{url}/targets", json={"targets": new_targets}, headers=h)
    assert r.status_code == 422  # the version is required for a replacement
    r = await client.put(f"{url}/targets", json={"version": 1, "targets": new_targets}, headers=h)
    assert r.status_code == 409
    r = await client.put(f"{url}/targets", json={"targets": new_targets}, headers={**h, "If-Match": "2"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 3
    assert r.json()["targets"] == [{"metric": "trained_pct", "year": 2025, "value": 100.0}]

    outside = [{"metric": "trained_pct", "year": 2031, "value": 100}]
    r = await client.put(f"{url}/targets", json={"version": 3, "targets": outside}, headers=h)
    assert r.status_code == 422
    # The standard issue list of a malformed body: each names the target at fault by its index.
    assert r.json()["error"]["details"] == [
        {
            "loc": ["body", "targets", 0],
            "msg": "year 2031 is outside the plan 2021–2030",
            "type": "value_error",
        }
    ]
    twice = [{"metric": "trained_pct", "year": 2025, "value": v} for v in (90, 100)]
    r = await client.put(f"{url}/targets", json={"version": 3, "targets": twice}, headers=h)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
    assert r.json()["error"]["details"] == [
        {"loc": ["body", "targets", 1], "msg": "trained_pct 2025 is given twice", "type": "value_error"}
    ]
    # Shrinking the period under an existing target is refused; the target stays.
    r = await client.patch(url, json={"start_year": 2026, "version": 3}, headers=h)
    assert r.status_code == 409 and r.json()["error"]["details"] == {"target_years": [2025]}
    final = (await client.get(url, headers=h)).json()
    assert final["version"] == 3 and final["start_year"] == 2021 and len(final["targets"]) == 1

    r = await client.delete(url, headers={**h, "If-Match": "2"})
    assert r.status_code == 409
    assert (await client.delete(url, headers={**h, "If-Match": "3"})).status_code == 204
    assert (await client.get(url, headers=h)).status_code == 404


async def test_plan_scope_404_outside_403_without_the_role(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    plan = (
        await client.post(f"{API}/plans", json=_plan(c.commune_a.id), headers=tree.auth(await tree.admin()))
    ).json()
    url = f"{API}/plans/{plan['id']}"
    missing = f"{API}/plans/2000000000"

    sibling = tree.auth(await tree.user(("org_admin", c.province_b)))
    for method, body in (("GET", None), ("PATCH", {"title": "X"}), ("DELETE", None)):
        outside = await client.request(method, url, json=body, headers=sibling)
        absent = await client.request(method, missing, json=body, headers=sibling)
        assert outside.status_code == absent.status_code == 404, method
        assert outside.json()["error"]["message"].replace(str(plan["id"]), "N") == absent.json()["error"][
            "message"
        ].replace("2000000000", "N")
    r = await client.put(f"{url}/targets", json={"version": 1, "targets": []}, headers=sibling)
    assert r.status_code == 404
    r = await client.get(f"{API}/plans", params={"org_unit_id": c.commune_a.id}, headers=sibling)
    assert r.status_code == 404
    assert (await client.get(f"{API}/plans", headers=sibling)).json()["total"] == 0
    r = await client.post(f"{API}/plans", json=_plan(c.school_a.id), headers=sibling)
    assert r.status_code == 404

    for role in ("viewer", "assessor", "approver", "member", "integration"):
        h = tree.auth(await tree.user((role, c.district_a)))
        assert (await client.get(url, headers=h)).status_code == 200, role
        assert (await client.patch(url, json={"title": "X"}, headers=h)).status_code == 403, role
        assert (await client.post(f"{API}/plans", json=_plan(c.school_a.id), headers=h)).status_code == 403
    # Read from below: the school's viewer sees the commune's plan, which applies to the school.
    school_viewer = tree.auth(await tree.user(("viewer", c.school_a)))
    assert (await client.get(url, headers=school_viewer)).status_code == 200
    assert (await client.delete(url, headers=school_viewer)).status_code == 403


async def test_parent_plan_must_be_visible_and_above(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    admin = tree.auth(await tree.admin())
    sibling_plan = (await client.post(f"{API}/plans", json=_plan(c.commune_a2.id), headers=admin)).json()
    other_province = (await client.post(f"{API}/plans", json=_plan(c.province_b.id), headers=admin)).json()
    district_plan = (await client.post(f"{API}/plans", json=_plan(c.district_a.id), headers=admin)).json()
    h = tree.auth(await tree.user(("org_admin", c.district_a)))

    r = await client.post(
        f"{API}/plans", json=_plan(c.commune_a.id, parent_plan_id=sibling_plan["id"]), headers=h
    )
    assert r.status_code == 409  # a sibling's plan is not above
    r = await client.post(
        f"{API}/plans", json=_plan(c.commune_a.id, parent_plan_id=other_province["id"]), headers=h
    )
    assert r.status_code == 404  # a plan the caller cannot see does not exist for them
    r = await client.post(
        f"{API}/plans", json=_plan(c.district_a.id, parent_plan_id=district_plan["id"]), headers=h
    )
    assert r.status_code == 409  # the same unit is not above
    r = await client.post(
        f"{API}/plans", json=_plan(c.commune_a.id, parent_plan_id=district_plan["id"]), headers=h
    )
    assert r.status_code == 201
    child = r.json()

    r = await client.delete(f"{API}/plans/{district_plan['id']}", headers=h)
    assert r.status_code == 409  # still named as a parent
    r = await client.patch(f"{API}/plans/{child['id']}", json={"parent_plan_id": None}, headers=h)
    assert r.status_code == 200 and r.json()["parent_plan_id"] is None
    assert (await client.delete(f"{API}/plans/{district_plan['id']}", headers=h)).status_code == 204
