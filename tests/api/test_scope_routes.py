"""Story 4 / "Done when": a sibling-subtree test exists for every route that takes an id.

The routes are read from the app, not listed by hand: a new route with a path parameter fails
:func:`test_every_route_with_an_id_has_a_sibling_subtree_case` until it is added to ``CASES`` (or, for
data every signed-in user may read, to ``PUBLIC`` with the reason; for objects only their maker may see,
to ``OWNED``). For each case a caller holding a role in province A asks for an object that lives in
province B and must get exactly the 404 a non-existent id gets, with nothing written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select, update

from app.auth.models import Role, RoleAssignment
from app.core.dates import today
from app.orgs.models import OrgUnit
from tests.builders import MINIMAL_PDF, Country, Tree, build_country

MISSING_ID = 2_000_000_000
API = "/api/v1"

pytestmark = pytest.mark.anyio  # before collection, so the role parametrisation combines with anyio's


@dataclass
class Side:
    """The objects one province holds, one of each kind a route can address."""

    unit: OrgUnit  # a leaf: may be moved or deleted
    user_id: int
    assignment_id: int
    person_id: int
    evaluation_id: int  # recognised, with evidence, by the decision below
    version: int  # the evaluation's
    indicator_id: int
    evidence_id: int
    decision_id: int
    plan_id: int
    training_id: int
    reorganisation_id: int  # a rename of ``unit``, recorded at that unit
    household_id: int  # the person's household, at the person's unit
    clan_id: int  # the household's clan, at the same unit
    submission_id: int  # the home unit's report of 2025, submitted
    home_id: int  # the school the objects hang on (it stays when ``unit`` is deleted)
    webhook_id: int  # a subscription to the home unit's events, with one delivery
    delivery_id: int


@dataclass
class World:
    country: Country
    a: Side
    b: Side
    criteria_set_id: int


# Path parameters addressing ``side``'s object, and the request's other arguments (a valid body).
Request = tuple[dict[str, int], dict[str, Any]]
Case = Callable[[World, Side], Request]


def _pdf(s: Side) -> dict[str, Any]:
    return {
        "data": {"indicator_id": str(s.indicator_id)},
        "files": {"file": ("minh-chung.pdf", MINIMAL_PDF, "application/pdf")},
    }


def _transition(s: Side) -> Request:
    return {"evaluation_id": s.evaluation_id}, {"json": {"version": s.version}}


CASES: dict[tuple[str, str], Case] = {
    ("GET", "/org-units/{unit_id}"): lambda w, s: ({"unit_id": s.unit.id}, {}),
    ("PATCH", "/org-units/{unit_id}"): lambda w, s: ({"unit_id": s.unit.id}, {"json": {"name": "Đổi tên"}}),
    ("DELETE", "/org-units/{unit_id}"): lambda w, s: ({"unit_id": s.unit.id}, {}),
    ("GET", "/org-units/{unit_id}/descendants"): lambda w, s: ({"unit_id": s.unit.id}, {}),
    ("POST", "/org-units/{unit_id}/move"): lambda w, s: (
        {"unit_id": s.unit.id},
        {"json": {"parent_id": w.country.commune_a2.id}},
    ),
    ("GET", "/users/{user_id}"): lambda w, s: ({"user_id": s.user_id}, {}),
    ("PATCH", "/users/{user_id}"): lambda w, s: ({"user_id": s.user_id}, {"json": {"full_name": "Đổi tên"}}),
    ("POST", "/users/{user_id}/roles"): lambda w, s: (
        {"user_id": s.user_id},
        {"json": {"role": "viewer", "org_unit_id": w.country.school_a.id}},
    ),
    ("DELETE", "/users/{user_id}/roles/{assignment_id}"): lambda w, s: (
        {"user_id": s.user_id, "assignment_id": s.assignment_id},
        {},
    ),
    ("GET", "/people/{person_id}"): lambda w, s: ({"person_id": s.person_id}, {}),
    ("PATCH", "/people/{person_id}"): lambda w, s: (
        {"person_id": s.person_id},
        {"json": {"full_name": "Đổi"}},
    ),
    ("GET", "/evaluations/{evaluation_id}"): lambda w, s: ({"evaluation_id": s.evaluation_id}, {}),
    ("GET", "/evaluations/{evaluation_id}/history"): lambda w, s: ({"evaluation_id": s.evaluation_id}, {}),
    ("PUT", "/evaluations/{evaluation_id}/self-assessment"): lambda w, s: (
        {"evaluation_id": s.evaluation_id},
        {"json": {"version": s.version, "scores": [{"indicator_id": s.indicator_id, "score": 5}]}},
    ),
    ("POST", "/evaluations/{evaluation_id}/submit"): lambda w, s: _transition(s),
    ("POST", "/evaluations/{evaluation_id}/withdraw"): lambda w, s: _transition(s),
    ("POST", "/evaluations/{evaluation_id}/reopen"): lambda w, s: _transition(s),
    ("PUT", "/evaluations/{evaluation_id}/review"): lambda w, s: (
        {"evaluation_id": s.evaluation_id},
        {"json": {"version": s.version, "scores": [{"indicator_id": s.indicator_id, "score": 1}]}},
    ),
    ("POST", "/evaluations/{evaluation_id}/return"): lambda w, s: (
        {"evaluation_id": s.evaluation_id},
        {"json": {"version": s.version, "reason": "Thiếu minh chứng"}},
    ),
    ("POST", "/evaluations/{evaluation_id}/complete-review"): lambda w, s: _transition(s),
    ("POST", "/evaluations/{evaluation_id}/evidence"): lambda w, s: (
        {"evaluation_id": s.evaluation_id},
        _pdf(s),
    ),
    ("GET", "/evidence/{evidence_id}/content"): lambda w, s: ({"evidence_id": s.evidence_id}, {}),
    ("DELETE", "/evidence/{evidence_id}"): lambda w, s: ({"evidence_id": s.evidence_id}, {}),
    ("GET", "/recognition-decisions/{decision_id}"): lambda w, s: ({"decision_id": s.decision_id}, {}),
    ("POST", "/recognition-decisions/{decision_id}/revoke"): lambda w, s: (
        {"decision_id": s.decision_id},
        {"json": {"reason": "Sai sót"}},
    ),
}

CASES.update(
    {
        ("GET", "/plans/{plan_id}"): lambda w, s: ({"plan_id": s.plan_id}, {}),
        ("PATCH", "/plans/{plan_id}"): lambda w, s: ({"plan_id": s.plan_id}, {"json": {"title": "Đổi"}}),
        ("DELETE", "/plans/{plan_id}"): lambda w, s: ({"plan_id": s.plan_id}, {}),
        ("PUT", "/plans/{plan_id}/targets"): lambda w, s: (
            {"plan_id": s.plan_id},
            {
                "json": {
                    "version": 1,
                    "targets": [{"metric": "staff_recognised_pct", "year": 2030, "value": 90}],
                }
            },
        ),
        ("GET", "/training-sessions/{session_id}"): lambda w, s: ({"session_id": s.training_id}, {}),
        ("PUT", "/training-sessions/{session_id}/attendees"): lambda w, s: (
            {"session_id": s.training_id},
            {"json": {"version": 1, "attendee_ids": [s.person_id]}},
        ),
        ("GET", "/reorganisations/{reorganisation_id}"): lambda w, s: (
            {"reorganisation_id": s.reorganisation_id},
            {},
        ),
        ("GET", "/people/{person_id}/transfers"): lambda w, s: ({"person_id": s.person_id}, {}),
        ("POST", "/people/{person_id}/citizen-id-claim"): lambda w, s: (
            {"person_id": s.person_id},
            {"json": {"same_person": False}},
        ),
        # A group change only: the person stays in their own unit, so only the person's scope decides.
        ("POST", "/people/{person_id}/transfers"): lambda w, s: (
            {"person_id": s.person_id},
            {"json": {"effective_on": today().isoformat(), "group": "worker"}},
        ),
        ("GET", "/households/{household_id}"): lambda w, s: ({"household_id": s.household_id}, {}),
        ("PATCH", "/households/{household_id}"): lambda w, s: (
            {"household_id": s.household_id},
            {"json": {"name": "Đổi"}},
        ),
        ("PUT", "/households/{household_id}/members"): lambda w, s: (
            {"household_id": s.household_id},
            {"json": {"member_ids": [s.person_id]}},
        ),
        ("GET", "/clans/{clan_id}"): lambda w, s: ({"clan_id": s.clan_id}, {}),
        ("PATCH", "/clans/{clan_id}"): lambda w, s: ({"clan_id": s.clan_id}, {"json": {"name": "Đổi"}}),
        ("PUT", "/clans/{clan_id}/households"): lambda w, s: (
            {"clan_id": s.clan_id},
            {"json": {"household_ids": [s.household_id]}},
        ),
    }
)

CASES.update(
    {
        ("GET", "/report-submissions/{submission_id}"): lambda w, s: ({"submission_id": s.submission_id}, {}),
        ("GET", "/report-submissions/{submission_id}/file"): lambda w, s: (
            {"submission_id": s.submission_id},
            {},
        ),
        ("POST", "/report-submissions/{submission_id}/accept"): lambda w, s: (
            {"submission_id": s.submission_id},
            {},
        ),
        ("POST", "/report-submissions/{submission_id}/return"): lambda w, s: (
            {"submission_id": s.submission_id},
            {"json": {"reason": "Thiếu số liệu"}},
        ),
        # A calendar is addressed by the unit that sets it (and a year, which is not an id).
        ("PUT", "/reporting-calendars/{org_unit_id}/{year}"): lambda w, s: (
            {"org_unit_id": s.home_id, "year": 2025},
            {"json": {"due_on": "2025-12-05"}},
        ),
        ("GET", "/reporting-calendars/{org_unit_id}/{year}"): lambda w, s: (
            {"org_unit_id": s.home_id, "year": 2025},
            {},
        ),
        ("DELETE", "/reporting-calendars/{org_unit_id}/{year}"): lambda w, s: (
            {"org_unit_id": s.home_id, "year": 2025},
            {},
        ),
        ("GET", "/reporting-calendars/{org_unit_id}"): lambda w, s: ({"org_unit_id": s.home_id}, {}),
        ("GET", "/webhooks/{webhook_id}"): lambda w, s: ({"webhook_id": s.webhook_id}, {}),
        ("PATCH", "/webhooks/{webhook_id}"): lambda w, s: (
            {"webhook_id": s.webhook_id},
            {"json": {"description": "Đổi"}},
        ),
        ("DELETE", "/webhooks/{webhook_id}"): lambda w, s: ({"webhook_id": s.webhook_id}, {}),
        ("GET", "/webhooks/{webhook_id}/deliveries"): lambda w, s: ({"webhook_id": s.webhook_id}, {}),
        ("POST", "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): lambda w, s: (
            {"webhook_id": s.webhook_id, "delivery_id": s.delivery_id},
            {},
        ),
    }
)

# Routes whose objects belong to no subtree, with the reason; still proven readable from anywhere below.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/criteria-sets/{set_id}"): "criteria sets are programme data, readable by every signed-in user",
}


# Routes whose objects belong to the account that made them, not to a unit: everyone else — in the same
# subtree or not — gets the 404 of a missing id. Proven where the object is made (the file named).
OWNED: dict[tuple[str, str], str] = {
    ("GET", "/imports/jobs/{job_id}"): "an import job is its sender's (tests/api/test_import_jobs.py)",
}


@dataclass
class Named:
    """A unit as a request names it: by id (JSON bodies) or by code (files)."""

    id: int
    code: str


def _csv(unit: Named, parent: Named) -> bytes:
    return f"old_code,new_code,new_name,new_kind,new_parent_code\n{unit.code},,,,{parent.code}\n".encode()


# Routes without an id in the path whose request names units to write (in the body or a file): ``unit``
# moves under ``parent``. Naming province B's units from province A must answer exactly what naming units
# that do not exist answers, and write nothing.
UnitCase = Callable[[Named, Named], dict[str, Any]]
NAMING: dict[tuple[str, str], UnitCase] = {
    ("POST", "/reorganisations"): lambda unit, parent: {
        "json": {
            "effective_on": today().isoformat(),
            "title": "Sắp xếp",
            "steps": [{"op": "move", "unit": unit.id, "parent": parent.id}],
        }
    },
    ("POST", "/imports/reorganisation"): lambda unit, parent: {
        "params": {"effective_on": today().isoformat()},
        "files": {"file": ("sap-xep.csv", _csv(unit, parent), "text/csv")},
    },
    ("POST", "/households"): lambda unit, parent: {
        "json": {"name": "Hộ mới", "org_unit_id": parent.id, "member_ids": []}
    },
    ("POST", "/clans"): lambda unit, parent: {
        "json": {"name": "Dòng họ mới", "org_unit_id": parent.id, "household_ids": []}
    },
}
# Lists that must not show province B's objects to a caller of province A: path → the Side field listed.
LISTS: dict[tuple[str, str], str] = {
    ("GET", "/reorganisations"): "reorganisation_id",
    ("GET", "/households"): "household_id",
    ("GET", "/clans"): "clan_id",
    ("GET", "/report-submissions"): "submission_id",
    ("GET", "/webhooks"): "webhook_id",
}


def api_operations(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves under /api/v1 (path without the prefix), from ``app.routes``.

    Since FastAPI 0.16x an included router sits in ``app.routes`` as one lazily resolved node whose
    ``effective_route_contexts()`` yields the routes with their full paths. The OpenAPI document is
    walked too, so a change in those internals cannot make routes silently drop out of this test.
    """
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any]) -> None:
        for route in routes:
            contexts = getattr(route, "effective_route_contexts", None)
            if contexts is not None:
                for context in contexts():
                    methods = getattr(context.original_route, "methods", None) or ()
                    found.update((m, context.path) for m in methods)
            elif isinstance(route, APIRoute):
                found.update((m, route.path) for m in route.methods)
            elif hasattr(route, "routes"):
                walk(route.routes)

    walk(list(app.routes))
    for path, operations in app.openapi()["paths"].items():
        found.update((method.upper(), path) for method in operations)
    return {(m, p.removeprefix(API)) for m, p in found if p.startswith(f"{API}/") and m != "HEAD"}


