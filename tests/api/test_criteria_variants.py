"""Criteria sets over HTTP: the read shape of API.md, and local variants (the MN Tam Hưng A case: set IV
with indicators 6 and 7 taken from the framework set I), who may create them, and which set a new
evaluation gets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.evaluation_flow import API, make_school, open_evaluation
from tests.builders import Tree

pytestmark = pytest.mark.anyio

SET_KEYS = {
    "id",
    "code",
    "title",
    "group",
    "version",
    "status",
    "max_total",
    "pass_total",
    "min_indicator",
    "criteria",
    "recognises",
    "grades",
    "digital_thresholds",
}
INDICATOR_KEYS = {"id", "number", "title", "max_points", "evidence_hint", "digital"}


def indicators(criteria_set: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {i["number"]: i for c in criteria_set["criteria"] for i in c["indicators"]}


async def test_the_staff_set_reads_as_api_md_says(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    h = tree.auth(await tree.user(("member", await tree.unit())))  # programme data: any signed-in user
    listed = await client.get(f"{API}/criteria-sets?group=staff", headers=h)
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()["items"]] == [criteria["staff"]]
    assert listed.json()["total"] == 1
    r = await client.get(f"{API}/criteria-sets/{criteria['staff']}", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= SET_KEYS
    assert (body["code"], body["group"], body["version"], body["status"]) == (
        "KHVN-324-IV",
        "staff",
        2,  # v2: the digital level is declared and confirmed, no longer derived from thresholds
        "active",
    )
    assert (body["max_total"], body["pass_total"], body["min_indicator"]) == (100, 80, 5)
    # A personal, ungraded set with no digital score floors.
    assert (body["recognises"], body["grades"], body["digital_thresholds"]) == (
        "learning_citizen",
        None,
        None,
    )
    assert [c["number"] for c in body["criteria"]] == [1, 2, 3]
    assert {frozenset(c) for c in body["criteria"]} == {frozenset({"number", "title", "indicators"})}
    for indicator in indicators(body).values():
        assert set(indicator) == INDICATOR_KEYS
        assert indicator["max_points"] == 10
        assert isinstance(indicator["digital"], bool)
        assert indicator["evidence_hint"]
    assert [c["number"] for c in body["criteria"] for _ in c["indicators"]] == [1] * 4 + [2] * 4 + [3] * 2
    assert [n for n, i in indicators(body).items() if i["digital"]] == [5]
    assert body["frozen"] is False
    assert (await client.get(f"{API}/criteria-sets/2000000000", headers=h)).status_code == 404
    assert (await client.get(f"{API}/criteria-sets?group=teacher", headers=h)).status_code == 422
    assert (await client.get(f"{API}/criteria-sets/{criteria['staff']}")).status_code == 401


def variant_body(parent: int, framework: int, unit_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "parent_id": parent,
        "org_unit_id": unit_id,
        "code": "MNTHA-IV-2025",
        "title": "Bộ tiêu chí CDHT – MN Tam Hưng A (Phụ lục IV, chỉ tiêu 6, 7 theo Phụ lục I)",
        "substitutions": [
            {"number": 6, "source_set_id": framework},
            {"number": 7, "source_set_id": framework},
        ],
        **extra,
    }


async def test_the_tam_hung_a_variant_is_used_by_its_staff_only(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    district = await tree.unit("Huyện Thanh Oai", "district")
    school = await make_school(tree, district, "Trường MN Tam Hưng A")
    other = await make_school(tree, district, "Trường MN Tam Hưng B")
    r = await client.post(
        f"{API}/criteria-sets",
        json=variant_body(criteria["staff"], criteria[None], school.unit.id),
        headers=school.admin,
    )
    assert r.status_code == 201, r.text
    variant = r.json()
    parent = (await client.get(f"{API}/criteria-sets/{criteria['staff']}", headers=school.admin)).json()
    framework = (await client.get(f"{API}/criteria-sets/{criteria[None]}", headers=school.admin)).json()
    assert (variant["group"], variant["parent_id"], variant["org_unit_id"]) == (
        "staff",
        parent["id"],
        school.unit.id,
    )
    mine, iv, i = indicators(variant), indicators(parent), indicators(framework)
    for n in range(1, 11):
        source = i if n in (6, 7) else iv
        assert (mine[n]["title"], mine[n]["evidence_hint"]) == (
            source[n]["title"],
            source[n]["evidence_hint"],
        ), n
        assert mine[n]["id"] not in {iv[n]["id"], i[n]["id"]}  # its own rows: the parent stays untouched
    assert iv[6]["title"] != i[6]["title"]
    assert sum(x["max_points"] for x in mine.values()) == 100

    dept = await tree.unit("Tổ chuyên môn", "unit", school.unit)
    for unit, expected in (
        (school.unit, variant["id"]),
        (dept, variant["id"]),
        (other.unit, criteria["staff"]),
    ):
        admin = school.admin if unit is not other.unit else other.admin
        person = await tree.person(unit, "staff")
        r = await client.post(
            f"{API}/evaluations", json={"person_id": person.id, "year": 2025}, headers=admin
        )
        assert r.status_code == 201, r.text
        assert r.json()["criteria_set_id"] == expected, unit.name
        assert {s["indicator_id"] for s in r.json()["scores"]} == {
            x["id"]
            for x in indicators(
                (await client.get(f"{API}/criteria-sets/{expected}", headers=admin)).json()
            ).values()
        }
    # Residents of the school's unit are not staff: the variant is for the staff group only.
    resident = await open_evaluation(client, tree, school, await tree.person(school.unit, "resident"))
    assert resident["criteria_set_id"] == criteria["resident"]
    listed = (await client.get(f"{API}/criteria-sets?group=staff", headers=school.admin)).json()
    assert {s["id"] for s in listed["items"]} == {criteria["staff"], variant["id"]}
    shown = (await client.get(f"{API}/criteria-sets/{variant['id']}", headers=school.admin)).json()
    assert shown["frozen"] is True


@pytest.mark.parametrize("role", ["viewer", "assessor", "approver", "member"])
async def test_only_an_org_admin_creates_variants(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int], role: str
) -> None:
    unit = await tree.unit("Trường", "school")
    h = tree.auth(await tree.user((role, unit)))
    r = await client.post(
        f"{API}/criteria-sets", json=variant_body(criteria["staff"], criteria[None], unit.id), headers=h
    )
    assert r.status_code == 403
    listed = (await client.get(f"{API}/criteria-sets?group=staff", headers=h)).json()
    assert listed["total"] == 1


async def test_a_variant_for_a_unit_out_of_scope_is_404(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    district = await tree.unit("Huyện", "district")
    school = await make_school(tree, district)
    sibling = await tree.unit("Trường khác", "school", district)
    answers = []
    for unit_id in (sibling.id, 2_000_000_000):
        body = variant_body(criteria["staff"], criteria[None], unit_id)
        r = await client.post(f"{API}/criteria-sets", json=body, headers=school.admin)
        answers.append((r.status_code, r.json()["error"]["message"].replace(str(unit_id), "<id>")))
    assert answers == [(404, "Org unit <id> not found.")] * 2
    r = await client.post(
        f"{API}/criteria-sets",
        json=variant_body(criteria["staff"], criteria[None], district.id),
        headers=school.admin,
    )
    assert r.status_code == 404  # above her own unit: outside her subtree
    listed = (await client.get(f"{API}/criteria-sets?group=staff", headers=school.admin)).json()
    assert listed["total"] == 1


MALFORMED = {
    "unknown field": {"frozen": True},
    "server-set version": {"version": 7},
    "no substitution": {"substitutions": []},
    "bad code": {"code": "mã có dấu cách"},
    "unknown nested field": {"substitutions": [{"number": 6, "source_set_id": 1, "colour": "red"}]},
    "missing parent": {"parent_id": None},
}


async def test_a_malformed_variant_is_422(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    for label, change in MALFORMED.items():
        body = {**variant_body(criteria["staff"], criteria[None], school.unit.id), **change}
        r = await client.post(f"{API}/criteria-sets", json=body, headers=school.admin)
        assert r.status_code == 422, label
        assert r.json()["error"]["code"] == "validation_error", label
    assert (await client.get(f"{API}/criteria-sets?group=staff", headers=school.admin)).json()["total"] == 1


async def test_a_variant_code_is_unique_and_substitutions_must_exist(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    body = variant_body(criteria["staff"], criteria[None], school.unit.id)
    assert (await client.post(f"{API}/criteria-sets", json=body, headers=school.admin)).status_code == 201
    again = await client.post(f"{API}/criteria-sets", json=body, headers=school.admin)
    assert again.status_code == 409
    bad = {**body, "code": "MNTHA-X", "substitutions": [{"number": 11, "source_set_id": criteria[None]}]}
    assert (await client.post(f"{API}/criteria-sets", json=bad, headers=school.admin)).status_code == 409
    assert (await client.get(f"{API}/criteria-sets?group=staff", headers=school.admin)).json()["total"] == 2


async def test_a_set_used_by_an_evaluation_shows_frozen(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    before = (await client.get(f"{API}/criteria-sets/{criteria['worker']}", headers=school.admin)).json()
    assert before["frozen"] is False
    await open_evaluation(client, tree, school, await tree.person(school.unit, "worker"))
    after = (await client.get(f"{API}/criteria-sets/{criteria['worker']}", headers=school.admin)).json()
    assert after["frozen"] is True
    listed = (await client.get(f"{API}/criteria-sets", headers=school.admin)).json()
    assert {s["code"]: s["frozen"] for s in listed["items"]} == {
        "KHVN-324-I": False,
        "KHVN-324-II": False,
        "KHVN-324-III": True,
        "KHVN-324-IV": False,
        "KHVN-324-V": False,
        # The four collective sets (family, clan, community, learning unit), unused here.
        "KHVN-GDHT": False,
        "KHVN-DHHT": False,
        "KHVN-CDHT-THON": False,
        "TT-24-2023-DVHT": False,
    }
