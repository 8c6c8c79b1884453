"""Story 4 of the integration issue over HTTP: a mobile client retries POSTs with an ``Idempotency-Key``
and gets the first answer again with nothing done twice; the same key for another request is 422; a key
still in progress is 409; keys belong to their user."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from app.core.db import utcnow
from app.core.idempotency_store import IdempotencyRecord
from app.decisions.models import RecognitionDecision
from app.evaluations.models import Evaluation, Evidence
from tests.api.evaluation_flow import drive_to, make_school, upload
from tests.builders import Tree

API = "/api/v1"


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


async def count(tree: Tree, model: type) -> int:
    return int(await tree.session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_retry_gets_the_first_answer_and_creates_nothing(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    person = await tree.person(school.unit, "staff")
    body = {"person_id": person.id, "year": 2025}
    h = {**school.admin, **key("create-eval-1")}

    first = await client.post(f"{API}/evaluations", json=body, headers=h)
    assert first.status_code == 201, first.text
    again = await client.post(f"{API}/evaluations", json=body, headers=h)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    assert "idempotent-replayed" not in first.headers
    assert await count(tree, Evaluation) == 1
    assert await count(tree, IdempotencyRecord) == 1

    other = await client.post(f"{API}/evaluations", json={**body, "year": 2026}, headers=h)
    assert other.status_code == 422 and other.json()["error"]["code"] == "validation_error"
    assert "different request" in other.json()["error"]["message"]
    elsewhere = await client.post(f"{API}/people", json=body, headers=h)  # same key, another path
    assert elsewhere.status_code == 422
    assert await count(tree, Evaluation) == 1

    # Without a key the duplicate is the domain's own 409; a keyed 4xx is stored and replayed too.
    h2 = {**school.admin, **key("create-eval-2")}
    conflict = await client.post(f"{API}/evaluations", json=body, headers=h2)
    assert conflict.status_code == 409
    replayed = await client.post(f"{API}/evaluations", json=body, headers=h2)
    assert (replayed.status_code, replayed.json()) == (409, conflict.json())


async def test_a_key_still_in_progress_is_409_until_abandoned(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    admin = await tree.user(("org_admin", school.unit))
    person = await tree.person(school.unit, "staff")
    raw = json.dumps({"person_id": person.id, "year": 2025}).encode()
    running = IdempotencyRecord(
        user_id=admin.id,
        key="slow-1",
        method="POST",
        path=f"{API}/evaluations",
        body_sha256=hashlib.sha256(raw).hexdigest(),
        state="in_progress",
        created_at=utcnow(),
    )
    tree.session.add(running)
    await tree.session.commit()
    h = {**tree.auth(admin), **key("slow-1"), "Content-Type": "application/json"}

    r = await client.post(f"{API}/evaluations", content=raw, headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    assert await count(tree, Evaluation) == 0

    running.created_at = utcnow() - timedelta(minutes=20)  # its request died before storing an answer
    await tree.session.commit()
    r = await client.post(f"{API}/evaluations", content=raw, headers=h)
    assert r.status_code == 201, r.text
    assert (await client.post(f"{API}/evaluations", content=raw, headers=h)).json() == r.json()


async def test_keys_belong_to_their_user_and_expire(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    one, two = await tree.person(school.unit, "staff"), await tree.person(school.unit, "staff")
    first_admin = await tree.user(("org_admin", school.unit))
    h1 = {**tree.auth(first_admin), **key("k")}
    h2 = {**tree.auth(await tree.user(("org_admin", school.unit))), **key("k")}
    a = await client.post(f"{API}/evaluations", json={"person_id": one.id, "year": 2025}, headers=h1)
    b = await client.post(f"{API}/evaluations", json={"person_id": two.id, "year": 2025}, headers=h2)
    assert (a.status_code, b.status_code) == (201, 201) and a.json()["id"] != b.json()["id"]

    record = await tree.session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.user_id == first_admin.id)
    )
    assert record is not None and record.state == "done" and record.status_code == 201
    record.created_at = utcnow() - timedelta(hours=25)
    await tree.session.commit()
    again = await client.post(f"{API}/evaluations", json={"person_id": one.id, "year": 2025}, headers=h1)
    assert again.status_code == 409 and "idempotent-replayed" not in again.headers  # it ran again


async def test_keys_are_not_applied_to_login_nor_without_a_valid_token(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    user = await tree.user(("viewer", await tree.unit()), username="idem.login")
    form = {"grant_type": "password", "username": "idem.login", "password": "correct-horse-battery"}
    first = await client.post(f"{API}/auth/token", data=form, headers=key("login-1"))
    second = await client.post(f"{API}/auth/token", data=form, headers=key("login-1"))
    assert first.status_code == second.status_code == 200
    assert first.json()["refresh_token"] != second.json()["refresh_token"]
    anonymous = await client.post(f"{API}/people", json={}, headers=key("anon"))
    assert anonymous.status_code == 401
    bad = await client.post(f"{API}/people", json={}, headers={**tree.auth(user), **key("x" * 300)})
    assert bad.status_code == 422
    assert await count(tree, IdempotencyRecord) == 0


async def test_multipart_evidence_upload_is_idempotent(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    evaluation = await drive_to(client, tree, school, "draft")
    indicator = evaluation["scores"][0]["indicator_id"]
    h = {**school.admin, **key("upload-1")}
    # httpx draws a new multipart boundary for each request, as a retrying phone would.
    first = await upload(client, h, evaluation["id"], indicator)
    second = await upload(client, h, evaluation["id"], indicator)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() and second.headers["idempotent-replayed"] == "true"
    assert await count(tree, Evidence) == 1
    other_file = await upload(client, h, evaluation["id"], indicator, b"%PDF-1.4\nanother\n%%EOF\n")
    assert other_file.status_code == 422


async def test_signing_a_decision_twice_signs_once(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    evaluation = await drive_to(client, tree, school, "reviewed")
    body = {
        "org_unit_id": school.unit.id,
        "year": 2025,
        "number": "15/QĐ-THCS",
        "signed_on": "2025-12-20",
        "evaluation_ids": [evaluation["id"]],
    }
    h = {**school.approver, **key("sign-15")}
    first = await client.post(f"{API}/recognition-decisions", json=body, headers=h)
    assert first.status_code == 201, first.text
    retry = await client.post(f"{API}/recognition-decisions", json=body, headers=h)
    assert (retry.status_code, retry.json()) == (201, first.json())
    assert await count(tree, RecognitionDecision) == 1
    changed = await client.post(
        f"{API}/recognition-decisions", json={**body, "number": "16/QĐ-THCS"}, headers=h
    )
    assert changed.status_code == 422
    assert await count(tree, RecognitionDecision) == 1