def routes_with_an_id(app: FastAPI) -> set[tuple[str, str]]:
    return {(m, p) for m, p in api_operations(app) if "{" in p}


async def test_every_route_with_an_id_has_a_sibling_subtree_case(app: FastAPI) -> None:
    routes = routes_with_an_id(app)
    assert ("GET", "/org-units/{unit_id}") in routes, "the route walk found nothing"
    unmapped = sorted(routes - CASES.keys() - PUBLIC.keys() - OWNED.keys())
    assert not unmapped, (
        f"Routes taking an id without a sibling-subtree case: {unmapped}. Add each to CASES in "
        "tests/api/test_scope_routes.py (how to address an object of province B, and a valid body)."
    )
    stale = sorted((CASES.keys() | PUBLIC.keys() | OWNED.keys()) - routes)
    assert not stale, f"CASES/PUBLIC/OWNED list routes the app no longer has: {stale}"
    # Reads and every kind of write are exercised, not only GETs.
    assert {m for m, _ in CASES} >= {"GET", "PUT", "PATCH", "DELETE", "POST"}
    unserved = sorted((NAMING.keys() | LISTS.keys()) - api_operations(app))
    assert not unserved, f"NAMING/LISTS list routes the app does not serve: {unserved}"


async def _evaluated(
    client: httpx.AsyncClient, tree: Tree, h: dict[str, str], unit: OrgUnit, person_id: int
) -> tuple[int, int, int, int, int]:
    """A recognised evaluation of ``person_id`` with evidence on every indicator, through the API: filled
    in by ``h``, reviewed and signed by two other admins (separation of duties)."""
    reviewer, signer = tree.auth(await tree.admin()), tree.auth(await tree.admin())
    r = await client.post(f"{API}/evaluations", json={"person_id": person_id, "year": 2025}, headers=h)
    assert r.status_code == 201, r.text
    evaluation = r.json()
    indicator_ids = [s["indicator_id"] for s in evaluation["scores"]]
    scores = [{"indicator_id": i, "score": 9} for i in indicator_ids]
    body = {"version": evaluation["version"], "scores": scores}
    r = await client.put(f"{API}/evaluations/{evaluation['id']}/self-assessment", json=body, headers=h)
    assert r.status_code == 200, r.text
    evidence_ids = []
    for indicator_id in indicator_ids:
        r = await client.post(
            f"{API}/evaluations/{evaluation['id']}/evidence",
            data={"indicator_id": str(indicator_id)},
            files={"file": ("minh-chung.pdf", MINIMAL_PDF, "application/pdf")},
            headers=h,
        )
        assert r.status_code == 201, r.text
        evidence_ids.append(r.json()["id"])
    for step, actor in (("submit", h), ("complete-review", reviewer)):
        version = (await client.get(f"{API}/evaluations/{evaluation['id']}", headers=h)).json()["version"]
        r = await client.post(
            f"{API}/evaluations/{evaluation['id']}/{step}", json={"version": version}, headers=actor
        )
        assert r.status_code == 200, (step, r.text)
    r = await client.post(
        f"{API}/recognition-decisions",
        json={
            "org_unit_id": unit.id,
            "year": 2025,
            "number": f"QĐ-{unit.id}",
            "signed_on": "2025-12-20",
            "evaluation_ids": [evaluation["id"]],
        },
        headers=signer,
    )
    assert r.status_code == 201, r.text
    version = (await client.get(f"{API}/evaluations/{evaluation['id']}", headers=h)).json()["version"]
    return evaluation["id"], version, indicator_ids[0], evidence_ids[0], r.json()["id"]


