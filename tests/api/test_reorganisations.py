"""The tree through time: reorganisations (merge, dissolve, create, move, rename), as a district
association and a province office would apply the 2025 reform, and what the dashboards say after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import httpx
from sqlalchemy import func, select

from app.aggregates.naive import naive_recount
from app.auth.models import RoleAssignment
from app.core.dates import today
from app.orgs.models import OrgUnit, OrgUnitLink
from app.people.models import Membership, Person
from tests.builders import Tree

API = "/api/v1"
REFORM = "2025-07-01"


@dataclass
class Country:
    nation: OrgUnit
    province: OrgUnit
    other_province: OrgUnit
    district: OrgUnit
    commune_a: OrgUnit
    commune_b: OrgUnit
    school: OrgUnit
    admin: dict[str, str]


async def country(tree: Tree) -> Country:
    """Nation → province → district → communes A (with a school), B; another province."""
    nation = await tree.unit("Việt Nam", "nation")
    province = await tree.unit("Tỉnh Kon Tum", "province", nation, code="62")
    other = await tree.unit("Tỉnh Quảng Ngãi", "province", nation, code="51")
    district = await tree.unit("Huyện Kon Rẫy", "district", province, code="62-614")
    a = await tree.unit("Xã Đăk Ruồng", "commune", district, code="23488")
    b = await tree.unit("Xã Tân Lập", "commune", district, code="23497")
    school = await tree.unit("Trường TH Đăk Ruồng", "school", a)
    for unit, recognised, others in ((a, 3, 2), (b, 1, 3), (school, 2, 0)):
        for i in range(recognised + others):
            person = await tree.person(unit, "resident")
            await tree.evaluation(person, 2024, "recognised" if i < recognised else "reviewed")
    return Country(nation, province, other, district, a, b, school, tree.auth(await tree.admin()))


async def adults(
    client: httpx.AsyncClient, h: dict[str, str], unit: OrgUnit, year: int, **params: str
) -> tuple:
    r = await client.get(
        f"{API}/aggregates/progress", params={"org_unit_id": unit.id, "year": year, **params}, headers=h
    )
    assert r.status_code == 200, r.text
    row = next(m for m in r.json()["metrics"] if m["metric"] == "adults_recognised_pct")
    return row["numerator"], row["denominator"], row["status"]


async def reorganise(
    client: httpx.AsyncClient, h: dict[str, str], steps: list[dict], **extra: object
) -> httpx.Response:
    body = {"effective_on": REFORM, "title": "Sắp xếp đơn vị hành chính 2025", "steps": steps, **extra}
    return await client.post(f"{API}/reorganisations", json=body, headers=h)


async def test_merging_communes_keeps_every_past_year_and_counts_the_new_one(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await country(tree)
    h = c.admin
    before_2024 = {u.id: await adults(client, h, u, 2024) for u in (c.province, c.district, c.commune_a)}
    assert before_2024[c.district.id][:2] == (6, 11)

    # 1 July 2025: communes A and B merge into a new commune Kon Braih, directly under the other
    # province; the district is abolished into that province; the old province merges into it too.
    r = await reorganise(
        client,
        h,
        [
            {
                "op": "create",
                "ref": "kb",
                "name": "Xã Kon Braih",
                "kind": "commune",
                "code": "KB",
                "parent": c.other_province.id,
            },
            {"op": "merge", "units": [c.commune_a.id, c.commune_b.id], "into": "kb"},
            {"op": "dissolve", "unit": c.district.id, "into": c.other_province.id},
            {"op": "merge", "units": [c.province.id], "into": c.other_province.id},
        ],
        document_no="202/2025/QH15",
    )
    assert r.status_code == 201, r.text
    body = r.json()
    kb = body["created"]["kb"]
    assert body["summary"] == {
        "units_created": 1,
        "units_moved": 1,  # the school, from commune A into Kon Braih
        "units_ended": 4,
        "people_moved": 9,  # the communes' own people (the school's stay in the school)
        "roles_moved": 0,
    }
    # Ended units hang under their successor in today's tree: Quảng Ngãi now covers all of it.
    assert body["org_unit_id"] == c.other_province.id

    # Past years do not move.
    for unit_id, numbers in before_2024.items():
        unit = await tree.session.get(OrgUnit, unit_id)
        assert unit is not None
        assert await adults(client, h, unit, 2024) == numbers
    # The ended units read with their end and successor; the new one with its predecessors.
    a = (await client.get(f"{API}/org-units/{c.commune_a.id}", headers=h)).json()
    assert (a["valid_to"], a["successor_ids"], a["parent_id"]) == ("2025-06-30", [kb], c.district.id)
    new = (await client.get(f"{API}/org-units/{kb}", headers=h)).json()
    assert (new["valid_from"], sorted(new["predecessor_ids"])) == (
        REFORM,
        sorted([c.commune_a.id, c.commune_b.id]),
    )

    # The tree as it stood: 2024 has the district and its communes; today, Kon Braih under Quảng Ngãi.
    def names(r: httpx.Response) -> list[str]:
        assert r.status_code == 200, r.text
        return sorted(u["name"] for u in r.json()["items"])

    assert names(
        await client.get(
            f"{API}/org-units", params={"parent_id": c.nation.id, "as_of": "2024-12-31"}, headers=h
        )
    ) == [
        "Tỉnh Kon Tum",
        "Tỉnh Quảng Ngãi",
    ]
    assert names(
        await client.get(
            f"{API}/org-units", params={"parent_id": c.district.id, "as_of": "2024-12-31"}, headers=h
        )
    ) == [
        "Xã Tân Lập",
        "Xã Đăk Ruồng",
    ]
    assert names(
        await client.get(f"{API}/org-units", params={"parent_id": c.other_province.id}, headers=h)
    ) == ["Xã Kon Braih"]
    assert names(await client.get(f"{API}/org-units", params={"parent_id": c.nation.id}, headers=h)) == [
        "Tỉnh Quảng Ngãi"
    ]

    # 2025 counts on the new tree; the new commune existed from 2025 only (as_was), while lineage
    # re-bases its 2024 on its predecessors.
    new_unit = await tree.session.get(OrgUnit, kb)
    assert new_unit is not None
    for year in (2024, 2025, today().year):
        for unit in (c.other_province, new_unit, c.district, c.commune_a, c.province):
            got = await adults(client, h, unit, year)
            assert got[:2] == naive_recount_pair(await naive_recount(tree.session, unit.id, year)), (
                unit.name,
                year,
            )
    assert await adults(client, h, new_unit, 2024) == (0, 0, "no_data")
    assert await adults(client, h, new_unit, 2024, basis="lineage") == (6, 11, "no_target")
    assert (await adults(client, h, c.other_province, 2024, basis="lineage"))[:2] == (6, 11)
    # Kon Tum's district is inside Kon Tum in 2024: lineage does not count it twice.


def naive_recount_pair(recount: dict[str, tuple[int, int]]) -> tuple[int, int]:
    return recount["adults_recognised_pct"]


async def test_nothing_attaches_to_an_ended_unit(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await country(tree)
    h = c.admin
    r = await reorganise(client, h, [{"op": "dissolve", "unit": c.commune_b.id, "into": c.commune_a.id}])
    assert r.status_code == 201, r.text
    attempts = [
        ("org-units", {"name": "Thôn mới", "kind": "village", "parent_id": c.commune_b.id}),
        ("people", {"full_name": "Nguyễn Văn B", "org_unit_id": c.commune_b.id, "group": "resident"}),
        (
            "users",
            {
                "username": "tanlap",
                "password": "a-long-password-1",
                "full_name": "X",
                "org_unit_id": c.commune_b.id,
            },
        ),
    ]
    for path, body in attempts:
        r = await client.post(f"{API}/{path}", json=body, headers=h)
        assert r.status_code == 409, (path, r.text)
        assert "2025-06-30" in r.json()["error"]["message"]
    r = await client.post(
        f"{API}/org-units/{c.commune_b.id}/move", json={"parent_id": c.other_province.id}, headers=h
    )
    assert r.status_code == 409


async def test_roles_people_and_users_go_to_the_successor(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await country(tree)
    officer = await tree.user(("org_admin", c.district), ("viewer", c.other_province))
    r = await reorganise(client, c.admin, [{"op": "dissolve", "unit": c.district.id, "into": c.province.id}])
    assert r.status_code == 201, r.text
    assert r.json()["summary"]["roles_moved"] == 1
    roles = (
        await tree.session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == officer.id))
    ).all()
    assert sorted((x.role, x.org_unit_id) for x in roles) == sorted(
        [("org_admin", c.province.id), ("viewer", c.other_province.id)]
    )
    await tree.session.refresh(officer)
    assert officer.org_unit_id == c.province.id
    # Whoever holds the successor reads the ended unit and its history.
    h = tree.auth(officer)
    r = await client.get(f"{API}/org-units/{c.district.id}", headers=h)
    assert r.status_code == 200 and r.json()["valid_to"] == "2025-06-30"
    assert (await adults(client, h, c.district, 2024))[:2] == (6, 11)
    assert (await adults(client, h, c.district, today().year))[2] == "no_data"


async def test_a_dry_run_changes_nothing(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await country(tree)
    counts = await _table_counts(tree)
    r = await reorganise(
        client,
        c.admin,
        [
            {"op": "create", "ref": "x", "name": "Xã X", "kind": "commune", "parent": c.province.id},
            {"op": "merge", "units": [c.commune_a.id, c.commune_b.id], "into": "x"},
        ],
        dry_run=True,
    )
    assert r.status_code == 200, r.text
    assert r.json()["id"] is None and r.json()["created"] == {"x": None}
    assert r.json()["summary"]["units_ended"] == 2
    assert await _table_counts(tree) == counts
    assert (await client.get(f"{API}/reorganisations", headers=c.admin)).json()["total"] == 0


async def _table_counts(tree: Tree) -> tuple[int, ...]:
    out = []
    for model in (OrgUnit, OrgUnitLink, Membership, Person):
        out.append(int(await tree.session.scalar(select(func.count()).select_from(model)) or 0))
    ended = await tree.session.scalar(select(func.count()).where(OrgUnit.valid_to.is_not(None)))
    return (*out, int(ended or 0))


async def test_bad_steps_are_refused_with_their_index_and_nothing_is_written(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await country(tree)
    h = c.admin
    counts = await _table_counts(tree)
    cases = [
        ([{"op": "merge", "units": [c.district.id], "into": c.commune_a.id}], 0, "own descendant"),
        (
            [
                {"op": "create", "ref": "n", "name": "Xã N", "kind": "commune", "parent": c.province.id},
                {"op": "move", "unit": c.commune_a.id, "parent": "nope"},
            ],
            1,
            "ref",
        ),
        ([{"op": "move", "unit": c.district.id, "parent": c.school.id}], 0, "own subtree"),
        ([{"op": "rename", "unit": c.commune_a.id, "code": "62"}], 0, "already used"),
    ]
    for steps, index, words in cases:
        r = await reorganise(client, h, steps)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["details"]["step"] == index and words in error["message"], error
    future = await client.post(
        f"{API}/reorganisations",
        json={
            "effective_on": "2999-01-01",
            "title": "x",
            "steps": [{"op": "rename", "unit": c.district.id, "name": "Y"}],
        },
        headers=h,
    )
    assert future.status_code == 422
    unknown = await reorganise(
        client, h, [{"op": "dissolve", "unit": c.district.id, "into": c.province.id, "extra": 1}]
    )
    assert unknown.status_code == 422
    assert await _table_counts(tree) == counts
    # An ended unit named later is refused too.
    assert (
        await reorganise(client, h, [{"op": "dissolve", "unit": c.commune_b.id, "into": c.commune_a.id}])
    ).status_code == 201
    r = await reorganise(
        client,
        h,
        [
            {"op": "rename", "unit": c.commune_a.id, "name": "A2"},
            {"op": "move", "unit": c.commune_b.id, "parent": c.province.id},
        ],
    )
    assert r.status_code == 422 and r.json()["error"]["details"]["step"] == 1
    assert "ended on 2025-06-30" in r.json()["error"]["message"]
    # A date before the unit's last change is refused (history only goes forward).
    r = await client.post(
        f"{API}/reorganisations",
        json={
            "effective_on": "2025-01-01",
            "title": "x",
            "steps": [{"op": "move", "unit": c.commune_a.id, "parent": c.other_province.id}],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{API}/reorganisations",
        json={
            "effective_on": "2024-06-01",
            "title": "x",
            "steps": [{"op": "move", "unit": c.commune_a.id, "parent": c.province.id}],
        },
        headers=h,
    )
    assert r.status_code == 422 and "changed place on 2025-01-01" in r.json()["error"]["message"]


async def test_scope_out_of_subtree_is_404_and_a_viewer_is_403(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await country(tree)
    district_admin = tree.auth(await tree.user(("org_admin", c.district)))
    viewer = tree.auth(await tree.user(("viewer", c.province)))
    # Naming the other province (outside the caller's subtree) is a 404, as if it did not exist.
    r = await reorganise(
        client, district_admin, [{"op": "move", "unit": c.school.id, "parent": c.other_province.id}]
    )
    assert r.status_code == 404, r.text
    r = await reorganise(client, district_admin, [{"op": "move", "unit": c.school.id, "parent": 99999}])
    assert r.status_code == 404
    r = await reorganise(client, viewer, [{"op": "move", "unit": c.school.id, "parent": c.commune_b.id}])
    assert r.status_code == 403
    # Inside the subtree, an org_admin reorganises, and reads it back; a sibling does not see it.
    r = await reorganise(
        client, district_admin, [{"op": "merge", "units": [c.commune_b.id], "into": c.commune_a.id}]
    )
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert (await client.get(f"{API}/reorganisations/{rid}", headers=district_admin)).status_code == 200
    sibling = tree.auth(await tree.user(("org_admin", c.other_province)))
    assert (await client.get(f"{API}/reorganisations/{rid}", headers=sibling)).status_code == 404
    assert (await client.get(f"{API}/reorganisations", headers=sibling)).json()["total"] == 0


async def test_a_past_evaluation_year_keeps_its_unit_after_a_move(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    """The bug report: moving Đăk Ruồng out of Kon Rẫy today changed Kon Rẫy's reported 2024/2025."""
    c = await country(tree)
    h = c.admin
    before = await adults(client, h, c.district, 2024)
    r = await client.post(
        f"{API}/org-units/{c.commune_a.id}/move", json={"parent_id": c.other_province.id}, headers=h
    )
    assert r.status_code == 200, r.text
    assert await adults(client, h, c.district, 2024) == before
    assert (await adults(client, h, c.other_province, today().year))[1] == 7
    assert date.fromisoformat(REFORM) < today()


