"""Separation of duties (issue #14, item 6): on one evaluation, the user who fills it in for the person, the
user who reviews it and the user who signs its recognition are three different users — whatever roles one
user holds, admins included. A violation is 409 ``conflict`` naming the rule and what the same user did,
and changes nothing. Nobody grants a role to themself (403)."""

from __future__ import annotations

from typing import Any

import httpx

from app.auth.models import User
from app.orgs.models import OrgUnit
from tests.api.evaluation_flow import API, act, attach_evidence, get, self_assess, upload
from tests.builders import Tree

DIGITS = [9.0] * 10


async def _open(client: httpx.AsyncClient, tree: Tree, unit: OrgUnit, h: dict[str, str]) -> dict[str, Any]:
    person = await tree.person(unit, "staff")
    r = await client.post(f"{API}/evaluations", json={"person_id": person.id, "year": 2025}, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


async def _submitted(
    client: httpx.AsyncClient, tree: Tree, unit: OrgUnit, h: dict[str, str]
) -> dict[str, Any]:
    """An evaluation that ``h`` opened, self-assessed, gave evidence and submitted (for the person)."""
    ev = await self_assess(client, h, await _open(client, tree, unit, h), DIGITS)
    ev = await attach_evidence(client, h, ev)
    r = await act(client, h, ev["id"], "submit")
    assert r.status_code == 200, r.text
    return r.json()


def _refused(r: httpx.Response, evaluation_id: int, step: str, did: str, action: str) -> None:
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "conflict"
    assert error["message"].startswith("Separation of duties:"), error["message"]
    assert f"You {did} evaluation {evaluation_id}" in error["message"], error["message"]
    assert error["details"]["rule"] == "separation_of_duties"
    assert error["details"]["duty"] == step
    assert error["details"]["evaluation_id"] == evaluation_id
    assert error["details"]["done_by_you"]["action"] == action


def _decision(unit: OrgUnit, ids: list[int], number: str) -> dict[str, Any]:
    return {
        "org_unit_id": unit.id,
        "year": 2025,
        "number": number,
        "signed_on": "2025-12-20",
        "evaluation_ids": ids,
    }


async def test_an_org_admin_holding_every_role_cannot_take_an_evaluation_to_recognised_alone(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    unit = await tree.unit("Trường MN", "school")
    # The loophole of the issue: one user who administers the school and is its assessor and approver.
    everything = tree.auth(await tree.user(("org_admin", unit), ("assessor", unit), ("approver", unit)))
    ev = await _submitted(client, tree, unit, everything)

    before = await tree.snapshot()
    review = {"version": ev["version"], "scores": []}
    r = await client.put(f"{API}/evaluations/{ev['id']}/review", json=review, headers=everything)
    _refused(r, ev["id"], "review", "self-assessed", "self_assessed")
    r = await act(client, everything, ev["id"], "return", {"reason": "Bổ sung"})
    _refused(r, ev["id"], "review", "self-assessed", "self_assessed")
    r = await act(client, everything, ev["id"], "complete-review")
    _refused(r, ev["id"], "review", "self-assessed", "self_assessed")
    assert await tree.snapshot() == before, "a refused step changed the database"

    # Another assessor reviews; the one who filled it in still cannot sign it, nor can the reviewer.
    assessor_user = await tree.user(("assessor", unit), ("approver", unit))
    assessor = tree.auth(assessor_user)
    r = await act(client, assessor, ev["id"], "complete-review")
    assert r.status_code == 200 and r.json()["status"] == "reviewed", r.text
    before = await tree.snapshot()
    r = await client.post(
        f"{API}/recognition-decisions", json=_decision(unit, [ev["id"]], "1/QĐ"), headers=everything
    )
    _refused(r, ev["id"], "sign", "self-assessed", "self_assessed")
    r = await client.post(
        f"{API}/recognition-decisions", json=_decision(unit, [ev["id"]], "1/QĐ"), headers=assessor
    )
    _refused(r, ev["id"], "sign", "completed the review of", "review_completed")
    assert await tree.snapshot() == before, "a refused decision changed the database"

    # A third user signs: the history names three different users for the three duties.
    r = await client.post(
        f"{API}/recognition-decisions",
        json=_decision(unit, [ev["id"]], "1/QĐ"),
        headers=tree.auth(await tree.user(("approver", unit))),
    )
    assert r.status_code == 201, r.text
    history = (await client.get(f"{API}/evaluations/{ev['id']}/history", headers=assessor)).json()
    by_action = {entry["action"]: entry["actor_user_id"] for entry in history}
    assert len({by_action["submitted"], by_action["review_completed"], by_action["recognised"]}) == 3
    assert by_action["review_completed"] == assessor_user.id


async def test_a_system_administrator_is_bound_too(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    unit = await tree.unit("Trường MN", "school")
    admin = tree.auth(await tree.admin())
    ev = await _submitted(client, tree, unit, admin)
    r = await act(client, admin, ev["id"], "complete-review")
    _refused(r, ev["id"], "review", "self-assessed", "self_assessed")
    other_admin = tree.auth(await tree.admin())
    assert (await act(client, other_admin, ev["id"], "complete-review")).status_code == 200
    r = await client.post(
        f"{API}/recognition-decisions", json=_decision(unit, [ev["id"]], "2/QĐ"), headers=other_admin
    )
    _refused(r, ev["id"], "sign", "completed the review of", "review_completed")


async def test_whoever_added_evidence_or_submitted_counts_as_filling_in(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    unit = await tree.unit("Trường MN", "school")
    clerk = tree.auth(await tree.user(("org_admin", unit)))
    ev = await self_assess(client, clerk, await _open(client, tree, unit, clerk), DIGITS)
    # Evidence by one org_admin who is also an assessor, submission by another who is one too.
    uploader = tree.auth(await tree.user(("org_admin", unit), ("assessor", unit)))
    for score in ev["scores"]:
        assert (await upload(client, uploader, ev["id"], score["indicator_id"])).status_code == 201
    submitter = tree.auth(await tree.user(("org_admin", unit), ("assessor", unit)))
    assert (await act(client, submitter, ev["id"], "submit")).status_code == 200
    _refused(
        await act(client, uploader, ev["id"], "complete-review"),
        ev["id"],
        "review",
        "added evidence to",
        "evidence_added",
    )
    _refused(
        await act(client, submitter, ev["id"], "complete-review"),
        ev["id"],
        "review",
        "submitted",
        "submitted",
    )
    assessor = tree.auth(await tree.user(("assessor", unit)))
    assert (await act(client, assessor, ev["id"], "complete-review")).status_code == 200


async def test_a_reviewer_cannot_then_fill_in_for_the_person(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    unit = await tree.unit("Trường MN", "school")
    clerk = tree.auth(await tree.user(("org_admin", unit)))
    ev = await _submitted(client, tree, unit, clerk)
    # An assessor who is also an org_admin returns it, then would correct it on the person's behalf.
    both = tree.auth(await tree.user(("org_admin", unit), ("assessor", unit)))
    r = await act(client, both, ev["id"], "return", {"reason": "Bổ sung minh chứng"})
    assert r.status_code == 200, r.text
    ev = r.json()
    before = await tree.snapshot()
    scores = [{"indicator_id": s["indicator_id"], "score": 10} for s in ev["scores"]]
    r = await client.put(
        f"{API}/evaluations/{ev['id']}/self-assessment",
        json={"version": ev["version"], "scores": scores},
        headers=both,
    )
    _refused(r, ev["id"], "edit", "returned", "returned")
    assert "so you cannot also fill it in for the person" in r.json()["error"]["message"]
    r = await upload(client, both, ev["id"], ev["scores"][0]["indicator_id"])
    _refused(r, ev["id"], "edit", "returned", "returned")
    _refused(await act(client, both, ev["id"], "submit"), ev["id"], "edit", "returned", "returned")
    assert await tree.snapshot() == before
    # The clerk corrects and resubmits; a different assessor, or the one who returned it, reviews.
    ev = await self_assess(client, clerk, await get(client, clerk, ev["id"]), [10.0] * 10)
    assert (await act(client, clerk, ev["id"], "submit")).status_code == 200
    assert (await act(client, both, ev["id"], "complete-review")).status_code == 200


async def test_one_conflicting_evaluation_refuses_the_whole_decision(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    unit = await tree.unit("Trường MN", "school")
    clerk = tree.auth(await tree.user(("org_admin", unit)))
    assessor = tree.auth(await tree.user(("assessor", unit)))
    signer = tree.auth(await tree.user(("assessor", unit), ("approver", unit)))
    first = await _submitted(client, tree, unit, clerk)
    second = await _submitted(client, tree, unit, clerk)
    assert (await act(client, assessor, first["id"], "complete-review")).status_code == 200
    assert (await act(client, signer, second["id"], "complete-review")).status_code == 200
    before = await tree.snapshot()
    body = _decision(unit, [first["id"], second["id"]], "3/QĐ")
    r = await client.post(f"{API}/recognition-decisions", json=body, headers=signer)
    _refused(r, second["id"], "sign", "completed the review of", "review_completed")
    assert await tree.snapshot() == before, "nothing is recognised when one evaluation conflicts"
    body["evaluation_ids"] = [first["id"]]
    assert (await client.post(f"{API}/recognition-decisions", json=body, headers=signer)).status_code == 201


async def test_the_person_themself_fills_in_and_two_others_review_and_sign(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    unit = await tree.unit("Trường MN", "school")
    member_user = await tree.user(("member", unit))
    person = await tree.person(unit, "staff", user=member_user)
    member = tree.auth(member_user)
    r = await client.post(f"{API}/evaluations", json={"person_id": person.id, "year": 2025}, headers=member)
    assert r.status_code == 201, r.text
    ev = await attach_evidence(client, member, await self_assess(client, member, r.json(), DIGITS))
    assert (await act(client, member, ev["id"], "submit")).status_code == 200
    assert (
        await act(client, tree.auth(await tree.user(("assessor", unit))), ev["id"], "complete-review")
    ).status_code == 200
    approver = tree.auth(await tree.user(("approver", unit)))
    r = await client.post(
        f"{API}/recognition-decisions", json=_decision(unit, [ev["id"]], "4/QĐ"), headers=approver
    )
    assert r.status_code == 201, r.text


async def test_nobody_grants_a_role_to_themself(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit("Trường MN", "school")
    org_admin: User = await tree.user(("org_admin", unit))
    admin = await tree.admin()
    other = await tree.user(("member", unit))
    before = await tree.snapshot()
    for role in ("assessor", "approver", "org_admin"):
        r = await client.post(
            f"{API}/users/{org_admin.id}/roles",
            json={"role": role, "org_unit_id": unit.id},
            headers=tree.auth(org_admin),
        )
        assert r.status_code == 403, (role, r.text)
        assert r.json()["error"]["code"] == "forbidden"
    r = await client.post(
        f"{API}/users/{admin.id}/roles",
        json={"role": "assessor", "org_unit_id": unit.id},
        headers=tree.auth(admin),
    )
    assert r.status_code == 403, r.text
    assert await tree.snapshot() == before
    # Granting to someone else stays allowed.
    r = await client.post(
        f"{API}/users/{other.id}/roles",
        json={"role": "assessor", "org_unit_id": unit.id},
        headers=tree.auth(org_admin),
    )
    assert r.status_code == 201, r.text