async def _side(
    client: httpx.AsyncClient, tree: Tree, admin_h: dict[str, str], home: OrgUnit, leaf: OrgUnit
) -> Side:
    user = await tree.user(("member", home))
    assignment_id = await tree.session.scalar(
        select(RoleAssignment.id).where(RoleAssignment.user_id == user.id)
    )
    assert assignment_id is not None
    person = await tree.person(home, "staff")
    made = await _evaluated(client, tree, admin_h, home, person.id)
    plan = await client.post(
        f"{API}/plans",
        json={
            "org_unit_id": home.id,
            "title": "Kế hoạch xây dựng mô hình Công dân học tập",
            "start_year": 2021,
            "end_year": 2030,
            "targets": [{"metric": "staff_recognised_pct", "year": 2025, "value": 60}],
        },
        headers=admin_h,
    )
    assert plan.status_code == 201, plan.text
    training = await client.post(
        f"{API}/training-sessions",
        json={"org_unit_id": home.id, "title": "Tập huấn bộ tiêu chí", "held_on": "2025-03-01"},
        headers=admin_h,
    )
    assert training.status_code == 201, training.text
    reorganisation = await client.post(
        f"{API}/reorganisations",
        json={
            "effective_on": today().isoformat(),
            "title": "Đổi tên đơn vị",
            "steps": [{"op": "rename", "unit": leaf.id, "name": f"{leaf.name} (mới)"}],
        },
        headers=admin_h,
    )
    assert reorganisation.status_code == 201, reorganisation.text
    household = await client.post(
        f"{API}/households",
        json={"name": "Hộ gia đình", "org_unit_id": home.id, "member_ids": [person.id]},
        headers=admin_h,
    )
    assert household.status_code == 201, household.text
    clan = await client.post(
        f"{API}/clans",
        json={"name": "Dòng họ", "org_unit_id": home.id, "household_ids": [household.json()["id"]]},
        headers=admin_h,
    )
    assert clan.status_code == 201, clan.text
    submission = await client.post(
        f"{API}/report-submissions", json={"org_unit_id": home.id, "year": 2025}, headers=admin_h
    )
    assert submission.status_code == 201, submission.text
    hook = {"url": "http://127.0.0.1:9/hook", "events": ["report.accepted"], "org_unit_id": home.id}
    webhook = await client.post(f"{API}/webhooks", json=hook, headers=admin_h)
    assert webhook.status_code == 201, webhook.text
    accepted = await client.post(
        f"{API}/report-submissions/{submission.json()['id']}/accept", headers=admin_h
    )
    assert accepted.status_code == 200, accepted.text
    deliveries = await client.get(f"{API}/webhooks/{webhook.json()['id']}/deliveries", headers=admin_h)
    assert deliveries.json()["total"] == 1, deliveries.text
    return Side(
        leaf,
        user.id,
        assignment_id,
        person.id,
        *made,
        plan.json()["id"],
        training.json()["id"],
        reorganisation.json()["id"],
        household.json()["id"],
        clan.json()["id"],
        submission.json()["id"],
        home.id,
        webhook.json()["id"],
        deliveries.json()["items"][0]["id"],
    )