async def test_the_tree_as_of_a_day_keeps_the_names_of_that_day(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    """Tân Lập became Kon Braih on 1 July 2025, keeping its code: read as of 2024 it is still Tân Lập."""
    c = await country(tree)
    h = c.admin
    r = await reorganise(
        client,
        h,
        [
            {"op": "rename", "unit": c.commune_b.id, "name": "Xã Kon Braih"},
            {"op": "move", "unit": c.commune_b.id, "parent": c.other_province.id},
            {"op": "merge", "units": [c.commune_a.id], "into": c.commune_b.id},
        ],
    )
    assert r.status_code == 201, r.text

    async def named(day: str | None, parent: OrgUnit) -> list[tuple[str, str]]:
        params = {"parent_id": str(parent.id), **({"as_of": day} if day else {})}
        r = await client.get(f"{API}/org-units", params=params, headers=h)
        assert r.status_code == 200, r.text
        return sorted((u["name"], u["code"]) for u in r.json()["items"])

    assert await named("2024-12-31", c.district) == [("Xã Tân Lập", "23497"), ("Xã Đăk Ruồng", "23488")]
    assert await named(None, c.other_province) == [("Xã Kon Braih", "23497")]
    assert await named("2025-06-30", c.district) == [("Xã Tân Lập", "23497"), ("Xã Đăk Ruồng", "23488")]
    one = f"{API}/org-units/{c.commune_b.id}"
    then = (await client.get(one, params={"as_of": "2024-12-31"}, headers=h)).json()
    assert (then["name"], then["parent_id"]) == ("Xã Tân Lập", c.district.id)
    now = (await client.get(one, headers=h)).json()
    assert (now["name"], now["parent_id"]) == ("Xã Kon Braih", c.other_province.id)
    # A rename by PATCH takes effect today: yesterday keeps the name.
    r = await client.patch(
        f"{API}/org-units/{c.commune_b.id}", json={"name": "Xã Kon Braih (mới)"}, headers=h
    )
    assert r.status_code == 200 and r.json()["name"] == "Xã Kon Braih (mới)"
    assert await named("2025-12-31", c.other_province) == [("Xã Kon Braih", "23497")]


async def test_a_past_years_dashboards_name_the_units_as_they_were_then(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    """Breakdown, completeness and the annual report of 2024 list Tân Lập under its 2024 name, though it is
    Kon Braih since 1 July 2025 (the same rule as ``GET /org-units?as_of=``); 2025 reads today's name."""
    c = await country(tree)
    h = c.admin
    r = await reorganise(client, h, [{"op": "rename", "unit": c.commune_b.id, "name": "Xã Kon Braih"}])
    assert r.status_code == 201, r.text

    async def names(path: str, year: int, **params: object) -> set[str]:
        r = await client.get(
            f"{API}{path}", params={"org_unit_id": c.district.id, "year": year, **params}, headers=h
        )
        assert r.status_code == 200, r.text
        return {row["name"] for row in r.json()["items"]}

    metric = {"metric": "staff_recognised_pct"}
    assert "Xã Tân Lập" in await names("/aggregates/breakdown", 2024, **metric)
    assert "Xã Kon Braih" in await names("/aggregates/breakdown", 2025, **metric)
    assert "Xã Tân Lập" in await names("/reporting/completeness", 2024)
    assert "Xã Kon Braih" in await names("/reporting/completeness", 2025)
    assert "Xã Tân Lập" in await names("/reports/annual", 2024)
    assert "Xã Kon Braih" in await names("/reports/annual", 2025)


async def test_each_side_of_a_reform_reads_it_without_the_other_sides_ids(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    """The national reform names both provinces: each province reads the record (the reform that made
    it) but not the ids of units outside its scope."""
    c = await country(tree)
    r = await reorganise(
        client,
        c.admin,
        [
            {
                "op": "create",
                "ref": "kb",
                "name": "Xã Kon Braih",
                "kind": "commune",
                "parent": c.other_province.id,
            },
            {"op": "create", "ref": "x", "name": "Xã X", "kind": "commune", "parent": c.province.id},
        ],
    )
    assert r.status_code == 201, r.text
    created = r.json()["created"]
    other = tree.auth(await tree.user(("viewer", c.other_province)))
    listed = (await client.get(f"{API}/reorganisations", headers=other)).json()
    assert listed["total"] == 1
    seen = listed["items"][0]
    assert seen["created"] == {"kb": created["kb"]} and seen["org_unit_id"] is None
