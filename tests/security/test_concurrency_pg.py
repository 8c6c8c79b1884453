"""Issue 6, group 5: concurrency on PostgreSQL (SQLite serialises every writer, so nothing races there).

On a throwaway database with committed data and the app's own connection pool (tests/security/live.py):
identical creates racing for one unique code, a recognition decision racing a return on the same
evaluations, and a storm of random concurrent workflow operations after which every aggregate still
equals an independent recount and every evaluation's status agrees with its decision. (Twenty parallel
reviews of one evaluation are in tests/api/test_evaluation_concurrency.py.)
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.aggregates.naive import naive_recount
from app.decisions.models import DecisionItem, RecognitionDecision
from app.evaluations.models import Evaluation, Evidence
from app.orgs.models import OrgUnit
from tests.api.evaluation_flow import API
from tests.security.live import ON_POSTGRES, Live, live_app

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        not ON_POSTGRES,
        reason="needs PostgreSQL (CDHT_TEST_DATABASE_URL=postgresql://...): SQLite serialises every writer, "
        "so parallel requests cannot race there",
    ),
]

STORM_OPERATIONS = 600
STORM_PARALLEL = 16


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with live_app(tmp_path, "cdht_race") as served:
        yield served


async def _count(live: Live, *where: Any) -> int:
    async with live.app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).where(*where)) or 0)


async def _post(live: Live, path: str, body: Any, h: dict[str, str] | None = None) -> httpx.Response:
    return await live.client.post(API + path, json=body, headers=h or live.admin)


async def test_parallel_identical_creates_leave_one_unit(live: Live) -> None:
    root = (await _post(live, "/org-units", {"name": "Tỉnh", "kind": "province"})).json()
    body = {"name": "Xã Tân Lập", "kind": "commune", "parent_id": root["id"], "code": "31234"}
    answers = await asyncio.gather(*(_post(live, "/org-units", body) for _ in range(20)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * 19, [r.text for r in answers if r.status_code not in (201, 409)]
    assert all(r.json()["error"]["code"] == "conflict" for r in answers if r.status_code == 409)
    assert await _count(live, OrgUnit.code == "31234") == 1


@dataclass
class Committee:
    unit: dict[str, Any]
    org_admin: dict[str, str]
    assessor: dict[str, str]
    approver: dict[str, str]
    evaluations: list[int] = field(default_factory=list)


async def _school(live: Live, parent_id: int, n: int) -> Committee:
    unit = await _post(live, "/org-units", {"name": f"Trường {n}", "kind": "school", "parent_id": parent_id})
    assert unit.status_code == 201, unit.text
    at = await live.tree.session.get(OrgUnit, unit.json()["id"])
    auth = live.tree.auth
    return Committee(
        unit.json(),
        auth(await live.tree.user(("org_admin", at))),
        auth(await live.tree.user(("assessor", at))),
        auth(await live.tree.user(("approver", at))),
    )


async def _submitted(live: Live, c: Committee, group: str, points: int) -> int:
    """An evaluation self-assessed with ``points`` on every indicator, evidence on each, submitted."""
    body = {"full_name": "Người", "org_unit_id": c.unit["id"], "group": group, "member_since": "2025-01-01"}
    person = await _post(live, "/people", body)
    assert person.status_code == 201, person.text
    ev = (
        await _post(live, "/evaluations", {"person_id": person.json()["id"], "year": 2025}, c.org_admin)
    ).json()
    scores = [{"indicator_id": s["indicator_id"], "score": points} for s in ev["scores"]]
    r = await live.client.put(
        f"{API}/evaluations/{ev['id']}/self-assessment",
        json={"version": ev["version"], "scores": scores},
        headers=c.org_admin,
    )
    assert r.status_code == 200, r.text
    for s in ev["scores"]:  # evidence rows without files: only their presence counts for the score
        live.tree.session.add(
            Evidence(
                evaluation_id=ev["id"],
                indicator_id=s["indicator_id"],
                filename="minh-chung.pdf",
                storage_key=uuid.uuid4().hex,
                size=1,
                sha256="0" * 64,
                content_type="application/pdf",
            )
        )
    await live.tree.session.commit()
    r = await _post(live, f"/evaluations/{ev['id']}/submit", None, c.org_admin)
    assert r.status_code == 200, r.text
    c.evaluations.append(ev["id"])
    return int(ev["id"])


async def _status(live: Live, evaluation_id: int) -> dict[str, Any]:
    return (await live.client.get(f"{API}/evaluations/{evaluation_id}", headers=live.admin)).json()


async def test_a_decision_racing_a_return_leaves_a_consistent_state(live: Live) -> None:
    root = (await _post(live, "/org-units", {"name": "Tỉnh", "kind": "province"})).json()
    c = await _school(live, root["id"], 1)
    ids = [await _submitted(live, c, "staff", 9) for _ in range(8)]
    number = iter(range(1000))

    async def review_then_sign(evaluation_id: int) -> None:
        await _post(live, f"/evaluations/{evaluation_id}/complete-review", None, c.assessor)
        body = {
            "org_unit_id": c.unit["id"],
            "year": 2025,
            "number": f"{next(number)}/QĐ",
            "signed_on": "2025-12-20",
            "evaluation_ids": [evaluation_id],
        }
        await _post(live, "/recognition-decisions", body, c.approver)

    async def send_back(evaluation_id: int) -> httpx.Response:
        return await _post(live, f"/evaluations/{evaluation_id}/return", {"reason": "Bổ sung"}, c.assessor)

    await asyncio.gather(*(task for i in ids for task in (review_then_sign(i), send_back(i))))
    outcomes: Counter[str] = Counter()
    for evaluation_id in ids:
        ev = await _status(live, evaluation_id)
        items = await _count(live, DecisionItem.evaluation_id == evaluation_id)
        if ev["status"] == "recognised":
            assert ev["decision_id"] is not None and items == 1, ev
        else:
            assert ev["status"] == "returned", ev
            assert ev["decision_id"] is None and items == 0, ev
        outcomes[ev["status"]] += 1
    # A decision that lost the race wrote nothing: every decision row has its evaluation.
    assert await _count(live, RecognitionDecision.id.is_not(None)) == outcomes["recognised"]


async def test_aggregates_equal_a_recount_after_a_storm(live: Live) -> None:
    root = (await _post(live, "/org-units", {"name": "Tỉnh Bão", "kind": "province"})).json()
    communes = [
        (
            await _post(live, "/org-units", {"name": f"Xã {n}", "kind": "commune", "parent_id": root["id"]})
        ).json()
        for n in range(2)
    ]
    schools = [await _school(live, communes[n % 2]["id"], n) for n in range(4)]
    for c in schools:
        for k in range(6):
            await _submitted(live, c, ["staff", "resident", "worker"][k % 3], 9 if k % 4 else 3)
    rng = random.Random(6)
    decisions: list[tuple[Committee, int]] = []
    statuses: Counter[tuple[str, int]] = Counter()

    async def operation(n: int) -> None:
        c = rng.choice(schools)
        kind = rng.choice(["review", "complete", "return", "submit", "sign", "sign", "revoke"])
        evaluation_id = rng.choice(c.evaluations)
        if kind == "review":
            version = (await _status(live, evaluation_id))["version"]
            r = await live.client.put(
                f"{API}/evaluations/{evaluation_id}/review",
                json={"version": version, "scores": []},
                headers=c.assessor,
            )
        elif kind in ("complete", "return", "submit"):
            path = {"complete": "complete-review", "return": "return", "submit": "submit"}[kind]
            body = {"reason": "Bổ sung"} if kind == "return" else None
            r = await _post(
                live,
                f"/evaluations/{evaluation_id}/{path}",
                body,
                c.assessor if kind != "submit" else c.org_admin,
            )
        elif kind == "sign":
            chosen = rng.sample(c.evaluations, 2)
            body = {
                "org_unit_id": c.unit["id"],
                "year": 2025,
                "number": f"{n}/QĐ-UBND",
                "signed_on": "2025-12-20",
                "evaluation_ids": chosen,
            }
            r = await _post(live, "/recognition-decisions", body, c.approver)
            if r.status_code == 201:
                decisions.append((c, r.json()["id"]))
        else:
            if not decisions:
                return
            owner, decision_id = rng.choice(decisions)
            r = await _post(
                live, f"/recognition-decisions/{decision_id}/revoke", {"reason": "Sai"}, owner.approver
            )
        statuses[kind, r.status_code] += 1
        assert r.status_code in (200, 201, 409), (kind, r.status_code, r.text)

    gate = asyncio.Semaphore(STORM_PARALLEL)

    async def bounded(n: int) -> None:
        async with gate:
            await operation(n)

    await asyncio.gather(*(bounded(n) for n in range(STORM_OPERATIONS)))
    print(sorted(statuses.items()))
    # The storm did change things: decisions were signed and revoked, reviews done, races lost.
    assert statuses["sign", 201] and statuses["revoke", 200] and statuses["complete", 200], statuses

    viewer = live.tree.auth(
        await live.tree.user(("viewer", await live.tree.session.get(OrgUnit, root["id"])))
    )
    async with live.app.state.sessionmaker() as session:
        for unit_id in [root["id"], communes[0]["id"], schools[3].unit["id"]]:
            expected = await naive_recount(session, unit_id, 2025)
            r = await live.client.get(
                f"{API}/aggregates/progress", params={"org_unit_id": unit_id, "year": 2025}, headers=viewer
            )
            got = {m["metric"]: (m["numerator"], m["denominator"]) for m in r.json()["metrics"]}
            assert got == {k: v for k, v in expected.items() if k in got}, unit_id
        # Every evaluation's status agrees with its decision.
        for evaluation in (await session.scalars(select(Evaluation))).all():
            decision = await session.get(RecognitionDecision, evaluation.decision_id or 0)
            if evaluation.status == "recognised":
                assert decision is not None and decision.status == "active", evaluation.id
            else:
                assert evaluation.decision_id is None, evaluation.id