async def _world(client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]) -> World:
    c = await build_country(tree)
    admin_h = tree.auth(await tree.admin())
    r = await client.post(
        f"{API}/criteria-sets",
        json={
            "parent_id": criteria["staff"],
            "org_unit_id": c.school_b.id,
            "code": f"B-VARIANT-{c.school_b.id}",
            "title": "Bộ tiêu chí của Trường B",
            "substitutions": [{"number": 6, "source_set_id": criteria[None]}],
        },
        headers=admin_h,
    )
    assert r.status_code == 201, r.text
    return World(
        country=c,
        a=await _side(client, tree, admin_h, c.school_a, c.dept_a),
        b=await _side(client, tree, admin_h, c.school_b, c.school_b),
        criteria_set_id=r.json()["id"],
    )


async def _coded(tree: Tree, *units: OrgUnit) -> list[Named]:
    """Give ``units`` codes (the reorganisation file names units by code)."""
    named = []
    for unit in units:
        code = await tree.session.scalar(select(OrgUnit.code).where(OrgUnit.id == unit.id))
        if code is None:
            code = f"SCOPE-{unit.id}"
            await tree.session.execute(update(OrgUnit).where(OrgUnit.id == unit.id).values(code=code))
        named.append(Named(unit.id, code))
    await tree.session.commit()
    return named


