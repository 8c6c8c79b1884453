"""Hộ gia đình and dòng họ (API.md "Collective titles"): households with dated members, clans with dated
households, one household (one clan) at a time, person-level scope, versions — and the counters kept
exact through every change (the dashboard equals an independent recount, the stored cells a rebuild)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, timedelta

import httpx
from sqlalchemy import select

from app.aggregates import counters
from app.aggregates.models import AggregateCount
from app.aggregates.naive import naive_recount
from app.core.audit import AuditEntry
from app.core.dates import today
from app.criteria.models import CriteriaSet
from app.decisions.models import RecognitionDecision
from app.evaluations.models import Evaluation, Status, Title
from app.orgs.models import OrgUnit
from app.people.models import Person
from tests.builders import Tree

API = "/api/v1"
THIS_YEAR = today().year
LAST_YEAR = THIS_YEAR - 1
JAN_1 = date(THIS_YEAR, 1, 1).isoformat()
LAST_JAN_1 = date(LAST_YEAR, 1, 1).isoformat()
# A day of this year after 1 January and not after today (on 1 January itself: the same day).
MOVED_ON = max(date(THIS_YEAR, 1, 1), min(date(THIS_YEAR, 3, 1), today())).isoformat()
MISSING_ID = 2_000_000_000
_n = itertools.count(1)


@dataclass
class Place:
    nation: OrgUnit
    province: OrgUnit
    district: OrgUnit
    commune_a: OrgUnit
    commune_b: OrgUnit
    other_province: OrgUnit
    commune_c: OrgUnit  # in the other province
    a: list[Person]  # residents of commune A
    b: list[Person]  # residents of commune B
    c: Person  # a resident of commune C
    admin: dict[str, str]  # org_admin of the district
    root: dict[str, str]  # a system administrator (reads every unit's numbers)


async def place(tree: Tree) -> Place:
    nation = await tree.unit("Việt Nam", "nation")
    province = await tree.unit("Tỉnh Ninh Bình", "province", nation)
    district = await tree.unit("Huyện Yên Mô", "district", province)
    commune_a = await tree.unit("Xã Yên Thành", "commune", district)
    commune_b = await tree.unit("Xã Yên Phong", "commune", district)
    other = await tree.unit("Tỉnh Thanh Hoá", "province", nation)
    commune_c = await tree.unit("Xã Hoằng Phụ", "commune", other)
    a = [await tree.person(commune_a, "resident") for _ in range(4)]
    b = [await tree.person(commune_b, "resident") for _ in range(2)]
    c = await tree.person(commune_c, "resident")
    admin = tree.auth(await tree.user(("org_admin", district)))
    root = tree.auth(await tree.admin())
    return Place(nation, province, district, commune_a, commune_b, other, commune_c, a, b, c, admin, root)


def units(p: Place) -> list[OrgUnit]:
    return [p.nation, p.province, p.district, p.commune_a, p.commune_b, p.other_province, p.commune_c]


def ids(members: list[Person | int]) -> list[int]:
    return [m.id if isinstance(m, Person) else m for m in members]


async def household(
    client: httpx.AsyncClient, h: dict[str, str], unit: OrgUnit, members: list[Person | int], **extra: object
) -> httpx.Response:
    body = {"name": f"Hộ ông Nguyễn Văn {next(_n)}", "org_unit_id": unit.id, "member_ids": ids(members)}
    return await client.post(f"{API}/households", json=body | extra, headers=h)


async def put_members(
    client: httpx.AsyncClient, h: dict[str, str], household_id: int, members: list[Person], **extra: object
) -> httpx.Response:
    body = {"member_ids": [m.id for m in members], **extra}
    return await client.put(f"{API}/households/{household_id}/members", json=body, headers=h)


async def recognise(tree: Tree, unit: OrgUnit, year: int, title: Title, **subject: int) -> None:
    """A recognised evaluation of ``subject`` (``person_id=`` or ``collective_id=``) written directly, the
    counters then rebuilt: a baseline that the changes under test must keep exact."""
    criteria_set = CriteriaSet(code=f"HH-TEST-{next(_n)}", title="Bộ tiêu chí thử", group="resident")
    decision = RecognitionDecision(
        org_unit_id=unit.id, year=year, number=f"{next(_n)}/QĐ-UBND", signed_on=date(year, 12, 20)
    )
    tree.session.add_all([criteria_set, decision])
    await tree.session.flush()
    tree.session.add(
        Evaluation(
            title=title.value,
            org_unit_id=unit.id,
            year=year,
            criteria_set_id=criteria_set.id,
            status=Status.RECOGNISED.value,
            passed=True,
            decision_id=decision.id,
            **subject,
        )
    )
    await counters.rebuild(tree.session)
    await tree.session.commit()


async def cells(tree: Tree) -> dict[tuple[object, ...], int]:
    rows = await tree.session.execute(
        select(
            AggregateCount.org_unit_id,
            AggregateCount.year,
            AggregateCount.kind,
            AggregateCount.grp,
            AggregateCount.level,
            AggregateCount.born,
            AggregateCount.n,
        )
    )
    return {tuple(key): n for *key, n in rows.all() if n != 0}


async def assert_counted(client: httpx.AsyncClient, tree: Tree, p: Place) -> None:
    await assert_counts(client, tree, p.root, units(p))


async def assert_counts(
    client: httpx.AsyncClient, tree: Tree, root: dict[str, str], checked: list[OrgUnit]
) -> None:
    """For every unit and both years, the dashboard's numbers equal an independent recount (for the
    metrics the recount knows), and the stored counters equal a full rebuild."""
    for unit in checked:
        for year in (LAST_YEAR, THIS_YEAR):
            r = await client.get(
                f"{API}/aggregates/progress", params={"org_unit_id": unit.id, "year": year}, headers=root
            )
            assert r.status_code == 200, r.text
            served = {m["metric"]: (m["numerator"], m["denominator"]) for m in r.json()["metrics"]}
            naive = await naive_recount(tree.session, unit.id, year)
            for metric, expected in naive.items():
                if metric in served:
                    assert served[metric] == expected, (unit.name, year, metric)
    kept = await cells(tree)
    await counters.rebuild(tree.session)
    assert await cells(tree) == kept, "the counters kept by the changes differ from a recount"
    await tree.session.commit()


def normalised(r: httpx.Response) -> str:
    return re.sub(r"\d+", "N", r.text)


async def test_a_household_is_created_read_listed_and_counted(client: httpx.AsyncClient, tree: Tree) -> None:
    p = await place(tree)
    h = p.admin
    r = await household(client, h, p.commune_a, p.a[:2], code="HGD-001")
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["org_unit_id"] == p.commune_a.id and made["code"] == "HGD-001"
    assert (made["valid_from"], made["valid_to"], made["version"], made["clan_id"]) == (JAN_1, None, 1, None)
    assert made["member_ids"] == sorted(m.id for m in p.a[:2])
    assert made["members"] == [
        {"person_id": m.id, "valid_from": JAN_1, "valid_to": None}
        for m in sorted(p.a[:2], key=lambda m: m.id)
    ]
    assert {"created_at", "updated_at"} <= made.keys()
    assert (await client.get(f"{API}/households/{made['id']}", headers=h)).json() == made

    other = await household(client, h, p.commune_b, p.b, effective_on=LAST_JAN_1)
    assert other.status_code == 201, other.text
    assert other.json()["members"][0]["valid_from"] == LAST_JAN_1

    listed = (await client.get(f"{API}/households", headers=h)).json()
    assert (listed["total"], listed["limit"], listed["offset"]) == (2, 50, 0)
    in_a = (await client.get(f"{API}/households", params={"org_unit_id": p.commune_a.id}, headers=h)).json()
    assert [x["id"] for x in in_a["items"]] == [made["id"]]
    by_code = (await client.get(f"{API}/households", params={"q": "hgd-0"}, headers=h)).json()
    assert [x["id"] for x in by_code["items"]] == [made["id"]]
    by_name = (await client.get(f"{API}/households", params={"q": "Nguyễn Văn"}, headers=h)).json()
    assert by_name["total"] == 2
    page = (await client.get(f"{API}/households", params={"limit": 1, "offset": 1}, headers=h)).json()
    assert (len(page["items"]), page["total"]) == (1, 2)

    audit = (
        await tree.session.scalars(
            select(AuditEntry).where(
                AuditEntry.entity_type == "household", AuditEntry.entity_id == made["id"]
            )
        )
    ).all()
    assert [(a.action, a.after["member_ids"]) for a in audit] == [("created", made["member_ids"])]
    await assert_counted(client, tree, p)


async def test_a_person_in_two_households_is_409_and_nothing_is_written(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    p = await place(tree)
    h = p.admin
    first = (await household(client, h, p.commune_a, p.a[:2])).json()
    second = (await household(client, h, p.commune_a, [p.a[2]])).json()
    before = await tree.snapshot()

    r = await household(client, h, p.commune_a, [p.a[3], p.a[1]])
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "conflict"
    assert f"household {first['id']}" in r.json()["error"]["message"]
    r = await put_members(client, h, second["id"], [p.a[2], p.a[0]])
    assert r.status_code == 409, r.text
    assert f"household {first['id']}" in r.json()["error"]["message"]

    # Malformed: the same person twice, an unknown field, a date in the future or before 2000.
    tomorrow = (today() + timedelta(days=1)).isoformat()
    for body in (
        {"member_ids": [p.a[3].id, p.a[3].id]},
        {"member_ids": [p.a[3].id], "head_id": p.a[3].id},
        {"member_ids": [p.a[3].id], "effective_on": tomorrow},
        {"member_ids": [p.a[3].id], "effective_on": "1999-12-31"},
        {"member_ids": [p.a[3].id], "version": True},
    ):
        r = await client.put(f"{API}/households/{second['id']}/members", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    for extra in (
        {"member_ids": [p.a[3].id] * 2},
        {"clan_id": 1},
        {"version": 1},
        {"effective_on": tomorrow},
    ):
        r = await client.post(
            f"{API}/households",
            json={"name": "Hộ", "org_unit_id": p.commune_a.id, "member_ids": []} | extra,
            headers=h,
        )
        assert r.status_code == 422, (extra, r.text)
    assert await tree.snapshot() == before
    await assert_counted(client, tree, p)


async def test_members_change_on_a_date_and_past_years_keep_theirs(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    p = await place(tree)
    h = p.admin
    a0, a1, a2, a3 = p.a
    made = (await household(client, h, p.commune_a, [a0, a1], effective_on=LAST_JAN_1)).json()
    hid = made["id"]
    # A learning family last year, and one of its members a Learning Citizen this year: who belongs to
    # the household each year decides who counts in the collective metrics.
    await recognise(tree, p.commune_a, LAST_YEAR, Title.LEARNING_FAMILY, collective_id=hid)
    await recognise(tree, p.commune_a, THIS_YEAR, Title.LEARNING_FAMILY, collective_id=hid)
    await recognise(tree, p.commune_a, THIS_YEAR, Title.LEARNING_CITIZEN, person_id=a2.id)
    await assert_counted(client, tree, p)

    r = await put_members(client, h, hid, [a1, a2], effective_on=MOVED_ON, version=made["version"])
    assert r.status_code == 200, r.text
    changed = r.json()
    day_before = (date.fromisoformat(MOVED_ON) - timedelta(days=1)).isoformat()
    assert changed["member_ids"] == sorted([a1.id, a2.id])
    assert changed["version"] == made["version"] + 1
    periods = {(m["person_id"], m["valid_from"], m["valid_to"]) for m in changed["members"]}
    assert periods == {(a0.id, LAST_JAN_1, day_before), (a1.id, LAST_JAN_1, None), (a2.id, MOVED_ON, None)}
    assert (await client.get(f"{API}/households/{hid}", headers=h)).json() == changed
    await assert_counted(client, tree, p)

    # Periods only go forward.
    r = await put_members(client, h, hid, [a1], effective_on=LAST_JAN_1)
    assert r.status_code == 409, r.text
    assert MOVED_ON in r.json()["error"]["message"]
    # A second change the same day: a period that began that day never took effect, so it goes.
    r = await put_members(client, h, hid, [a1, a3], effective_on=MOVED_ON, version=changed["version"])
    assert r.status_code == 200, r.text
    periods = {(m["person_id"], m["valid_from"], m["valid_to"]) for m in r.json()["members"]}
    assert periods == {(a0.id, LAST_JAN_1, day_before), (a1.id, LAST_JAN_1, None), (a3.id, MOVED_ON, None)}
    await assert_counted(client, tree, p)

    # The one who left may join another household from the day they left, not before.
    r = await household(client, h, p.commune_a, [a0], effective_on=LAST_JAN_1)
    assert r.status_code == 409, r.text
    assert f"household {hid}" in r.json()["error"]["message"]
    r = await household(client, h, p.commune_a, [a0], effective_on=MOVED_ON)
    assert r.status_code == 201, r.text
    # Everyone leaves: the household stays, with its history.
    r = await put_members(client, h, hid, [])
    assert r.status_code == 200, r.text
    assert r.json()["member_ids"] == [] and len(r.json()["members"]) == 3
    await assert_counted(client, tree, p)


async def test_household_scope_sibling_is_404_viewer_is_403(client: httpx.AsyncClient, tree: Tree) -> None:
    p = await place(tree)
    made = (await household(client, p.admin, p.commune_a, p.a[:1])).json()
    hid = made["id"]
    sibling = tree.auth(await tree.user(("org_admin", p.commune_b)))
    viewer = tree.auth(await tree.user(("viewer", p.district)))
    assessor = tree.auth(await tree.user(("assessor", p.district)))
    before = await tree.snapshot()
    requests = [
        ("GET", "", None),
        ("PATCH", "", {"name": "Hộ khác"}),
        ("PUT", "/members", {"member_ids": [p.b[0].id]}),
    ]
    for method, tail, body in requests:
        outside = await client.request(method, f"{API}/households/{hid}{tail}", json=body, headers=sibling)
        missing = await client.request(
            method, f"{API}/households/{MISSING_ID}{tail}", json=body, headers=sibling
        )
        assert outside.status_code == missing.status_code == 404, (method, outside.text)
        assert normalised(outside) == normalised(missing)
        assert outside.json()["error"]["message"] == f"Household {hid} not found."
    listed = (await client.get(f"{API}/households", headers=sibling)).json()
    assert hid not in [x["id"] for x in listed["items"]]
    assert (
        await client.get(f"{API}/households", params={"org_unit_id": p.commune_a.id}, headers=sibling)
    ).status_code == 404

    # Members the caller cannot read answer as people that do not exist.
    foreign = await household(client, sibling, p.commune_b, [p.b[0], p.a[1]])
    missing = await household(client, sibling, p.commune_b, [p.b[0], MISSING_ID])
    assert foreign.status_code == missing.status_code == 404, foreign.text
    assert foreign.json()["error"]["message"] == f"Person {p.a[1].id} not found."
    assert normalised(foreign) == normalised(missing)
    # A unit outside the caller's scope answers as a missing unit.
    outside_unit = await household(client, sibling, p.commune_a, [])
    assert outside_unit.status_code == 404, outside_unit.text

    for method, tail, body in requests:
        r = await client.request(method, f"{API}/households/{hid}{tail}", json=body, headers=viewer)
        assert r.status_code == 403, (method, r.text)
    assert (await client.get(f"{API}/households", headers=viewer)).status_code == 403
    assert (await household(client, viewer, p.commune_a, [])).status_code == 403
    # An assessor reads person-level data but does not write it.
    assert (await client.get(f"{API}/households/{hid}", headers=assessor)).status_code == 200
    assert (await put_members(client, assessor, hid, [])).status_code == 403
    assert await tree.snapshot() == before


async def test_versions_codes_and_ended_units(client: httpx.AsyncClient, tree: Tree) -> None:
    p = await place(tree)
    h = p.admin
    made = (await household(client, h, p.commune_a, [p.a[0]], code="HGD-1")).json()
    hid = made["id"]
    r = await client.patch(
        f"{API}/households/{hid}", json={"name": "Hộ bà Trần Thị Lan", "version": 1}, headers=h
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["version"]) == ("Hộ bà Trần Thị Lan", 2)
    before = await tree.snapshot()
    stale = [
        client.patch(f"{API}/households/{hid}", json={"name": "Cũ", "version": 1}, headers=h),
        client.patch(f"{API}/households/{hid}", json={"name": "Cũ"}, headers=h | {"If-Match": '"1"'}),
        put_members(client, h, hid, [p.a[1]], version=1),
        client.put(f"{API}/households/{hid}/members", json={"member_ids": []}, headers=h | {"If-Match": "1"}),
    ]
    for call in stale:
        r = await call
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "conflict"
    assert await tree.snapshot() == before
    # Codes are unique among households; a clan may use the same one.
    r = await household(client, h, p.commune_b, [], code="HGD-1")
    assert r.status_code == 409, r.text
    other = (await household(client, h, p.commune_b, [], code="HGD-2")).json()
    r = await client.patch(f"{API}/households/{other['id']}", json={"code": "HGD-1"}, headers=h)
    assert r.status_code == 409, r.text
    r = await client.patch(f"{API}/households/{hid}", json={"org_unit_id": p.commune_b.id}, headers=h)
    assert r.status_code == 422, r.text
    r = await client.patch(f"{API}/households/{hid}", json={"name": None}, headers=h)
    assert r.status_code == 422, r.text
    r = await client.post(
        f"{API}/clans",
        json={"name": "Họ Nguyễn", "org_unit_id": p.commune_b.id, "code": "HGD-1", "household_ids": []},
        headers=h,
    )
    assert r.status_code == 201, r.text

    # Nothing attaches to an ended unit; nothing is dated before its unit began.
    r = await client.post(
        f"{API}/reorganisations",
        json={
            "effective_on": JAN_1,
            "title": "Sáp nhập xã",
            "steps": [{"op": "merge", "units": [p.commune_b.id], "into": p.commune_a.id}],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    ended_on = (date(THIS_YEAR, 1, 1) - timedelta(days=1)).isoformat()
    r = await household(client, h, p.commune_b, [])
    assert r.status_code == 409, r.text
    assert ended_on in r.json()["error"]["message"]
    young = await tree.unit("Xã mới", "commune", p.district)
    young.valid_from = date(THIS_YEAR, 1, 1)
    await tree.session.commit()
    r = await household(client, h, young, [], effective_on=LAST_JAN_1)
    assert r.status_code == 409, r.text


async def test_clans_span_households_one_clan_at_a_time(client: httpx.AsyncClient, tree: Tree) -> None:
    p = await place(tree)
    h = p.admin
    h1 = (await household(client, h, p.commune_a, p.a[:2], effective_on=LAST_JAN_1)).json()
    h2 = (await household(client, h, p.commune_b, p.b, effective_on=LAST_JAN_1)).json()
    h3 = (await household(client, h, p.commune_a, p.a[2:3], effective_on=LAST_JAN_1)).json()
    body = {
        "name": "Dòng họ Phạm",
        "org_unit_id": p.district.id,
        "code": "DH-PHAM",
        "effective_on": LAST_JAN_1,
    }
    r = await client.post(f"{API}/clans", json=body | {"household_ids": [h1["id"], h2["id"]]}, headers=h)
    assert r.status_code == 201, r.text
    clan = r.json()
    assert clan["household_ids"] == sorted([h1["id"], h2["id"]])
    assert {(x["household_id"], x["valid_from"], x["valid_to"]) for x in clan["households"]} == {
        (h1["id"], LAST_JAN_1, None),
        (h2["id"], LAST_JAN_1, None),
    }
    assert (await client.get(f"{API}/households/{h1['id']}", headers=h)).json()["clan_id"] == clan["id"]
    assert (await client.get(f"{API}/clans/{clan['id']}", headers=h)).json() == clan
    listed = (
        await client.get(f"{API}/clans", params={"org_unit_id": p.district.id, "q": "Phạm"}, headers=h)
    ).json()
    assert [x["id"] for x in listed["items"]] == [clan["id"]]
    # A clan id is not a household id, and the reverse.
    assert (await client.get(f"{API}/households/{clan['id']}", headers=h)).status_code == 404
    assert (await client.get(f"{API}/clans/{h1['id']}", headers=h)).status_code == 404

    await recognise(tree, p.district, LAST_YEAR, Title.LEARNING_CLAN, collective_id=clan["id"])
    await recognise(tree, p.district, THIS_YEAR, Title.LEARNING_CLAN, collective_id=clan["id"])
    await recognise(tree, p.commune_b, THIS_YEAR, Title.LEARNING_CITIZEN, person_id=p.b[0].id)
    await assert_counted(client, tree, p)

    before = await tree.snapshot()
    other = {"name": "Dòng họ Trần", "org_unit_id": p.district.id}
    r = await client.post(f"{API}/clans", json=other | {"household_ids": [h3["id"], h2["id"]]}, headers=h)
    assert r.status_code == 409, r.text
    assert f"clan {clan['id']}" in r.json()["error"]["message"]
    r = await client.post(f"{API}/clans", json=other | {"household_ids": [h3["id"], h3["id"]]}, headers=h)
    assert r.status_code == 422, r.text
    # A household the caller cannot read is a missing one.
    elsewhere_admin = tree.auth(await tree.user(("org_admin", p.other_province)))
    far = (await household(client, elsewhere_admin, p.commune_c, [p.c])).json()
    r = await client.post(f"{API}/clans", json=other | {"household_ids": [far["id"]]}, headers=h)
    missing = await client.post(f"{API}/clans", json=other | {"household_ids": [MISSING_ID]}, headers=h)
    assert r.status_code == missing.status_code == 404, r.text
    assert r.json()["error"]["message"] == f"Household {far['id']} not found."
    assert normalised(r) == normalised(missing)
    await tree.session.commit()
    before = await tree.snapshot()

    # Household 2 leaves this year; household 3 joins: last year keeps the clan as it was.
    r = await client.put(
        f"{API}/clans/{clan['id']}/households",
        json={"household_ids": [h1["id"], h3["id"]], "effective_on": MOVED_ON, "version": clan["version"]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    day_before = (date.fromisoformat(MOVED_ON) - timedelta(days=1)).isoformat()
    assert {(x["household_id"], x["valid_from"], x["valid_to"]) for x in r.json()["households"]} == {
        (h1["id"], LAST_JAN_1, None),
        (h2["id"], LAST_JAN_1, day_before),
        (h3["id"], MOVED_ON, None),
    }
    assert (await client.get(f"{API}/households/{h2['id']}", headers=h)).json()["clan_id"] is None
    assert await tree.snapshot() != before
    await assert_counted(client, tree, p)
    # A member joining a household of a recognised clan counts with it from the day they join.
    r = await put_members(client, h, h3["id"], p.a[2:4], effective_on=MOVED_ON)
    assert r.status_code == 200, r.text
    await assert_counted(client, tree, p)

    sibling = tree.auth(await tree.user(("org_admin", p.commune_a)))
    for method, tail, payload in (
        ("GET", "", None),
        ("PATCH", "", {"name": "X"}),
        ("PUT", "/households", {"household_ids": []}),
    ):
        r = await client.request(method, f"{API}/clans/{clan['id']}{tail}", json=payload, headers=sibling)
        assert r.status_code == 404, (method, r.text)  # placed at the district, above the caller's commune
