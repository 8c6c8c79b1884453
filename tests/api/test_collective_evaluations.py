"""Collective titles on the personal workflow (API.md "Collective titles"): a learning family, clan,
community and unit are self-assessed with evidence, reviewed by a committee (the level above, for a
unit), recognised by a decision and revoked — and the shares of the plans follow. Plus the digital level
as the person declares it and the assessor confirms it, and the bad input that writes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.core.dates import ONE_DAY, today
from app.orgs import history
from tests.api.evaluation_flow import act, attach_evidence, get, upload
from tests.builders import Tree

pytestmark = pytest.mark.anyio

API = "/api/v1"


async def _progress(client: httpx.AsyncClient, h: dict[str, str], unit_id: int) -> dict[str, Any]:
    r = await client.get(
        f"{API}/aggregates/progress", params={"org_unit_id": unit_id, "year": 2025}, headers=h
    )
    assert r.status_code == 200, r.text
    return {m["metric"]: m for m in r.json()["metrics"]}


async def _self_assess(
    client: httpx.AsyncClient, h: dict[str, str], evaluation: dict[str, Any], share: float = 0.9, **extra: Any
) -> dict[str, Any]:
    """Every indicator at ``share`` of its maximum (rounded to half points), with evidence for each."""
    criteria = (await client.get(f"{API}/criteria-sets/{evaluation['criteria_set_id']}", headers=h)).json()
    maximum = {i["id"]: i["max_points"] for c in criteria["criteria"] for i in c["indicators"]}
    scores = [
        {"indicator_id": s["indicator_id"], "score": round(maximum[s["indicator_id"]] * share * 2) / 2}
        for s in evaluation["scores"]
    ]
    r = await client.put(
        f"{API}/evaluations/{evaluation['id']}/self-assessment",
        json={"version": evaluation["version"], "scores": scores, **extra},
        headers=h,
    )
    assert r.status_code == 200, r.text
    return await attach_evidence(client, h, r.json())


async def _review_and_complete(
    client: httpx.AsyncClient, h: dict[str, str], evaluation_id: int
) -> dict[str, Any]:
    assert (await act(client, h, evaluation_id, "complete-review")).status_code == 200
    return await get(client, h, evaluation_id)


async def test_a_learning_family_goes_through_the_workflow_and_moves_the_plans_shares(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    province = await tree.unit("Tỉnh", "province")
    commune = await tree.unit("Xã", "commune", province)
    village = await tree.unit("Thôn 1", "village", commune)
    parent, grandmother, child = (
        await tree.person(village, "resident", birth_year=1985),
        await tree.person(village, "resident", birth_year=1950),
        await tree.person(village, "resident", birth_year=2015),
    )
    await tree.evaluation(parent, 2025, "recognised")
    household = await tree.household(village, [parent, grandmother, child])
    admin = tree.auth(await tree.user(("org_admin", commune)))
    assessor = tree.auth(await tree.user(("assessor", commune)))
    approver = tree.auth(await tree.user(("approver", commune)))
    viewer = tree.auth(await tree.user(("viewer", province)))

    r = await client.post(
        f"{API}/evaluations",
        json={"title": "learning_family", "household_id": household.id, "year": 2025},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    evaluation = r.json()
    assert (evaluation["title"], evaluation["household_id"], evaluation["person_id"]) == (
        "learning_family",
        household.id,
        None,
    )
    assert evaluation["org_unit_id"] == village.id
    r = await client.post(
        f"{API}/evaluations",
        json={"title": "learning_family", "household_id": household.id, "year": 2025},
        headers=admin,
    )
    assert r.status_code == 409  # one evaluation per household and year

    evaluation = await _self_assess(client, admin, evaluation)
    assert evaluation["running_result"]["digital_level"] is None  # not a personal title
    assert (await act(client, admin, evaluation["id"], "submit")).status_code == 200
    done = await _review_and_complete(client, assessor, evaluation["id"])
    assert done["result"]["passed"] is True and done["status"] == "reviewed"

    before = await _progress(client, viewer, province.id)
    assert (before["learning_families_pct"]["numerator"], before["learning_families_pct"]["denominator"]) == (
        0,
        1,
    )
    r = await client.post(
        f"{API}/recognition-decisions",
        json={
            "org_unit_id": commune.id,
            "year": 2025,
            "number": "7/QĐ-UBND",
            "signed_on": "2025-12-20",
            "evaluation_ids": [evaluation["id"]],
        },
        headers=approver,
    )
    assert r.status_code == 201, r.text
    decision = r.json()
    after = await _progress(client, viewer, province.id)
    assert (after["learning_families_pct"]["numerator"], after["learning_families_pct"]["denominator"]) == (
        1,
        1,
    )
    # The two adults of the recognised family (the child of 2015 is not one), one of them recognised.
    qualified = after["adults_in_learning_collectives_recognised_pct"]
    assert (qualified["numerator"], qualified["denominator"], qualified["actual"]) == (1, 2, 50.0)

    r = await client.post(
        f"{API}/recognition-decisions/{decision['id']}/revoke", json={"reason": "Sai hồ sơ"}, headers=approver
    )
    assert r.status_code == 200, r.text
    revoked = await _progress(client, viewer, province.id)
    assert revoked["learning_families_pct"]["numerator"] == 0
    assert revoked["adults_in_learning_collectives_recognised_pct"]["denominator"] == 0
    history_ = (await client.get(f"{API}/evaluations/{evaluation['id']}/history", headers=admin)).json()
    assert [e["action"] for e in history_][-2:] == ["recognised", "recognition_revoked"]


async def test_a_member_may_prepare_the_familys_evaluation_but_never_review_it(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    commune = await tree.unit("Xã", "commune")
    user = await tree.user(("assessor", commune))
    member = await tree.person(commune, "resident", user=user)
    household = await tree.household(commune, [member])
    mine = tree.auth(user)
    r = await client.post(
        f"{API}/evaluations",
        json={"title": "learning_family", "household_id": household.id, "year": 2025},
        headers=mine,
    )
    assert r.status_code == 201, r.text
    evaluation = await _self_assess(client, mine, r.json())
    assert (await act(client, mine, evaluation["id"], "submit")).status_code == 200
    r = await act(client, mine, evaluation["id"], "complete-review")
    assert r.status_code == 403  # an assessor never reviews their own family's evaluation


async def test_a_learning_unit_is_reviewed_and_recognised_by_the_level_above(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    commune = await tree.unit("Xã", "commune")
    school = await tree.unit("Trường TH", "school", commune)
    staff = [await tree.person(school, "staff") for _ in range(3)]
    await tree.evaluation(staff[0], 2025, "recognised")
    school_admin = tree.auth(await tree.user(("org_admin", school)))
    school_assessor = tree.auth(await tree.user(("assessor", school)))
    commune_assessor = tree.auth(await tree.user(("assessor", commune)))
    commune_approver = tree.auth(await tree.user(("approver", commune), ("approver", school)))
    viewer = tree.auth(await tree.user(("viewer", commune)))

    r = await client.post(
        f"{API}/evaluations",
        json={"title": "learning_unit", "org_unit_id": school.id, "year": 2025},
        headers=school_admin,
    )
    assert r.status_code == 201, r.text
    evaluation = await _self_assess(client, school_admin, r.json(), share=1.0)
    assert (await act(client, school_admin, evaluation["id"], "submit")).status_code == 200
    # The school's own committee does not review the school.
    assert (await act(client, school_assessor, evaluation["id"], "complete-review")).status_code == 403
    done = await _review_and_complete(client, commune_assessor, evaluation["id"])
    assert done["result"]["passed"] is True
    assert done["result"]["level"] is not None  # the learning-unit set is graded

    body = {"year": 2025, "number": "3/QĐ", "signed_on": "2025-12-20", "evaluation_ids": [evaluation["id"]]}
    r = await client.post(
        f"{API}/recognition-decisions", json={**body, "org_unit_id": school.id}, headers=commune_approver
    )
    assert r.status_code == 409  # a unit is not recognised by itself
    r = await client.post(
        f"{API}/recognition-decisions", json={**body, "org_unit_id": commune.id}, headers=commune_approver
    )
    assert r.status_code == 201, r.text
    rows = await _progress(client, viewer, commune.id)
    assert (rows["learning_units_pct"]["numerator"], rows["learning_units_pct"]["denominator"]) == (1, 1)
    qualified = rows["staff_in_learning_units_recognised_pct"]
    assert (qualified["numerator"], qualified["denominator"]) == (1, 3)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"title": "learning_unit", "person_id": 1, "year": 2025}, 422),  # a unit title names a unit
        ({"title": "learning_family", "household_id": 1, "person_id": 1, "year": 2025}, 422),  # two subjects
        ({"title": "learning_club", "org_unit_id": 1, "year": 2025}, 422),  # no such title
    ],
)
async def test_a_collective_evaluation_names_exactly_its_subject(
    client: httpx.AsyncClient, tree: Tree, body: dict[str, Any], status: int
) -> None:
    commune = await tree.unit("Xã", "commune")
    h = tree.auth(await tree.user(("org_admin", commune)))
    before = await tree.snapshot()
    r = await client.post(f"{API}/evaluations", json=body, headers=h)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == "validation_error"
    assert await tree.snapshot() == before


async def test_a_collective_evaluation_of_an_ended_unit_or_the_wrong_kind_writes_nothing(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    commune = await tree.unit("Xã", "commune")
    village = await tree.unit("Thôn cũ", "village", commune)
    other = await tree.unit("Thôn mới", "village", commune)
    admin = tree.auth(await tree.user(("org_admin", commune)))
    # The old village merged into the new one last year: no evaluation of this year.
    from datetime import date

    await history.end(tree.session, village, other, date(today().year, 1, 1), None)
    await tree.session.commit()
    before = await tree.snapshot()
    r = await client.post(
        f"{API}/evaluations",
        json={"title": "learning_community", "org_unit_id": village.id, "year": today().year},
        headers=admin,
    )
    assert r.status_code == 409, r.text
    assert (date(today().year, 1, 1) - ONE_DAY).isoformat() in r.json()["error"]["message"]
    r = await client.post(
        f"{API}/evaluations",
        json={"title": "learning_unit", "org_unit_id": commune.id, "year": 2025},
        headers=admin,
    )
    assert r.status_code == 422, r.text  # a commune is not an agency, school or enterprise
    assert await tree.snapshot() == before


async def test_a_household_has_no_evaluation_of_a_year_before_it_was_recorded(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    commune = await tree.unit("Xã", "commune")
    admin = tree.auth(await tree.user(("org_admin", commune)))
    person = await tree.person(commune, "resident")
    r = await client.post(
        f"{API}/households",
        json={"name": "Hộ mới", "org_unit_id": commune.id, "member_ids": [person.id]},
        headers=admin,
    )
    assert r.status_code == 201, r.text  # recorded from 1 January of this year
    household = r.json()
    before = await tree.snapshot()
    body = {"title": "learning_family", "household_id": household["id"]}
    r = await client.post(f"{API}/evaluations", json={**body, "year": today().year - 1}, headers=admin)
    assert r.status_code == 409, r.text
    assert await tree.snapshot() == before
    r = await client.post(f"{API}/evaluations", json={**body, "year": today().year}, headers=admin)
    assert r.status_code == 201, r.text


async def test_the_digital_level_is_declared_confirmed_and_needs_evidence(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await tree.unit("Trường", "school")
    admin = tree.auth(await tree.user(("org_admin", school)))
    assessor = tree.auth(await tree.user(("assessor", school)))

    async def evaluated(
        declared: str | None, review: str | None, skip_digital_evidence: bool
    ) -> dict[str, Any]:
        person = await tree.person(school, "staff")
        r = await client.post(
            f"{API}/evaluations", json={"person_id": person.id, "year": 2025}, headers=admin
        )
        evaluation = r.json()
        scores = [{"indicator_id": s["indicator_id"], "score": 9} for s in evaluation["scores"]]
        extra = {"digital_level": declared} if declared else {}
        r = await client.put(
            f"{API}/evaluations/{evaluation['id']}/self-assessment",
            json={"version": evaluation["version"], "scores": scores, **extra},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        evaluation = r.json()
        for s in evaluation["scores"]:
            if not (skip_digital_evidence and s["number"] == 5):
                assert (await upload(client, admin, evaluation["id"], s["indicator_id"])).status_code == 201
        assert (await act(client, admin, evaluation["id"], "submit")).status_code == 200
        evaluation = await get(client, assessor, evaluation["id"])
        if review:
            r = await client.put(
                f"{API}/evaluations/{evaluation['id']}/review",
                json={"version": evaluation["version"], "digital_level": review},
                headers=assessor,
            )
            assert r.status_code == 200, r.text
        return await _review_and_complete(client, assessor, evaluation["id"])

    # 9 points everywhere: the old thresholds would have said "proficient" for everyone.
    assert (await evaluated(None, None, False))["result"]["digital_level"] == "none"
    assert (await evaluated("basic", None, False))["result"]["digital_level"] == "basic"
    confirmed = await evaluated("proficient", "basic", False)  # the assessor lowers it
    assert (confirmed["declared_digital_level"], confirmed["reviewed_digital_level"]) == (
        "proficient",
        "basic",
    )
    assert confirmed["result"]["digital_level"] == "basic"
    # No evidence on the digital indicator: it scores 0, the person fails, and the level counts as none.
    unbacked = await evaluated("proficient", None, True)
    assert unbacked["result"]["digital_level"] == "none"
    assert unbacked["result"]["passed"] is False


async def test_a_village_created_with_its_first_day_leaves_past_years_alone(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    """A unit registered without ``valid_from`` always existed (an organisation being recorded); a new
    village gives its first day, so last year's count of villages does not change."""
    commune = await tree.unit("Xã", "commune")
    await tree.evaluation(await tree.person(commune, "resident"), today().year - 1, "reviewed")  # data
    admin = tree.auth(await tree.user(("org_admin", commune)))
    viewer = tree.auth(await tree.user(("viewer", commune)))

    async def villages(year: int) -> int:
        r = await client.get(
            f"{API}/aggregates/progress", params={"org_unit_id": commune.id, "year": year}, headers=viewer
        )
        return {m["metric"]: m for m in r.json()["metrics"]}["learning_communities_pct"]["denominator"]

    body = {"name": "Thôn cũ", "kind": "village", "parent_id": commune.id}
    assert (await client.post(f"{API}/org-units", json=body, headers=admin)).status_code == 201
    new = {**body, "name": "Thôn mới", "valid_from": today().isoformat()}
    assert (await client.post(f"{API}/org-units", json=new, headers=admin)).status_code == 201
    assert (await villages(today().year - 1), await villages(today().year)) == (1, 2)
    future = {**body, "name": "Thôn sau", "valid_from": (today() + ONE_DAY).isoformat()}
    assert (await client.post(f"{API}/org-units", json=future, headers=admin)).status_code == 422


async def test_staff_below_two_nested_learning_units_count_once(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    # The department has a province above it: the level above signs a unit's recognition.
    department = await tree.unit("Sở", "agency", await tree.unit("Tỉnh", "province"))
    office = await tree.unit("Phòng", "agency", department)
    await tree.evaluation(await tree.person(office, "staff"), 2025, "recognised")
    for unit in (department, office):
        await tree.collective_evaluation("learning_unit", unit, 2025, "recognised")
    h = tree.auth(await tree.user(("viewer", department)))
    rows = await _progress(client, h, department.id)
    row = rows["staff_in_learning_units_recognised_pct"]
    assert (row["numerator"], row["denominator"]) == (1, 1)
    assert (rows["learning_units_pct"]["numerator"], rows["learning_units_pct"]["denominator"]) == (2, 2)