async def _call(
    client: httpx.AsyncClient, method: str, path: str, request: Request, headers: dict[str, str]
) -> httpx.Response:
    params, kwargs = request
    return await client.request(method, API + path.format(**params), headers=headers, **kwargs)


def _normalised(r: httpx.Response, sent: tuple[str | None, ...] = ()) -> str:
    text = r.text
    for code in sent:
        if code:
            text = text.replace(code, "CODE")
    return re.sub(r"\d+", "N", text)


def _files(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p), p.stat().st_size) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize("role", [r.value for r in Role if r != Role.ADMIN])
async def test_objects_of_a_sibling_subtree_are_404_on_every_id_route(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI, criteria: dict[str | None, int], role: str
) -> None:
    world = await _world(client, tree, criteria)
    headers = tree.auth(await tree.user((role, world.country.province_a)))
    cases = sorted(routes_with_an_id(app) & CASES.keys())
    evidence_dir = app.state.settings.effective_evidence_dir
    before, files_before = await tree.snapshot(), _files(evidence_dir)

    for method, path in cases:
        request = CASES[(method, path)](world, world.b)
        outside = await _call(client, method, path, request, headers)
        # Ids are replaced by one that does not exist; other path parameters (a year) are kept.
        absent = {k: MISSING_ID if k.endswith("_id") else v for k, v in request[0].items()}
        missing = await _call(client, method, path, (absent, request[1]), headers)
        where = (role, method, path)
        assert outside.status_code == 404, (where, outside.text)
        assert missing.status_code == 404, (where, missing.text)
        assert outside.json()["error"]["code"] == "not_found"
        # Indistinguishable from "does not exist": same code, same message (up to the id), same details.
        assert _normalised(outside) == _normalised(missing), where

    # Routes without an id that name units: province B's units answer as units that do not exist.
    c = world.country
    coded = await _coded(tree, c.school_b, c.province_b, c.commune_a2, c.province_a)
    school_b, province_b, commune_a2, province_a = coded
    nowhere = (Named(MISSING_ID, "KHONG-CO-1"), Named(MISSING_ID + 1, "KHONG-CO-2"))
    before = await tree.snapshot()
    for (method, path), case in sorted(NAMING.items()):
        outside = await client.request(method, API + path, headers=headers, **case(school_b, province_b))
        missing = await client.request(method, API + path, headers=headers, **case(*nowhere))
        where = (role, method, path)
        assert outside.status_code in (403, 404, 422), (where, outside.text)
        # The codes the caller sent are echoed back; only what the server adds may not differ.
        sent = (school_b.code, province_b.code, nowhere[0].code, nowhere[1].code)
        assert (outside.status_code, _normalised(outside, sent)) == (
            missing.status_code,
            _normalised(missing, sent),
        ), (where, outside.text, missing.text)
    for (method, path), field in sorted(LISTS.items()):
        r = await client.request(method, API + path, headers=headers)
        assert r.status_code in (200, 403), ((role, method, path), r.text)
        if r.status_code == 200:
            assert getattr(world.b, field) not in [x["id"] for x in r.json()["items"]], (role, method, path)

    assert await tree.snapshot() == before, "a request for an object out of scope changed the database"

    # Control: naming province A's own units is done by an org_admin and refused by role for the others.
    for (method, path), case in sorted(NAMING.items()):
        r = await client.request(method, API + path, headers=headers, **case(commune_a2, province_a))
        assert r.status_code == (201 if role == Role.ORG_ADMIN else 403), ((role, method, path), r.text)
    assert _files(evidence_dir) == files_before, "a request for an object out of scope stored a file"

    # Control: the same requests for province A's objects are not 404 (done, refused by role, or refused
    # by the object's state), so the 404s above come from the scope and not from a broken case.
    for method, path in sorted(cases, key=lambda mp: (mp[0] == "DELETE", mp[1])):
        inside = await _call(client, method, path, CASES[(method, path)](world, world.a), headers)
        assert inside.status_code in (200, 201, 202, 204, 403, 409), ((role, method, path), inside.text)

    # Public routes: the province-B object is readable from province A, by design.
    for method, path in sorted(PUBLIC.keys() & routes_with_an_id(app)):
        r = await client.request(method, API + path.format(set_id=world.criteria_set_id), headers=headers)
        assert r.status_code == 200, (method, path, r.text)
