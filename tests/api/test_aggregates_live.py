"""The counters behind the dashboards are kept by the services themselves: after every kind of change
made over HTTP (people registered or regrouped, decisions signed and revoked, training attendance,
a subtree moved — the 2025 reform), progress equals a naive recount for every unit, at once."""

from __future__ import annotations

import httpx
import pytest

from app.aggregates.naive import naive_recount
from app.core.dates import today
from app.orgs.models import OrgUnit
from tests.builders import Tree

pytestmark = pytest.mark.anyio

API = "/api/v1"


async def _check(client: httpx.AsyncClient, tree: Tree, h: dict[str, str], units: list[OrgUnit]) -> None:
    for unit in units:
        for year in (2025, today().year):
            r = await client.get(
                f"{API}/aggregates/progress", params={"org_unit_id": unit.id, "year": year}, headers=h
            )
            assert r.status_code == 200, r.text
            got = {m["metric"]: (m["numerator"], m["denominator"]) for m in r.json()["metrics"]}
            assert got == await naive_recount(tree.session, unit.id, year), (unit.name, year)


async def test_every_change_over_http_keeps_aggregates_equal_to_a_recount(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    province = await tree.unit("Tỉnh", "province")
    district = await tree.unit("Huyện (giải thể 1/7/2025)", "district", province)
    commune = await tree.unit("Xã", "commune", district)
    school = await tree.unit("Trường", "school", commune)
    other = await tree.unit("Xã khác", "commune", province)
    units = [province, district, commune, school, other]
    admin = tree.auth(await tree.admin())
    approver = tree.auth(await tree.user(("approver", province)))
    viewer = tree.auth(await tree.user(("viewer", province)))

    people = []
    for unit, group in [
        (school, "staff"),
        (school, "staff"),
        (school, "worker"),
        (commune, "resident"),
        (other, "resident"),
    ]:
        r = await client.post(
            f"{API}/people",
            json={"full_name": "Nguyễn Văn A", "org_unit_id": unit.id, "group": group},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        people.append(r.json())
    await _check(client, tree, viewer, units)

    r = await client.patch(f"{API}/people/{people[2]['id']}", json={"group": "resident"}, headers=admin)
    assert r.status_code == 200
    await _check(client, tree, viewer, units)

    from app.people.models import Person

    evaluations = [
        await tree.evaluation(await tree.session.get(Person, p["id"]), 2025, "reviewed", digital_level=level)
        for p, level in zip(people, ["proficient", "basic", None, "none", "basic"], strict=True)
    ]
    r = await client.post(
        f"{API}/recognition-decisions",
        json={
            "org_unit_id": province.id,
            "year": 2025,
            "number": "1/QĐ",
            "signed_on": "2025-12-20",
            "evaluation_ids": [e.id for e in evaluations],
        },
        headers=approver,
    )
    assert r.status_code == 201, r.text
    decision = r.json()
    await _check(client, tree, viewer, units)

    r = await client.patch(f"{API}/people/{people[0]['id']}", json={"group": "student"}, headers=admin)
    assert r.status_code == 200
    await _check(client, tree, viewer, units)

    r = await client.post(
        f"{API}/training-sessions",
        json={
            "org_unit_id": province.id,
            "title": "Quán triệt tiêu chí",
            "held_on": "2025-03-01",
            "attendee_ids": [people[0]["id"], people[3]["id"]],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    training = r.json()
    r = await client.post(
        f"{API}/training-sessions",
        json={
            "org_unit_id": province.id,
            "title": "Lần 2",
            "held_on": "2025-09-01",
            "attendee_ids": [people[0]["id"]],
        },
        headers=admin,
    )
    assert r.status_code == 201
    await _check(client, tree, viewer, units)
    r = await client.put(
        f"{API}/training-sessions/{training['id']}/attendees",
        json={"version": training["version"], "attendee_ids": [people[1]["id"]]},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    await _check(client, tree, viewer, units)

    # Today the commune is hung on the province directly: the district's 2025 keeps it, this year not.
    def district_people(year: int) -> object:
        return client.get(
            f"{API}/aggregates/progress", params={"org_unit_id": district.id, "year": year}, headers=viewer
        )

    before = (await district_people(2025)).json()
    r = await client.post(
        f"{API}/org-units/{commune.id}/move", json={"parent_id": province.id}, headers=admin
    )
    assert r.status_code == 200
    await _check(client, tree, viewer, units)
    assert (await district_people(2025)).json() == before
    assert all(m["denominator"] == 0 for m in (await district_people(today().year)).json()["metrics"])

    r = await client.post(
        f"{API}/recognition-decisions/{decision['id']}/revoke", json={"reason": "Sai"}, headers=approver
    )
    assert r.status_code == 200
    await _check(client, tree, viewer, units)
