"""Driving evaluations through the API for the evaluation tests: a school with its committee, and an
evaluation brought to any status by the same calls a person, an assessor and an approver would make."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

from app.auth.models import User
from app.orgs.models import OrgUnit
from app.people.models import Person
from tests.builders import MINIMAL_PDF, Tree

API = "/api/v1"
_numbers = itertools.count(1)


@dataclass
class School:
    unit: OrgUnit
    admin: dict[str, str]  # org_admin: opens evaluations and self-assesses on people's behalf
    assessor: dict[str, str]
    approver: dict[str, str]
    assessor_user: User
    approver_user: User


async def make_school(tree: Tree, parent: OrgUnit | None = None, name: str = "Trường MN") -> School:
    unit = await tree.unit(name, "school", parent)
    assessor = await tree.user(("assessor", unit))
    approver = await tree.user(("approver", unit))
    return School(
        unit=unit,
        admin=tree.auth(await tree.user(("org_admin", unit))),
        assessor=tree.auth(assessor),
        approver=tree.auth(approver),
        assessor_user=assessor,
        approver_user=approver,
    )


async def open_evaluation(
    client: httpx.AsyncClient, tree: Tree, school: School, person: Person | None = None, year: int = 2025
) -> dict[str, Any]:
    person = person or await tree.person(school.unit, "staff")
    r = await client.post(
        f"{API}/evaluations", json={"person_id": person.id, "year": year}, headers=school.admin
    )
    assert r.status_code == 201, r.text
    return r.json()


async def self_assess(
    client: httpx.AsyncClient,
    h: dict[str, str],
    evaluation: dict[str, Any],
    points: list[float],
    digital_level: str | None = None,
) -> dict[str, Any]:
    """Self scores by indicator number, with the person's declared digital level when given."""
    scores = [
        {"indicator_id": s["indicator_id"], "score": points[s["number"] - 1]} for s in evaluation["scores"]
    ]
    body: dict[str, Any] = {"version": evaluation["version"], "scores": scores}
    if digital_level is not None:
        body["digital_level"] = digital_level
    r = await client.put(f"{API}/evaluations/{evaluation['id']}/self-assessment", json=body, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


async def upload(
    client: httpx.AsyncClient,
    h: dict[str, str],
    evaluation_id: int,
    indicator_id: int,
    content: bytes = MINIMAL_PDF,
) -> httpx.Response:
    return await client.post(
        f"{API}/evaluations/{evaluation_id}/evidence",
        data={"indicator_id": str(indicator_id)},
        files={"file": ("minh-chung.pdf", content, "application/pdf")},
        headers=h,
    )


async def attach_evidence(
    client: httpx.AsyncClient,
    h: dict[str, str],
    evaluation: dict[str, Any],
    skip: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    for s in evaluation["scores"]:
        if s["number"] not in skip:
            r = await upload(client, h, evaluation["id"], s["indicator_id"])
            assert r.status_code == 201, r.text
    return await get(client, h, evaluation["id"])


async def get(client: httpx.AsyncClient, h: dict[str, str], evaluation_id: int) -> dict[str, Any]:
    r = await client.get(f"{API}/evaluations/{evaluation_id}", headers=h)
    assert r.status_code == 200, r.text
    return r.json()


async def act(
    client: httpx.AsyncClient, h: dict[str, str], evaluation_id: int, action: str, body: Any = None
) -> httpx.Response:
    """POST /evaluations/{id}/{action} (submit, withdraw, reopen, return, complete-review)."""
    return await client.post(f"{API}/evaluations/{evaluation_id}/{action}", json=body, headers=h)


async def sign(
    client: httpx.AsyncClient, school: School, evaluation_ids: list[int], year: int = 2025
) -> httpx.Response:
    body = {
        "org_unit_id": school.unit.id,
        "year": year,
        "number": f"{next(_numbers)}/QĐ-CDHT",
        "signed_on": f"{year}-12-20",
        "evaluation_ids": evaluation_ids,
    }
    return await client.post(f"{API}/recognition-decisions", json=body, headers=school.approver)


async def drive_to(
    client: httpx.AsyncClient,
    tree: Tree,
    school: School,
    status: str,
    *,
    points: list[float] | None = None,
    person: Person | None = None,
    year: int = 2025,
    evidence: bool | None = None,
) -> dict[str, Any]:
    """An evaluation brought to ``status`` through the API; once reviewed it has evidence for every
    indicator (so that, with the default 9 points each, it passes), before that only when asked."""
    ev = await open_evaluation(client, tree, school, person, year)
    steps: dict[str, list[tuple[dict[str, str], str, Any]]] = {
        "draft": [],
        "withdrawn": [(school.admin, "withdraw", None)],
        "submitted": [(school.admin, "submit", None)],
        "returned": [(school.admin, "submit", None), (school.assessor, "return", {"reason": "Bổ sung"})],
        "in_review": [(school.admin, "submit", None)],
        "reviewed": [(school.admin, "submit", None), (school.assessor, "complete-review", None)],
        "recognised": [(school.admin, "submit", None), (school.assessor, "complete-review", None)],
    }
    if status not in ("draft", "withdrawn"):
        ev = await self_assess(client, school.admin, ev, points or [9] * 10)
    if evidence or (evidence is None and status in ("reviewed", "recognised")):
        ev = await attach_evidence(client, school.admin, ev)
    for h, action, body in steps[status]:
        r = await act(client, h, ev["id"], action, body)
        assert r.status_code == 200, r.text
        ev = r.json()
    if status == "in_review":
        r = await client.put(
            f"{API}/evaluations/{ev['id']}/review",
            json={"version": ev["version"], "scores": []},
            headers=school.assessor,
        )
        assert r.status_code == 200, r.text
        ev = r.json()
    if status == "recognised":
        r = await sign(client, school, [ev["id"]], year)
        assert r.status_code == 201, r.text
        ev = await get(client, school.admin, ev["id"])
    assert ev["status"] == status
    return ev


def by_number(evaluation: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {s["number"]: s for s in evaluation["scores"]}
