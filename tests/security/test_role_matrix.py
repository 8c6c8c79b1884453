"""Issue 6, group 2: the role matrix, read from the policy table the app itself uses.

For every :class:`Action` in ``POLICY`` a representative route is called by a user holding each role of
:class:`Role` at the unit that owns the object: the roles ``POLICY`` allows (and ``admin``) succeed, every
other role gets 403 and writes nothing, and the same role held only in a sibling subtree gets 404. The
expected answers come from ``POLICY`` itself, so changing the table changes the test; a new Action without
a case in ``CASES`` fails :func:`test_every_action_has_a_representative_route`.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from app.auth.models import Role, User
from app.auth.policy import POLICY, Action
from app.orgs.models import OrgUnit
from app.people.models import Person
from tests.api.evaluation_flow import API, self_assess
from tests.builders import Tree

pytestmark = pytest.mark.anyio

_numbers = itertools.count(1)


@dataclass
class World:
    """Province P ─┬─ school U (roles held here) ─ class L (the objects live here)
    └─ school S (the sibling subtree)"""

    client: httpx.AsyncClient
    tree: Tree
    criteria: dict[str | None, int]
    admin: dict[str, str]
    unit: OrgUnit
    leaf: OrgUnit
    sibling: OrgUnit
    person: Person
    other_user: User
    ids: dict[str, int] = field(default_factory=dict)

    async def version(self, path: str) -> int:
        r = await self.client.get(API + path, headers=self.admin)
        assert r.status_code == 200, r.text
        return int(r.json()["version"])


# (method, path builder, body builder): the path and the request's other arguments for World.
PathFn = Callable[[World], Awaitable[str]]
BodyFn = Callable[[World], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    method: str
    path: PathFn
    body: BodyFn
    # False for an action on no one object (a bulk import names its units inside the file): a role held
    # only in the sibling subtree is then refused like one held nowhere (403), and an allowed role there
    # gets the file's rows refused (422, nothing written) instead of a 404.
    scoped: bool = True


async def _none(w: World) -> dict[str, Any]:
    return {}


def _at(template: str) -> PathFn:
    async def build(w: World) -> str:
        return template.format(leaf=w.leaf.id, person=w.person.id, user=w.other_user.id, **w.ids)

    return build


def _json(make: Callable[[World], Any]) -> BodyFn:
    async def build(w: World) -> dict[str, Any]:
        return {"json": make(w)}

    return build


async def _self_assessment(w: World) -> dict[str, Any]:
    version = await w.version(f"/evaluations/{w.ids['draft']}")
    return {"json": {"version": version, "scores": [{"indicator_id": w.ids["indicator"], "score": 5}]}}


async def _review(w: World) -> dict[str, Any]:
    version = await w.version(f"/evaluations/{w.ids['submitted']}")
    return {"json": {"version": version, "scores": [{"indicator_id": w.ids["indicator"], "score": 4}]}}


async def _decision(w: World) -> dict[str, Any]:
    # Each signature consumes its evaluation: every call gets a fresh reviewed, passed one.
    evaluation = await w.tree.evaluation(await w.tree.person(w.leaf), 2025, "reviewed")
    body = {
        "org_unit_id": w.leaf.id,
        "year": 2025,
        "number": f"{next(_numbers)}/QĐ-UBND",
        "signed_on": "2025-12-20",
        "evaluation_ids": [evaluation.id],
    }
    return {"json": body}


async def _people_csv(w: World) -> dict[str, Any]:
    csv = f"full_name,unit_code,group\nNguyễn Văn {next(_numbers)},{w.leaf.code},resident\n"
    return {"files": {"file": ("nguoi.csv", csv.encode(), "text/csv")}}


async def _variant(w: World) -> dict[str, Any]:
    body = {
        "parent_id": w.criteria["staff"],
        "org_unit_id": w.leaf.id,
        "code": f"RM-VARIANT-{next(_numbers)}",
        "title": "Bộ tiêu chí riêng",
        "substitutions": [{"number": 6, "source_set_id": w.criteria[None]}],
    }
    return {"json": body}


async def _fresh_submission(w: World) -> dict[str, Any]:
    # Accepting consumes a submitted report: every call accepts a new version of the leaf's report.
    r = await w.client.post(
        f"{API}/report-submissions", json={"org_unit_id": w.leaf.id, "year": 2025}, headers=w.admin
    )
    assert r.status_code == 201, r.text
    w.ids["submission"] = r.json()["id"]
    return {}


CASES: dict[Action, Case] = {
    Action.UNIT_READ: Case("GET", _at("/org-units/{leaf}"), _none),
    Action.UNIT_WRITE: Case("PATCH", _at("/org-units/{leaf}"), _json(lambda w: {"name": "Lớp đổi tên"})),
    Action.USER_READ: Case("GET", _at("/users/{user}"), _none),
    Action.USER_WRITE: Case("PATCH", _at("/users/{user}"), _json(lambda w: {"full_name": "Tên mới"})),
    Action.PERSON_READ: Case("GET", _at("/people/{person}"), _none),
    Action.PERSON_WRITE: Case("PATCH", _at("/people/{person}"), _json(lambda w: {"birth_year": 1990})),
    Action.CRITERIA_WRITE: Case("POST", _at("/criteria-sets"), _variant),
    Action.EVALUATION_READ: Case("GET", _at("/evaluations/{draft}"), _none),
    Action.EVALUATION_EDIT: Case("PUT", _at("/evaluations/{draft}/self-assessment"), _self_assessment),
    Action.EVALUATION_REVIEW: Case("PUT", _at("/evaluations/{submitted}/review"), _review),
    Action.DECISION_READ: Case("GET", _at("/recognition-decisions/{decision}"), _none),
    Action.DECISION_SIGN: Case("POST", _at("/recognition-decisions"), _decision),
    Action.PLAN_READ: Case("GET", _at("/plans/{plan}"), _none),
    Action.PLAN_WRITE: Case("PATCH", _at("/plans/{plan}"), _json(lambda w: {"title": "Kế hoạch mới"})),
    Action.TRAINING_READ: Case("GET", _at("/training-sessions/{training}"), _none),
    Action.TRAINING_WRITE: Case(
        "PUT",
        _at("/training-sessions/{training}/attendees"),
        _json(lambda w: {"attendee_ids": [w.person.id]}),
    ),
    Action.AGGREGATE_READ: Case("GET", _at("/aggregates/progress?org_unit_id={leaf}&year=2025"), _none),
    Action.IMPORT_WRITE: Case("POST", _at("/imports/people?dry_run=false"), _people_csv, scoped=False),
    Action.EXPORT_READ: Case("GET", _at("/exports/evaluations?org_unit_id={leaf}&year=2025"), _none),
    Action.REPORT_READ: Case("GET", _at("/reports/annual?org_unit_id={leaf}&year=2025"), _none),
    Action.REPORT_SUBMIT: Case(
        "POST", _at("/report-submissions"), _json(lambda w: {"org_unit_id": w.leaf.id, "year": 2025})
    ),
    Action.REPORT_REVIEW: Case("POST", _at("/report-submissions/{submission}/accept"), _fresh_submission),
    Action.REPORTING_READ: Case("GET", _at("/reporting/completeness?org_unit_id={leaf}&year=2025"), _none),
    Action.WEBHOOK_READ: Case("GET", _at("/webhooks/{webhook}"), _none),
    Action.WEBHOOK_WRITE: Case(
        "PATCH", _at("/webhooks/{webhook}"), _json(lambda w: {"description": "Sổ theo dõi"})
    ),
    Action.CALENDAR_WRITE: Case(
        "PUT", _at("/reporting-calendars/{leaf}/2025"), _json(lambda w: {"due_on": "2025-12-05"})
    ),
}


def test_every_action_has_a_representative_route() -> None:
    missing = sorted(set(POLICY) - CASES.keys())
    assert not missing, f"Actions without a role-matrix case: {missing}; add one to CASES."
    assert set(POLICY) == set(Action), "every Action must have a row in POLICY"
    assert not (CASES.keys() - set(POLICY)), "CASES names actions POLICY no longer has"


async def _world(client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]) -> World:
    province = await tree.unit("Tỉnh P", "province")
    unit = await tree.unit("Trường U", "school", province)
    leaf = await tree.unit("Lớp L", "unit", unit, code=f"RM-L{next(_numbers)}")
    sibling = await tree.unit("Trường S", "school", province)
    admin = tree.auth(await tree.admin())
    w = World(
        client=client,
        tree=tree,
        criteria=criteria,
        admin=admin,
        unit=unit,
        leaf=leaf,
        sibling=sibling,
        person=await tree.person(leaf, "staff"),
        other_user=await tree.user(("member", leaf)),
    )
    # Filled in by another admin: the admin who then reviews must not have (separation of duties).
    clerk = tree.auth(await tree.admin())
    for key in ("draft", "submitted"):
        person = await tree.person(leaf, "staff")
        r = await client.post(
            f"{API}/evaluations", json={"person_id": person.id, "year": 2025}, headers=clerk
        )
        assert r.status_code == 201, r.text
        evaluation = await self_assess(client, clerk, r.json(), [9] * 10)
        w.ids[key] = evaluation["id"]
        w.ids["indicator"] = evaluation["scores"][0]["indicator_id"]
    r = await client.post(f"{API}/evaluations/{w.ids['submitted']}/submit", headers=clerk)
    assert r.status_code == 200, r.text
    recognised = await tree.evaluation(await tree.person(leaf), 2025, "recognised")
    assert recognised.decision_id is not None
    w.ids["decision"] = recognised.decision_id
    plan = {"org_unit_id": leaf.id, "title": "Kế hoạch", "start_year": 2021, "end_year": 2030}
    r = await client.post(f"{API}/plans", json=plan, headers=admin)
    assert r.status_code == 201, r.text
    w.ids["plan"] = r.json()["id"]
    training = {"org_unit_id": leaf.id, "title": "Tập huấn", "held_on": "2025-03-01"}
    r = await client.post(f"{API}/training-sessions", json=training, headers=admin)
    assert r.status_code == 201, r.text
    w.ids["training"] = r.json()["id"]
    hook = {"url": "http://127.0.0.1:9/hook", "events": ["report.submitted"], "org_unit_id": leaf.id}
    r = await client.post(f"{API}/webhooks", json=hook, headers=admin)
    assert r.status_code == 201, r.text
    w.ids["webhook"] = r.json()["id"]
    return w


async def _call(w: World, case: Case, headers: dict[str, str]) -> httpx.Response:
    kwargs = await case.body(w)  # first, as in _decides: a body builder may make the object the path names
    path = await case.path(w)
    return await w.client.request(case.method, API + path, headers=headers, **kwargs)


UNIT_ROLES = [r for r in Role if r != Role.ADMIN]
# Logs that record refused attempts on purpose (who sent which file): not a change to the data.
ATTEMPT_LOGS = {"import_records"}


async def _data(tree: Tree) -> dict[str, list[tuple[object, ...]]]:
    return {k: v for k, v in (await tree.snapshot()).items() if k not in ATTEMPT_LOGS}


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
async def test_policy_decides_every_role(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int], action: Action
) -> None:
    await _decides(await _world(client, tree, criteria), action, CASES[action])


async def _fresh_household(w: World) -> dict[str, Any]:
    # One evaluation per household and year: every call opens the evaluation of a new household.
    household = await w.tree.household(w.leaf, [await w.tree.person(w.leaf, "resident")])
    return {"json": {"title": "learning_family", "household_id": household.id, "year": 2025}}


# The routes of the collective titles (households, clans, collective evaluations) follow the same actions.
COLLECTIVE_CASES: list[tuple[Action, Case]] = [
    (Action.PERSON_READ, Case("GET", _at("/households/{household}"), _none)),
    (Action.PERSON_WRITE, Case("PATCH", _at("/households/{household}"), _json(lambda w: {"name": "Hộ mới"}))),
    (Action.PERSON_READ, Case("GET", _at("/clans/{clan}"), _none)),
    (Action.PERSON_WRITE, Case("PATCH", _at("/clans/{clan}"), _json(lambda w: {"name": "Họ mới"}))),
    (Action.EVALUATION_EDIT, Case("POST", _at("/evaluations"), _fresh_household)),
    (Action.EVALUATION_READ, Case("GET", _at("/evaluations/{family}"), _none)),
]


@pytest.mark.parametrize(
    ("action", "case"),
    COLLECTIVE_CASES,
    ids=[f"{a.value}:{c.method}{i}" for i, (a, c) in enumerate(COLLECTIVE_CASES)],
)
async def test_policy_decides_every_role_on_the_collective_routes(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int], action: Action, case: Case
) -> None:
    w = await _world(client, tree, criteria)
    household = await tree.household(w.leaf, [await tree.person(w.leaf, "resident")])
    w.ids["household"] = household.id
    w.ids["clan"] = (await tree.clan(w.leaf, [household])).id
    w.ids["family"] = (await tree.collective_evaluation("learning_family", household, 2025, "draft")).id
    await _decides(w, action, case)


async def _decides(w: World, action: Action, case: Case) -> None:
    """Every role of the sibling subtree gets 404, every role POLICY does not allow at the unit 403 with
    nothing written, every allowed role and admin 2xx."""
    tree = w.tree
    allowed = POLICY[action]
    refused = [r for r in UNIT_ROLES if r not in allowed]
    writes = case.method != "GET"

    async def expect(who: str, headers: dict[str, str], status: int) -> None:
        kwargs = await case.body(w)  # built first: a body builder may itself write (a fresh evaluation)
        before = await _data(tree) if writes and status >= 400 else None
        r = await w.client.request(case.method, API + await case.path(w), headers=headers, **kwargs)
        where = (action.value, who, case.method)
        assert r.status_code == status, (where, r.text)
        if status in (403, 404):
            code = {403: "forbidden", 404: "not_found"}[status]
            assert r.json()["error"]["code"] == code, where
        if before is not None:
            assert await _data(tree) == before, (where, "a refused request changed the database")

    # A role held only in the sibling school: the object does not exist for its holder.
    for role in UNIT_ROLES:
        status = 404 if case.scoped else (422 if role in allowed else 403)
        await expect(f"{role} of the sibling", tree.auth(await tree.user((role, w.sibling))), status)
    # The same unit, a role POLICY does not list: seen but refused.
    for role in refused:
        await expect(f"{role} at the unit", tree.auth(await tree.user((role, w.unit))), 403)
    # The roles POLICY lists, and admin, who is never listed and may do everything.
    for role in [r for r in UNIT_ROLES if r in allowed]:
        user = await tree.user((role, w.unit)) if role else await tree.user(unit=w.leaf)
        r = await _call(w, case, tree.auth(user))
        assert 200 <= r.status_code < 300, ((action.value, role), r.text)
    r = await _call(w, case, w.admin)
    assert 200 <= r.status_code < 300, ((action.value, "admin"), r.text)


OWN: dict[Action, int] = {
    # A member's own person record and evaluation: readable, and the evaluation editable (self-assessment).
    Action.PERSON_READ: 200,
    Action.EVALUATION_READ: 200,
    Action.EVALUATION_EDIT: 200,
    # Nobody reviews their own evaluation, not even an assessor.
    Action.EVALUATION_REVIEW: 403,
}


@pytest.mark.parametrize("role", [Role.MEMBER, Role.ASSESSOR, None], ids=str)
async def test_member_own_rules(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int], role: Role | None
) -> None:
    """The exceptions POLICY cannot express (``app.auth.scope.OWN_ACTIONS``): a user linked to the person
    reaches their own records, even with no role at all (implicitly a member of themself); what they may
    not do to them is 403, since they see them (tests/security/test_visible_not_allowed.py has the rest)."""
    w = await _world(client, tree, criteria)
    draft = (await client.get(f"{API}/evaluations/{w.ids['draft']}", headers=w.admin)).json()
    submitted = (await client.get(f"{API}/evaluations/{w.ids['submitted']}", headers=w.admin)).json()
    for action, status in OWN.items():
        evaluation = submitted if action == Action.EVALUATION_REVIEW else draft
        user = await tree.user((role, w.unit)) if role else await tree.user(unit=w.leaf)
        w.person = await tree.session.get(Person, evaluation["person_id"])  # type: ignore[assignment]
        w.person.user_id = user.id
        await tree.session.commit()
        r = await _call(w, CASES[action], tree.auth(user))
        assert r.status_code == status, ((action.value, role), r.text)
        w.person.user_id = None
        await tree.session.commit()
