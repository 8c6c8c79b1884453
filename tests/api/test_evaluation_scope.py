"""A sibling school's committee and admin cannot tell another school's evaluations, evidence and decisions
from ids that do not exist: every route answers the same 404, writes nothing, and lists leave them out."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.evaluation_flow import API, School, drive_to, get, make_school
from tests.builders import MINIMAL_PDF, Tree

pytestmark = pytest.mark.anyio

MISSING = 2_000_000_000


@dataclass
class Targets:
    draft: dict[str, Any]  # fully self-assessed, with evidence: submit would succeed
    withdrawn: dict[str, Any]
    submitted: dict[str, Any]
    decision_id: int


# (method, route) -> (target ids -> the id in the path, a body that would be valid, multipart?)
Route = tuple[Callable[[Targets], int], dict[str, Any] | None, bool]
ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/evaluations/{evaluation_id}"): (lambda t: t.draft["id"], None, False),
    ("GET", "/evaluations/{evaluation_id}/history"): (lambda t: t.draft["id"], None, False),
    ("PUT", "/evaluations/{evaluation_id}/self-assessment"): (
        lambda t: t.draft["id"],
        {"scores": "draft"},
        False,
    ),
    ("POST", "/evaluations/{evaluation_id}/submit"): (lambda t: t.draft["id"], None, False),
    ("POST", "/evaluations/{evaluation_id}/withdraw"): (lambda t: t.draft["id"], None, False),
    ("POST", "/evaluations/{evaluation_id}/reopen"): (lambda t: t.withdrawn["id"], None, False),
    ("PUT", "/evaluations/{evaluation_id}/review"): (
        lambda t: t.submitted["id"],
        {"scores": "submitted"},
        False,
    ),
    ("POST", "/evaluations/{evaluation_id}/return"): (
        lambda t: t.submitted["id"],
        {"reason": "Bổ sung"},
        False,
    ),
    ("POST", "/evaluations/{evaluation_id}/complete-review"): (lambda t: t.submitted["id"], None, False),
    ("POST", "/evaluations/{evaluation_id}/evidence"): (lambda t: t.draft["id"], None, True),
    ("GET", "/evidence/{evidence_id}/content"): (lambda t: t.draft["evidence"][0]["id"], None, False),
    ("DELETE", "/evidence/{evidence_id}"): (lambda t: t.draft["evidence"][0]["id"], None, False),
    ("GET", "/recognition-decisions/{decision_id}"): (lambda t: t.decision_id, None, False),
    ("POST", "/recognition-decisions/{decision_id}/revoke"): (
        lambda t: t.decision_id,
        {"reason": "Sai"},
        False,
    ),
}


async def test_every_evaluation_evidence_and_decision_route_with_an_id_is_covered(app: FastAPI) -> None:
    prefixes = ("/evaluations/{", "/evidence/{", "/recognition-decisions/{")
    routes = {
        (method.upper(), path.removeprefix(API))
        for path, operations in app.openapi()["paths"].items()
        if path.removeprefix(API).startswith(prefixes)
        for method in operations
    }
    assert routes == set(ROUTES)


async def _call(
    client: httpx.AsyncClient,
    h: dict[str, str],
    method: str,
    path: str,
    id_: int,
    body: Any,
    multipart: bool,
    t: Targets,
) -> httpx.Response:
    url = API + re.sub(r"\{[^}]+\}", str(id_), path)
    if multipart:
        indicator = t.draft["scores"][0]["indicator_id"]
        files = {"file": ("minh-chung.pdf", MINIMAL_PDF, "application/pdf")}
        return await client.post(url, data={"indicator_id": str(indicator)}, files=files, headers=h)
    if body and "scores" in body:
        ev = getattr(t, body["scores"])
        body = {
            "version": ev["version"],
            "scores": [{"indicator_id": ev["scores"][0]["indicator_id"], "score": 1}],
        }
    return await client.request(method, url, json=body, headers=h)


async def _school_a(client: httpx.AsyncClient, tree: Tree, school: School) -> Targets:
    # A draft that is self-assessed and has evidence: submitting it would succeed.
    draft = await drive_to(client, tree, school, "submitted", evidence=True)
    for step in ("withdraw", "reopen"):
        r = await client.post(f"{API}/evaluations/{draft['id']}/{step}", headers=school.admin)
        assert r.status_code == 200, r.text
    draft = r.json()
    withdrawn = await drive_to(client, tree, school, "withdrawn")
    submitted = await drive_to(client, tree, school, "submitted")
    recognised = await drive_to(client, tree, school, "recognised")
    return Targets(draft, withdrawn, submitted, recognised["decision_id"])


@pytest.mark.parametrize("role", ["assessor", "approver", "admin"])
async def test_a_sibling_school_gets_404_on_every_route(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int], role: str
) -> None:
    commune = await tree.unit("Xã Tam Hưng", "commune")
    a = await make_school(tree, commune, "MN Tam Hưng A")
    b = await make_school(tree, commune, "MN Tam Hưng B")
    t = await _school_a(client, tree, a)
    before = {k: await get(client, a.admin, v["id"]) for k, v in vars(t).items() if isinstance(v, dict)}
    caller = getattr(b, role)
    for (method, path), (target, body, multipart) in ROUTES.items():
        real = await _call(client, caller, method, path, target(t), body, multipart, t)
        missing = await _call(client, caller, method, path, MISSING, body, multipart, t)
        label = f"{method} {path}"
        assert real.status_code == 404, (label, real.text)
        assert missing.status_code == 404, (label, missing.text)
        assert real.json()["error"]["code"] == "not_found", label
        real_message = real.json()["error"]["message"].replace(str(target(t)), "<id>")
        assert real_message == missing.json()["error"]["message"].replace(str(MISSING), "<id>"), label
        assert real.json()["error"]["details"] == missing.json()["error"]["details"], label
    after = {k: await get(client, a.admin, v["id"]) for k, v in vars(t).items() if isinstance(v, dict)}
    assert after == before
    decision = await client.get(f"{API}/recognition-decisions/{t.decision_id}", headers=a.approver)
    assert decision.json()["status"] == "active"
    content = await client.get(f"{API}/evidence/{t.draft['evidence'][0]['id']}/content", headers=a.assessor)
    assert content.content == MINIMAL_PDF


@pytest.mark.parametrize("role", ["assessor", "approver", "admin"])
async def test_lists_never_show_a_sibling_schools_objects(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int], role: str
) -> None:
    commune = await tree.unit("Xã Tam Hưng", "commune")
    a = await make_school(tree, commune, "MN Tam Hưng A")
    b = await make_school(tree, commune, "MN Tam Hưng B")
    theirs = await drive_to(client, tree, a, "recognised")
    ours = await drive_to(client, tree, b, "recognised")
    caller = getattr(b, role)
    for query in (
        "",
        "?year=2025",
        "?status=recognised",
        f"?org_unit_id={b.unit.id}",
        f"?person_id={theirs['person_id']}",
    ):
        listed = (await client.get(f"{API}/evaluations{query}", headers=caller)).json()
        ids = [e["id"] for e in listed["items"]]
        assert theirs["id"] not in ids, query
        assert listed["total"] == len(ids), query
        if "person_id" not in query:
            assert ours["id"] in ids, query
    decisions = (await client.get(f"{API}/recognition-decisions?year=2025", headers=caller)).json()
    assert [d["id"] for d in decisions["items"]] == [ours["decision_id"]]
    assert decisions["total"] == 1
    for url in (
        f"{API}/evaluations?org_unit_id={a.unit.id}",
        f"{API}/recognition-decisions?org_unit_id={a.unit.id}",
    ):
        r = await client.get(url, headers=caller)
        assert r.status_code == 404, url
        assert r.json()["error"]["message"] == f"Org unit {a.unit.id} not found."
    # The commune above both sees both.
    district_assessor = tree.auth(await tree.user(("assessor", commune)))
    listed = (await client.get(f"{API}/evaluations", headers=district_assessor)).json()
    assert {e["id"] for e in listed["items"]} == {theirs["id"], ours["id"]}


@pytest.mark.parametrize("role", ["assessor", "approver", "admin"])
async def test_creating_for_a_sibling_schools_person_or_unit_is_404(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int], role: str
) -> None:
    commune = await tree.unit("Xã Tam Hưng", "commune")
    a = await make_school(tree, commune, "MN Tam Hưng A")
    b = await make_school(tree, commune, "MN Tam Hưng B")
    theirs = await drive_to(client, tree, a, "reviewed")
    person = await tree.person(a.unit, "staff")
    caller = getattr(b, role)
    answers = []
    for person_id in (person.id, MISSING):
        r = await client.post(
            f"{API}/evaluations", json={"person_id": person_id, "year": 2025}, headers=caller
        )
        answers.append((r.status_code, r.json()["error"]["message"].replace(str(person_id), "<id>")))
    assert answers == [(404, "Person <id> not found.")] * 2
    body = {"year": 2025, "number": "1/QĐ", "signed_on": "2025-12-20", "evaluation_ids": [theirs["id"]]}
    r = await client.post(
        f"{API}/recognition-decisions", json={**body, "org_unit_id": a.unit.id}, headers=caller
    )
    assert (r.status_code, r.json()["error"]["message"]) == (404, f"Org unit {a.unit.id} not found.")
    assert (await get(client, a.admin, theirs["id"]))["status"] == "reviewed"
    listed = (await client.get(f"{API}/evaluations?person_id={person.id}", headers=a.admin)).json()
    assert listed["total"] == 0
