"""Người chuyển đi (điều chuyển): a person moves to another unit or group on a date, and each year keeps
counting them where they were on its 31 December; plus the dates the API refuses (evaluation years,
decisions signed out of their year)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import httpx

from app.aggregates.naive import naive_recount
from app.core.dates import today
from app.orgs.models import OrgUnit
from app.people.models import Person
from tests.builders import Tree

API = "/api/v1"
THIS_YEAR = today().year
MOVED_ON = f"{THIS_YEAR}-03-01"


@dataclass
class Place:
    nation: OrgUnit
    province: OrgUnit
    other_province: OrgUnit
    district: OrgUnit
    commune_a: OrgUnit
    commune_b: OrgUnit
    commune_c: OrgUnit
    person: Person  # a resident of commune A, recognised last year and this year
    admin: dict[str, str]


async def place(tree: Tree) -> Place:
    """Nation → province → district → communes A, B, C; another province. One recognised resident in A
    (last year and this year), and a reviewed, not recognised neighbour in B."""
    nation = await tree.unit("Việt Nam", "nation")
    province = await tree.unit("Tỉnh Kon Tum", "province", nation)
    other = await tree.unit("Tỉnh Quảng Ngãi", "province", nation)
    district = await tree.unit("Huyện Kon Rẫy", "district", province)
    a = await tree.unit("Xã Đăk Ruồng", "commune", district)
    b = await tree.unit("Xã Tân Lập", "commune", district)
    c = await tree.unit("Xã Đăk Tờ Re", "commune", district)
    person = await tree.person(a, "resident")
    for year in (THIS_YEAR - 1, THIS_YEAR):
        await tree.evaluation(person, year, "recognised")
    neighbour = await tree.person(b, "resident")
    await tree.evaluation(neighbour, THIS_YEAR - 1, "reviewed")
    return Place(nation, province, other, district, a, b, c, person, tree.auth(await tree.admin()))


async def served(
    client: httpx.AsyncClient, h: dict[str, str], unit: OrgUnit, year: int, metric: str
) -> tuple[int, int]:
    r = await client.get(
        f"{API}/aggregates/progress", params={"org_unit_id": unit.id, "year": year}, headers=h
    )
    assert r.status_code == 200, r.text
    row = next(m for m in r.json()["metrics"] if m["metric"] == metric)
    return row["numerator"], row["denominator"]


async def check(
    client: httpx.AsyncClient,
    tree: Tree,
    h: dict[str, str],
    unit: OrgUnit,
    year: int,
    metric: str,
    expected: tuple[int, int],
) -> None:
    """The dashboard and an independent recount both say ``expected``."""
    got = await served(client, h, unit, year, metric)
    recount = (await naive_recount(tree.session, unit.id, year))[metric]
    assert (got, recount) == (expected, expected), (unit.name, year, metric)


async def transfer(
    client: httpx.AsyncClient, h: dict[str, str], person_id: int, **body: object
) -> httpx.Response:
    return await client.post(f"{API}/people/{person_id}/transfers", json=body, headers=h)


async def test_a_transferred_person_counts_in_the_old_unit_last_year_and_the_new_one_this_year(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    p = await place(tree)
    h = p.admin
    last = THIS_YEAR - 1
    adults = "adults_recognised_pct"
    await check(client, tree, h, p.commune_a, THIS_YEAR, adults, (1, 1))
    await check(client, tree, h, p.commune_b, THIS_YEAR, adults, (0, 1))

    r = await transfer(client, h, p.person.id, effective_on=MOVED_ON, org_unit_id=p.commune_b.id)
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["from_unit_id"], made["to_unit_id"], made["effective_on"]) == (
        p.commune_a.id,
        p.commune_b.id,
        MOVED_ON,
    )
    assert made["from_group"] == made["to_group"] == "resident"

    # Last year stands as it was on its 31 December; this year follows the person (with their
    # recognition, although the evaluation was made in A).
    await check(client, tree, h, p.commune_a, last, adults, (1, 1))
    await check(client, tree, h, p.commune_b, last, adults, (0, 1))
    await check(client, tree, h, p.commune_a, THIS_YEAR, adults, (0, 0))
    await check(client, tree, h, p.commune_b, THIS_YEAR, adults, (1, 2))
    await check(client, tree, h, p.district, THIS_YEAR, adults, (1, 2))
    assert (
        await client.get(f"{API}/evaluations/{(await _evaluation_id(client, h, p, THIS_YEAR))}", headers=h)
    ).json()["org_unit_id"] == p.commune_a.id, "the evaluation keeps the unit it was made in"

    # The person reads with today's unit; the transfer is listed.
    person = (await client.get(f"{API}/people/{p.person.id}", headers=h)).json()
    assert person["org_unit_id"] == p.commune_b.id
    listed = (await client.get(f"{API}/people/{p.person.id}/transfers", headers=h)).json()
    assert listed["total"] == 1
    assert [(t["id"], t["effective_on"], t["to_unit_id"]) for t in listed["items"]] == [
        (made["id"], MOVED_ON, p.commune_b.id)
    ]

    # A group change through PATCH is a transfer effective today: last year keeps the resident.
    r = await client.patch(
        f"{API}/people/{p.person.id}", json={"group": "staff", "version": person["version"]}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["group"] == "staff"
    await check(client, tree, h, p.commune_a, last, adults, (1, 1))
    await check(client, tree, h, p.commune_a, last, "staff_recognised_pct", (0, 0))
    await check(client, tree, h, p.commune_b, THIS_YEAR, adults, (0, 1))
    await check(client, tree, h, p.commune_b, THIS_YEAR, "staff_recognised_pct", (1, 1))
    listed = (await client.get(f"{API}/people/{p.person.id}/transfers", headers=h)).json()
    assert [(t["effective_on"], t["from_group"], t["to_group"]) for t in listed["items"]] == [
        (MOVED_ON, "resident", "resident"),
        (today().isoformat(), "resident", "staff"),
    ]


async def _evaluation_id(client: httpx.AsyncClient, h: dict[str, str], p: Place, year: int) -> int:
    r = await client.get(f"{API}/evaluations", params={"org_unit_id": p.nation.id, "year": year}, headers=h)
    assert r.status_code == 200, r.text
    return next(e["id"] for e in r.json()["items"] if e["person_id"] == p.person.id)


async def test_transfers_the_api_refuses(client: httpx.AsyncClient, tree: Tree) -> None:
    p = await place(tree)
    h = p.admin
    tomorrow = (today() + timedelta(days=1)).isoformat()
    r = await transfer(client, h, p.person.id, effective_on=tomorrow, org_unit_id=p.commune_b.id)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    r = await transfer(client, h, p.person.id, effective_on=MOVED_ON, org_unit_id=p.commune_b.id, note="x")
    assert r.status_code == 422, r.text

    assert (
        await transfer(client, h, p.person.id, effective_on=MOVED_ON, org_unit_id=p.commune_b.id)
    ).status_code == 201
    # Periods only go forward: nothing may be dated before the placement that began on MOVED_ON.
    before = f"{THIS_YEAR}-02-01"
    r = await transfer(client, h, p.person.id, effective_on=before, org_unit_id=p.commune_a.id)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "conflict" and MOVED_ON in r.json()["error"]["message"]

    # Into an ended unit: commune C is dissolved into B from 1 July last year, so it ended on 30 June.
    r = await client.post(
        f"{API}/reorganisations",
        json={
            "effective_on": f"{THIS_YEAR - 1}-07-01",
            "title": "Giải thể xã Đăk Tờ Re",
            "steps": [{"op": "dissolve", "unit": p.commune_c.id, "into": p.commune_b.id}],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = await transfer(client, h, p.person.id, effective_on=today().isoformat(), org_unit_id=p.commune_c.id)
    assert r.status_code == 409, r.text
    assert f"{THIS_YEAR - 1}-06-30" in r.json()["error"]["message"]

    # Nothing of the refused attempts was written: one transfer only, the person still in B.
    listed = (await client.get(f"{API}/people/{p.person.id}/transfers", headers=h)).json()
    assert listed["total"] == 1
    assert (await client.get(f"{API}/people/{p.person.id}", headers=h)).json()[
        "org_unit_id"
    ] == p.commune_b.id


async def test_transfer_scope_sibling_is_404_and_viewer_is_403(client: httpx.AsyncClient, tree: Tree) -> None:
    p = await place(tree)
    body = {"effective_on": MOVED_ON, "org_unit_id": p.commune_b.id}
    sibling = tree.auth(await tree.user(("org_admin", p.other_province)))
    r = await transfer(client, sibling, p.person.id, **body)
    assert r.status_code == 404, r.text
    assert (await client.get(f"{API}/people/{p.person.id}/transfers", headers=sibling)).status_code == 404
    viewer = tree.auth(await tree.user(("viewer", p.province)))
    r = await transfer(client, viewer, p.person.id, **body)
    assert r.status_code == 403, r.text
    # A district org_admin may not send the person out of the district (the target is out of scope).
    district_admin = tree.auth(await tree.user(("org_admin", p.district)))
    r = await transfer(
        client, district_admin, p.person.id, effective_on=MOVED_ON, org_unit_id=p.other_province.id
    )
    assert r.status_code == 404, r.text
    assert (await client.get(f"{API}/people/{p.person.id}/transfers", headers=p.admin)).json()["total"] == 0
    # Control: inside the subtree the same org_admin may.
    r = await transfer(client, district_admin, p.person.id, **body)
    assert r.status_code == 201, r.text


async def test_evaluation_years_and_decision_dates_outside_their_bounds_are_422(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    p = await place(tree)
    h = p.admin
    someone = await tree.person(p.commune_c, "resident")
    for year in (2015, THIS_YEAR + 1):
        r = await client.post(f"{API}/evaluations", json={"person_id": someone.id, "year": year}, headers=h)
        assert r.status_code == 422, (year, r.text)
    r = await client.post(f"{API}/evaluations", json={"person_id": someone.id, "year": THIS_YEAR}, headers=h)
    assert r.status_code == 201, r.text

    last = THIS_YEAR - 1
    reviewed = await tree.evaluation(await tree.person(p.commune_c, "resident"), last, "reviewed")

    def decision(signed_on: str, number: str) -> dict[str, object]:
        return {
            "org_unit_id": p.commune_c.id,
            "year": last,
            "number": number,
            "signed_on": signed_on,
            "evaluation_ids": [reviewed.id],
        }

    tomorrow = (today() + timedelta(days=1)).isoformat()
    for signed_on in (f"{last - 1}-12-31", tomorrow):
        r = await client.post(f"{API}/recognition-decisions", json=decision(signed_on, "1/QĐ"), headers=h)
        assert r.status_code == 422, (signed_on, r.text)
    r = await client.get(f"{API}/evaluations/{reviewed.id}", headers=h)
    assert r.json()["status"] == "reviewed"
    # The bounds themselves are allowed: 1 January of the year (and today, for a late signature).
    r = await client.post(f"{API}/recognition-decisions", json=decision(f"{last}-01-01", "2/QĐ"), headers=h)
    assert r.status_code == 201, r.text
    assert (await client.get(f"{API}/evaluations/{reviewed.id}", headers=h)).json()["status"] == "recognised"


async def test_registering_people_never_changes_a_past_year(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    """A commune registers new residents (by hand and by file): last year's reported numbers stay; an
    evaluation of last year needs the person to have belonged then (member_since)."""
    p = await place(tree)
    h = p.admin
    before = await served(client, h, p.district, THIS_YEAR - 1, "adults_recognised_pct")
    r = await client.post(
        f"{API}/people",
        json={"full_name": "Y Bình", "org_unit_id": p.commune_a.id, "group": "resident"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]
    file = "full_name,unit_code,group\nA Hiền,{code},resident\n"
    await tree.session.execute(
        OrgUnit.__table__.update().where(OrgUnit.id == p.commune_b.id).values(code="23497")  # type: ignore[attr-defined]
    )
    r = await client.post(
        f"{API}/imports/people",
        files={"file": ("people.csv", file.format(code="23497").encode(), "text/csv")},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    assert await served(client, h, p.district, THIS_YEAR - 1, "adults_recognised_pct") == before
    now = await served(client, h, p.district, THIS_YEAR, "adults_recognised_pct")
    assert now[1] == before[1] + 2  # this year counts them
    # Last year's evaluation of someone registered this year: refused, with the way out in the message.
    r = await client.post(f"{API}/evaluations", json={"person_id": new_id, "year": THIS_YEAR - 1}, headers=h)
    assert r.status_code == 409 and "member_since" in r.json()["error"]["message"], r.text
    r = await client.post(f"{API}/evaluations", json={"person_id": new_id, "year": THIS_YEAR}, headers=h)
    assert r.status_code == 201, r.text
    # Registered late: correcting member_since counts them last year too, and opens last year's evaluation.
    version = (await client.get(f"{API}/people/{new_id}", headers=h)).json()["version"]
    r = await client.patch(
        f"{API}/people/{new_id}",
        json={"member_since": f"{THIS_YEAR - 3}-05-01", "version": version},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert (await served(client, h, p.district, THIS_YEAR - 1, "adults_recognised_pct"))[1] == before[1] + 1
    for unit in (p.district, p.commune_a):
        for year in (THIS_YEAR - 1, THIS_YEAR):
            got = await served(client, h, unit, year, "adults_recognised_pct")
            assert got == (await naive_recount(tree.session, unit.id, year))["adults_recognised_pct"]
    r = await client.post(f"{API}/evaluations", json={"person_id": new_id, "year": THIS_YEAR - 1}, headers=h)
    assert r.status_code == 201, r.text
    before = await served(client, h, p.district, THIS_YEAR - 1, "adults_recognised_pct")
    # Registered with the day they joined, last year counts them and they can be evaluated for it.
    r = await client.post(
        f"{API}/people",
        json={
            "full_name": "Đinh Văn Hùng",
            "org_unit_id": p.commune_a.id,
            "group": "resident",
            "member_since": f"{THIS_YEAR - 5}-01-01",
        },
        headers=h,
    )
    assert r.status_code == 201
    assert (await served(client, h, p.district, THIS_YEAR - 1, "adults_recognised_pct"))[1] == before[1] + 1
    r = await client.post(
        f"{API}/evaluations", json={"person_id": r.json()["id"], "year": THIS_YEAR - 1}, headers=h
    )
    assert r.status_code == 201, r.text


async def test_exports_keep_the_group_of_the_year(client: httpx.AsyncClient, tree: Tree) -> None:
    p = await place(tree)
    r = await client.patch(f"{API}/people/{p.person.id}", json={"group": "worker"}, headers=p.admin)
    assert r.status_code == 200, r.text
    r = await client.get(
        f"{API}/exports/evaluations",
        params={"org_unit_id": p.district.id, "year": THIS_YEAR - 1},
        headers=p.admin,
    )
    assert r.status_code == 200, r.text
    row = next(
        line
        for line in r.text.splitlines()
        if line.startswith(f"{p.person.id},") or f",{p.person.id}," in line
    )
    assert ",resident," in row and ",worker," not in row, row
