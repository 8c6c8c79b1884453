"""The rules of the evaluation workflow over HTTP: score boundaries, input checks, every illegal transition,
frozen recognised evaluations, stale versions, conflicts of interest, all-or-nothing decisions and roles."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.evaluations.models import Status
from app.evaluations.workflow import EDITABLE, TRANSITIONS
from tests.api.evaluation_flow import (
    API,
    act,
    attach_evidence,
    by_number,
    drive_to,
    get,
    make_school,
    open_evaluation,
    self_assess,
    sign,
    upload,
)
from tests.builders import Tree

pytestmark = pytest.mark.anyio  # before collection, so parametrisation combines with anyio's


# --- the 80 / 5 boundaries, end to end ------------------------------------------------------------------


def _result(total: float, passed: bool, failing: list[int], digital: str) -> dict[str, Any]:
    # A personal set is not graded: "level" is always null.
    return {
        "total": total,
        "passed": passed,
        "failing_indicators": failing,
        "digital_level": digital,
        "level": None,
    }


# The digital level is the one the person declares (no assessor change here), independent of passing and of
# the scores; it counts as none without accepted evidence on indicator 5, or without a declaration.
@pytest.mark.parametrize(
    ("points", "without_evidence", "declared", "expected"),
    [
        pytest.param(
            [5, 7.5, 7.5, 10, 10, 10, 10, 10, 5, 5],
            frozenset(),
            "proficient",
            _result(80.0, True, [], "proficient"),
            id="exactly-80-all-at-least-5-passes",
        ),
        pytest.param(
            [5, 7, 7.5, 10, 10, 10, 10, 10, 5, 5],
            frozenset(),
            "proficient",
            _result(79.5, False, [], "proficient"),  # failing does not lower the declared level
            id="79.5-fails",
        ),
        pytest.param(
            [9, 9, 9, 9, 9, 9, 4, 9, 9, 9],
            frozenset(),
            "basic",
            _result(85.0, False, [7], "basic"),
            id="85-with-a-4-fails",
        ),
        pytest.param(
            [10] * 10,
            frozenset({3}),
            "proficient",
            _result(90.0, False, [3], "proficient"),  # evidence is missing on 3, not on the digital 5
            id="a-10-without-evidence-counts-0",
        ),
        pytest.param(
            [10, 10, 10, 10, 5, 10, 10, 10, 10, 10],
            frozenset(),
            "proficient",
            _result(95.0, True, [], "proficient"),  # 5 on the digital indicator: no score floor in v2
            id="digital-5-declared-proficient-is-proficient",
        ),
        pytest.param(
            [10] * 10,
            frozenset(),
            None,
            _result(100.0, True, [], "none"),  # full marks, nothing declared
            id="nothing-declared-is-none",
        ),
        pytest.param(
            [10] * 10,
            frozenset({5}),
            "proficient",
            _result(90.0, False, [5], "none"),  # no accepted evidence on the digital indicator
            id="declared-without-digital-evidence-is-none",
        ),
    ],
)
async def test_result_at_the_boundaries(
    client: httpx.AsyncClient,
    tree: Tree,
    criteria: dict[str | None, int],
    points: list[float],
    without_evidence: frozenset[int],
    declared: str | None,
    expected: dict[str, Any],
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    ev = await self_assess(client, school.admin, ev, points, digital_level=declared)
    assert (ev["declared_digital_level"], ev["reviewed_digital_level"]) == (declared, None)
    ev = await attach_evidence(client, school.admin, ev, skip=without_evidence)
    assert ev["running_result"] == expected  # what the person sees before submitting
    assert (await act(client, school.admin, ev["id"], "submit")).status_code == 200
    r = await act(client, school.assessor, ev["id"], "complete-review")
    assert r.status_code == 200, r.text
    assert r.json()["result"] == expected
    for number in without_evidence:
        assert by_number(r.json())[number]["self_score"] == 10
        assert by_number(r.json())[number]["effective_score"] == 0
    decision = await sign(client, school, [ev["id"]])
    assert decision.status_code == (201 if expected["passed"] else 409)


async def test_rejected_evidence_counts_as_none_and_the_review_score_wins(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    ev = await drive_to(client, tree, school, "submitted", points=[10] * 10, evidence=True)
    first = next(e for e in ev["evidence"] if e["indicator_id"] == by_number(ev)[1]["indicator_id"])
    r = await client.put(
        f"{API}/evaluations/{ev['id']}/review",
        json={
            "version": ev["version"],
            "scores": [{"indicator_id": by_number(ev)[2]["indicator_id"], "score": 6}],
            "rejected_evidence_ids": [first["id"]],
        },
        headers=school.assessor,
    )
    assert r.status_code == 200, r.text
    scores = by_number(r.json())
    assert (scores[1]["effective_score"], scores[2]["effective_score"]) == (0, 6)
    assert r.json()["running_result"]["total"] == 86
    assert r.json()["running_result"]["failing_indicators"] == [1]


async def test_rejected_evidence_on_the_digital_indicator_makes_the_level_none(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    ev = await self_assess(client, school.admin, ev, [10] * 10, digital_level="proficient")
    ev = await attach_evidence(client, school.admin, ev)
    assert ev["running_result"]["digital_level"] == "proficient"
    assert (await act(client, school.admin, ev["id"], "submit")).status_code == 200
    ev = await get(client, school.assessor, ev["id"])
    digital = next(e for e in ev["evidence"] if e["indicator_id"] == by_number(ev)[5]["indicator_id"])
    r = await client.put(
        f"{API}/evaluations/{ev['id']}/review",
        json={
            "version": ev["version"],
            "digital_level": "proficient",
            "rejected_evidence_ids": [digital["id"]],
        },
        headers=school.assessor,
    )
    assert r.status_code == 200, r.text
    assert r.json()["reviewed_digital_level"] == "proficient"
    # Even confirmed by the assessor, a level with no accepted evidence on indicator 5 counts as none.
    assert r.json()["running_result"]["digital_level"] == "none"
    assert r.json()["running_result"]["failing_indicators"] == [5]


# --- malformed input ---------------------------------------------------------------------------------


async def test_scores_outside_the_scale_are_422_and_change_nothing(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    for score in (10.5, 11, -0.5, 7.3, 7.25, 100.5, "mười", None):
        body = {
            "version": ev["version"],
            "scores": [{"indicator_id": ev["scores"][0]["indicator_id"], "score": score}],
        }
        r = await client.put(f"{API}/evaluations/{ev['id']}/self-assessment", json=body, headers=school.admin)
        assert r.status_code == 422, (score, r.text)
        assert r.json()["error"]["code"] == "validation_error", score
    assert await get(client, school.admin, ev["id"]) == ev
    # The ends of the scale are scores like any other.
    ev = await self_assess(client, school.admin, ev, [0, 10, 0.5, 9.5, 0, 10, 0, 10, 0, 10])
    assert [s["self_score"] for s in ev["scores"]][:4] == [0, 10, 0.5, 9.5]


async def test_review_scores_outside_the_scale_are_422(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    ev = await drive_to(client, tree, school, "submitted")
    for score in (10.5, 4.2):
        body = {
            "version": ev["version"],
            "scores": [{"indicator_id": ev["scores"][0]["indicator_id"], "score": score}],
        }
        r = await client.put(f"{API}/evaluations/{ev['id']}/review", json=body, headers=school.assessor)
        assert r.status_code == 422, r.text
    assert (await get(client, school.admin, ev["id"]))["status"] == "submitted"


async def test_an_indicator_of_another_set_is_422(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    other = (await client.get(f"{API}/criteria-sets/{criteria['resident']}", headers=school.admin)).json()
    foreign = other["criteria"][0]["indicators"][0]["id"]
    body = {"version": ev["version"], "scores": [{"indicator_id": foreign, "score": 5}]}
    r = await client.put(f"{API}/evaluations/{ev['id']}/self-assessment", json=body, headers=school.admin)
    assert r.status_code == 422
    assert r.json()["error"]["details"] == {"indicator_id": foreign}
    assert (await upload(client, school.admin, ev["id"], foreign)).status_code == 422
    assert (await get(client, school.admin, ev["id"]))["evidence"] == []


async def test_a_second_evaluation_for_the_same_person_and_year_is_409(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    person = await tree.person(school.unit, "staff")
    first = await open_evaluation(client, tree, school, person)
    r = await client.post(
        f"{API}/evaluations", json={"person_id": person.id, "year": 2025}, headers=school.admin
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    listed = (await client.get(f"{API}/evaluations?person_id={person.id}", headers=school.admin)).json()
    assert [e["id"] for e in listed["items"]] == [first["id"]]
    assert (await open_evaluation(client, tree, school, person, year=2026))["year"] == 2026


async def test_submitting_without_every_self_score_is_409_naming_the_missing(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    scores = [
        {"indicator_id": s["indicator_id"], "score": 8} for s in ev["scores"] if s["number"] not in (3, 8)
    ]
    r = await client.put(
        f"{API}/evaluations/{ev['id']}/self-assessment",
        json={"version": ev["version"], "scores": scores},
        headers=school.admin,
    )
    assert r.status_code == 200
    r = await act(client, school.admin, ev["id"], "submit")
    assert r.status_code == 409
    assert r.json()["error"]["details"] == {"missing_indicators": [3, 8]}
    assert (await get(client, school.admin, ev["id"]))["status"] == "draft"


# --- transitions -------------------------------------------------------------------------------------

# Each action of TRANSITIONS that has its own endpoint: (who calls it, method, path suffix, body).
ENDPOINTS: dict[str, tuple[str, str, str, dict[str, Any] | None]] = {
    "submit": ("admin", "POST", "submit", None),
    "withdraw": ("admin", "POST", "withdraw", None),
    "reopen": ("admin", "POST", "reopen", None),
    "review": ("assessor", "PUT", "review", {"scores": []}),
    "return": ("assessor", "POST", "return", {"reason": "Thiếu minh chứng"}),
    "complete_review": ("assessor", "POST", "complete-review", None),
}
# Reached only through recognition decisions (tested below and in the decision tests).
THROUGH_DECISIONS = {"recognise", "revoke_recognition"}


def test_every_transition_is_reachable_by_an_endpoint_or_a_decision() -> None:
    assert set(ENDPOINTS) | THROUGH_DECISIONS == set(TRANSITIONS)


def test_the_transition_table_is_the_one_api_md_lists() -> None:
    """Pinned here, so that the walk below cannot silently follow a loosened table."""
    table = {name: (sorted(allowed), target.value) for name, (allowed, target) in TRANSITIONS.items()}
    assert table == {
        "submit": (["draft", "returned"], "submitted"),
        "withdraw": (["draft", "returned", "submitted"], "withdrawn"),  # by the person, before review
        "reopen": (["withdrawn"], "draft"),
        "review": (["in_review", "submitted"], "in_review"),
        "return": (["in_review", "submitted"], "returned"),
        "complete_review": (["in_review", "submitted"], "reviewed"),
        "recognise": (["reviewed"], "recognised"),
        "revoke_recognition": (["recognised"], "reviewed"),
    }
    assert sorted(EDITABLE) == ["draft", "returned"]


@pytest.mark.parametrize("status", [s.value for s in Status])
async def test_every_illegal_transition_is_409_naming_the_status(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int], status: str
) -> None:
    school = await make_school(tree)
    ev = await drive_to(client, tree, school, status)
    history = (await client.get(f"{API}/evaluations/{ev['id']}/history", headers=school.admin)).json()
    refused = []
    for name, (who, method, path, body) in ENDPOINTS.items():
        if status in TRANSITIONS[name][0]:
            continue
        json = {**body, "version": ev["version"]} if body else None
        r = await client.request(
            method, f"{API}/evaluations/{ev['id']}/{path}", json=json, headers=getattr(school, who)
        )
        assert r.status_code == 409, (name, r.text)
        assert r.json()["error"]["code"] == "invalid_transition", name
        assert r.json()["error"]["details"]["status"] == status, name
        assert status in r.json()["error"]["message"], name
        refused.append(name)
    if status not in EDITABLE:
        body = {
            "version": ev["version"],
            "scores": [{"indicator_id": ev["scores"][0]["indicator_id"], "score": 1}],
        }
        r = await client.put(f"{API}/evaluations/{ev['id']}/self-assessment", json=body, headers=school.admin)
        assert (r.status_code, r.json()["error"]["details"]["status"]) == (409, status)
    if status not in TRANSITIONS["recognise"][0]:
        r = await sign(client, school, [ev["id"]])
        assert r.status_code == 409
        assert [p["evaluation_id"] for p in r.json()["error"]["details"]["evaluations"]] == [ev["id"]]
    assert refused or status == "draft"  # every status but draft refuses some endpoint
    after = await get(client, school.admin, ev["id"])
    assert (after["status"], after["version"]) == (status, ev["version"])
    assert (await client.get(f"{API}/evaluations/{ev['id']}/history", headers=school.admin)).json() == history


async def test_a_recognised_evaluation_is_frozen(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    ev = await drive_to(client, tree, school, "recognised")
    first = ev["scores"][0]["indicator_id"]
    scores = [{"indicator_id": first, "score": 1}]
    for r in (
        await client.put(
            f"{API}/evaluations/{ev['id']}/self-assessment",
            json={"version": ev["version"], "scores": scores},
            headers=school.admin,
        ),
        await upload(client, school.admin, ev["id"], first),
        await client.delete(f"{API}/evidence/{ev['evidence'][0]['id']}", headers=school.admin),
        await client.put(
            f"{API}/evaluations/{ev['id']}/review",
            json={"version": ev["version"], "scores": scores},
            headers=school.assessor,
        ),
    ):
        assert r.status_code == 409, r.text
        assert r.json()["error"]["details"]["status"] == "recognised"
    assert await get(client, school.admin, ev["id"]) == ev


# --- optimistic concurrency ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["body", "if-match"])
async def test_a_stale_version_is_409_and_changes_nothing(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int], where: str
) -> None:
    school = await make_school(tree)
    ev = await self_assess(client, school.admin, await open_evaluation(client, tree, school), [6] * 10)
    stale = ev["version"] - 1
    history = (await client.get(f"{API}/evaluations/{ev['id']}/history", headers=school.admin)).json()
    scores = [{"indicator_id": s["indicator_id"], "score": 10} for s in ev["scores"]]
    body: dict[str, Any] = {"scores": scores}
    headers = dict(school.admin)
    if where == "body":
        body["version"] = stale
    else:
        body["version"] = ev["version"]  # the header wins no argument: both must be current
        headers["If-Match"] = f'"{stale}"'
    r = await client.put(f"{API}/evaluations/{ev['id']}/self-assessment", json=body, headers=headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    assert await get(client, school.admin, ev["id"]) == ev
    assert (await client.get(f"{API}/evaluations/{ev['id']}/history", headers=school.admin)).json() == history
    for action in ("submit", "withdraw"):
        r = await act(client, {**school.admin, "If-Match": str(stale)}, ev["id"], action)
        assert r.status_code == 409, action
    assert (await get(client, school.admin, ev["id"]))["status"] == "draft"
    # The current version alone, in the header, is accepted.
    r = await client.put(
        f"{API}/evaluations/{ev['id']}/self-assessment",
        json={"scores": scores},
        headers={**school.admin, "If-Match": str(ev["version"])},
    )
    assert r.status_code == 200
    assert r.json()["version"] == ev["version"] + 1


async def test_a_stale_review_is_409(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    ev = await drive_to(client, tree, school, "submitted")
    body = {
        "version": ev["version"],
        "scores": [{"indicator_id": ev["scores"][0]["indicator_id"], "score": 6}],
    }
    first = await client.put(f"{API}/evaluations/{ev['id']}/review", json=body, headers=school.assessor)
    assert first.status_code == 200
    body["scores"][0]["score"] = 2
    second = await client.put(f"{API}/evaluations/{ev['id']}/review", json=body, headers=school.assessor)
    assert second.status_code == 409
    assert second.json()["error"]["details"] == {"current_version": first.json()["version"]}
    assert by_number(await get(client, school.admin, ev["id"]))[1]["review_score"] == 6


@pytest.mark.parametrize("route", ["self-assessment", "review"])
async def test_a_missing_version_is_422(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int], route: str
) -> None:
    school = await make_school(tree)
    ev = await drive_to(client, tree, school, "draft" if route == "self-assessment" else "submitted")
    h = school.admin if route == "self-assessment" else school.assessor
    body = {"scores": [{"indicator_id": ev["scores"][0]["indicator_id"], "score": 3}]}
    r = await client.put(f"{API}/evaluations/{ev['id']}/{route}", json=body, headers=h)
    assert r.status_code == 422
    assert await get(client, school.admin, ev["id"]) == ev


# --- conflicts of interest ---------------------------------------------------------------------------


async def test_an_assessor_never_reviews_their_own_evaluation(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    own = await tree.person(school.unit, "staff", user=school.assessor_user)
    ev = await drive_to(client, tree, school, "submitted", person=own)
    assert (await get(client, school.assessor, ev["id"]))["id"] == ev["id"]  # she may read it
    for method, path, body in (
        ("PUT", "review", {"version": ev["version"], "scores": []}),
        ("POST", "return", {"reason": "Tự trả lại"}),
        ("POST", "complete-review", None),
    ):
        r = await client.request(
            method, f"{API}/evaluations/{ev['id']}/{path}", json=body, headers=school.assessor
        )
        assert r.status_code == 403, path
        assert r.json()["error"]["code"] == "forbidden"
    assert await get(client, school.admin, ev["id"]) == ev


async def test_an_approver_never_signs_for_their_own_evaluation(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    own = await tree.person(school.unit, "staff", user=school.approver_user)
    mine = await drive_to(client, tree, school, "reviewed", person=own)
    other = await drive_to(client, tree, school, "reviewed")
    r = await sign(client, school, [other["id"], mine["id"]])
    assert r.status_code == 403
    for ev in (mine, other):
        assert (await get(client, school.admin, ev["id"]))["status"] == "reviewed"
    assert (await client.get(f"{API}/recognition-decisions", headers=school.approver)).json()["total"] == 0


# --- recognition decisions -----------------------------------------------------------------------------


@pytest.mark.parametrize("problem", ["not-reviewed", "not-passed", "other-subtree", "wrong-year"])
async def test_a_decision_with_one_unqualified_evaluation_changes_nothing(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int], problem: str
) -> None:
    district = await tree.unit("Huyện", "district")
    school = await make_school(tree, district)
    good = await drive_to(client, tree, school, "reviewed")
    if problem == "not-reviewed":
        bad = await drive_to(client, tree, school, "in_review")
    elif problem == "not-passed":
        bad = await drive_to(client, tree, school, "reviewed", points=[9] * 9 + [4])
    elif problem == "other-subtree":
        bad = await drive_to(client, tree, await make_school(tree, district, "Trường bên cạnh"), "reviewed")
    else:
        bad = await drive_to(client, tree, school, "reviewed", year=2024)
    r = await sign(client, school, [good["id"], bad["id"]])
    assert r.status_code == 409, r.text
    problems = r.json()["error"]["details"]["evaluations"]
    assert [p["evaluation_id"] for p in problems] == [bad["id"]]
    assert (await get(client, school.admin, good["id"]))["status"] == "reviewed"
    assert (await get(client, school.admin, good["id"]))["decision_id"] is None
    assert (await client.get(f"{API}/recognition-decisions", headers=school.approver)).json()["total"] == 0
    assert (await sign(client, school, [good["id"]])).status_code == 201  # alone, it qualifies


async def test_a_decision_for_an_unknown_evaluation_reads_like_one_out_of_scope(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    district = await tree.unit("Huyện", "district")
    school = await make_school(tree, district)
    elsewhere = await drive_to(client, tree, await make_school(tree, district), "reviewed")
    answers = []
    for evaluation_id in (elsewhere["id"], 2_000_000_000):
        r = await sign(client, school, [evaluation_id])
        assert r.status_code == 409
        answers.append(r.json()["error"]["details"]["evaluations"][0]["reason"])
    assert answers[0] == answers[1]


async def test_revoking_twice_is_409(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    ev = await drive_to(client, tree, school, "recognised")
    decision_id = ev["decision_id"]
    url = f"{API}/recognition-decisions/{decision_id}/revoke"
    first = await client.post(url, json={"reason": "Sai sót hồ sơ"}, headers=school.approver)
    assert first.status_code == 200
    assert (await get(client, school.admin, ev["id"]))["status"] == "reviewed"
    again = await client.post(url, json={"reason": "Lần nữa"}, headers=school.approver)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_transition"
    decision = (
        await client.get(f"{API}/recognition-decisions/{decision_id}", headers=school.approver)
    ).json()
    assert (decision["status"], decision["revoke_reason"]) == ("revoked", "Sai sót hồ sơ")
    # The evaluation may be recognised again by a new decision; the old one stays revoked.
    assert (await sign(client, school, [ev["id"]])).status_code == 201
    assert (await client.post(url, json={"reason": "x"}, headers=school.approver)).status_code == 409
    assert (await get(client, school.admin, ev["id"]))["status"] == "recognised"


# --- roles -------------------------------------------------------------------------------------------


async def test_a_viewer_gets_403_on_evaluations(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    ev = await drive_to(client, tree, school, "draft")
    viewer = tree.auth(await tree.user(("viewer", school.unit)))
    body = {
        "version": ev["version"],
        "scores": [{"indicator_id": ev["scores"][0]["indicator_id"], "score": 5}],
    }
    answers = [
        await client.get(f"{API}/evaluations/{ev['id']}", headers=viewer),
        await client.get(f"{API}/evaluations/{ev['id']}/history", headers=viewer),
        await client.get(f"{API}/evaluations", headers=viewer),
        await client.get(f"{API}/evaluations?org_unit_id={school.unit.id}", headers=viewer),
        await client.post(
            f"{API}/evaluations", json={"person_id": ev["person_id"], "year": 2026}, headers=viewer
        ),
        await client.put(f"{API}/evaluations/{ev['id']}/self-assessment", json=body, headers=viewer),
        await upload(client, viewer, ev["id"], ev["scores"][0]["indicator_id"]),
        await act(client, viewer, ev["id"], "withdraw"),
        await client.get(f"{API}/recognition-decisions", headers=viewer),
    ]
    assert [r.status_code for r in answers] == [403] * len(answers)
    assert await get(client, school.admin, ev["id"]) == ev


async def test_a_member_reaches_only_their_own_evaluation(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    member = await tree.user(("member", school.unit))
    mh = tree.auth(member)
    mine = await open_evaluation(client, tree, school, await tree.person(school.unit, "staff", user=member))
    theirs = await drive_to(client, tree, school, "draft")
    body = {
        "version": theirs["version"],
        "scores": [{"indicator_id": theirs["scores"][0]["indicator_id"], "score": 5}],
    }
    for r in (
        await client.get(f"{API}/evaluations/{theirs['id']}", headers=mh),
        await client.get(f"{API}/evaluations/{theirs['id']}/history", headers=mh),
        await client.put(f"{API}/evaluations/{theirs['id']}/self-assessment", json=body, headers=mh),
        await upload(client, mh, theirs["id"], theirs["scores"][0]["indicator_id"]),
        await act(client, mh, theirs["id"], "withdraw"),
        await client.post(
            f"{API}/evaluations", json={"person_id": theirs["person_id"], "year": 2026}, headers=mh
        ),
    ):
        assert r.status_code == 403, r.request.url
    assert await get(client, school.admin, theirs["id"]) == theirs
    listed = (await client.get(f"{API}/evaluations", headers=mh)).json()
    assert [e["id"] for e in listed["items"]] == [mine["id"]]
    # Her own she may edit and submit, but never review.
    mine = await self_assess(client, mh, mine, [7] * 10)
    submitted = await act(client, mh, mine["id"], "submit")
    assert submitted.status_code == 200
    body = {"version": submitted.json()["version"], "scores": []}
    r = await client.put(f"{API}/evaluations/{mine['id']}/review", json=body, headers=mh)
    assert r.status_code == 403


async def test_an_org_admin_self_assesses_on_someones_behalf(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    admin_user = await tree.user(("org_admin", school.unit))
    ev = await open_evaluation(client, tree, school)
    ev = await self_assess(client, tree.auth(admin_user), ev, [8] * 10)
    assert [s["self_score"] for s in ev["scores"]] == [8] * 10
    history = (await client.get(f"{API}/evaluations/{ev['id']}/history", headers=school.admin)).json()
    assert (history[-1]["action"], history[-1]["actor_user_id"]) == ("self_assessed", admin_user.id)
    # ...but an org_admin is not on the committee: no review, no decision.
    submitted = await act(client, school.admin, ev["id"], "submit")
    assert submitted.status_code == 200
    body = {"version": submitted.json()["version"], "scores": []}
    r = await client.put(f"{API}/evaluations/{ev['id']}/review", json=body, headers=school.admin)
    assert r.status_code == 403
    assert (await get(client, school.admin, ev["id"]))["status"] == "submitted"


@pytest.mark.parametrize("who", ["assessor", "admin"])
async def test_only_an_approver_signs(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int], who: str
) -> None:
    school = await make_school(tree)
    ev = await drive_to(client, tree, school, "reviewed")
    body = {"org_unit_id": school.unit.id, "year": 2025, "number": "1/QĐ", "signed_on": "2025-12-20"}
    r = await client.post(
        f"{API}/recognition-decisions",
        json={**body, "evaluation_ids": [ev["id"]]},
        headers=getattr(school, who),
    )
    assert r.status_code == 403
    assert (await get(client, school.admin, ev["id"]))["status"] == "reviewed"


async def test_a_return_or_revocation_needs_a_readable_reason(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    submitted = await drive_to(client, tree, school, "submitted")
    recognised = await drive_to(client, tree, school, "recognised")
    revoke = f"{API}/recognition-decisions/{recognised['decision_id']}/revoke"
    for reason in ("", "   ", "Thiếu\x00minh chứng", "\x1b[31m", "x" * 4001):
        r = await act(client, school.assessor, submitted["id"], "return", {"reason": reason})
        assert r.status_code == 422, repr(reason)
        r = await client.post(revoke, json={"reason": reason}, headers=school.approver)
        assert r.status_code == 422, repr(reason)
    assert await get(client, school.admin, submitted["id"]) == submitted
    assert await get(client, school.admin, recognised["id"]) == recognised
    # Line breaks are fine, and surrounding blanks are dropped.
    r = await act(
        client, school.assessor, submitted["id"], "return", {"reason": "  Bổ sung:\n- chỉ tiêu 3  "}
    )
    assert (r.status_code, r.json()["return_reason"]) == (200, "Bổ sung:\n- chỉ tiêu 3")


async def test_a_read_shows_each_score_and_note_as_the_steps_answered_them(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    """A step answers with the scores it holds; a later read reads them as values
    (``repository.score_rows``): the same self and review scores and notes, indicator by indicator."""
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    ids = {s["number"]: s["indicator_id"] for s in ev["scores"]}
    own = [{"indicator_id": ids[n], "score": 9, "note": f"tự đánh giá {n}"} for n in ids]
    r = await client.put(
        f"{API}/evaluations/{ev['id']}/self-assessment",
        json={"version": ev["version"], "scores": own},
        headers=school.admin,
    )
    assert r.status_code == 200, r.text
    r = await act(client, school.admin, ev["id"], "submit")
    assert r.status_code == 200, r.text
    review = [{"indicator_id": ids[2], "score": 6, "note": "thiếu minh chứng"}]
    reviewed = await client.put(
        f"{API}/evaluations/{ev['id']}/review",
        json={"version": r.json()["version"], "scores": review},
        headers=school.assessor,
    )
    assert reviewed.status_code == 200, reviewed.text
    read = await get(client, school.assessor, ev["id"])
    assert read["scores"] == reviewed.json()["scores"]
    scores = by_number(read)
    assert (scores[1]["self_score"], scores[1]["review_score"], scores[1]["note"]) == (
        9,
        None,
        "tự đánh giá 1",
    )
    assert scores[1]["review_note"] is None
    assert (scores[2]["self_score"], scores[2]["review_score"]) == (9, 6)
    assert (scores[2]["note"], scores[2]["review_note"]) == ("tự đánh giá 2", "thiếu minh chứng")
    assert [s["number"] for s in read["scores"]] == list(range(1, 11))
