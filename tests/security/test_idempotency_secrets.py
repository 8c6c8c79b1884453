"""Issue #14, item 7: the idempotency store never keeps a secret (service-account and webhook secrets,
tokens), a replay is authorised for the current caller as a fresh request would be (a deactivated user is
401, not served from the store), and whatever a caller's credentials unlocked is ``Cache-Control:
no-store``."""

from __future__ import annotations

import httpx
from fastapi import Depends, FastAPI
from sqlalchemy import func, select

from app.auth.models import User
from app.core.idempotency_store import SECRET_HEADER, IdempotencyRecord, secret_response
from app.evaluations.models import Evaluation
from app.webhooks.models import WebhookSubscription
from tests.builders import PASSWORD, Tree

API = "/api/v1"


async def _records(tree: Tree) -> list[IdempotencyRecord]:
    stmt = select(IdempotencyRecord).order_by(IdempotencyRecord.id).execution_options(populate_existing=True)
    return list((await tree.session.scalars(stmt)).all())


async def _count(tree: Tree, model: type, *where: object) -> int:
    return int(await tree.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _stored_anywhere(records: list[IdempotencyRecord], secret: str) -> bool:
    return any(
        secret.encode() in (r.response_body or b"") or secret in repr(r.response_headers) for r in records
    )


async def test_a_service_account_secret_is_never_stored_nor_replayed(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    unit = await tree.unit("Sở GD&ĐT", "province")
    h = {**tree.auth(await tree.user(("org_admin", unit))), "Idempotency-Key": "sa-1"}
    body = {"name": "Hệ thống thống kê", "org_unit_id": unit.id, "roles": ["integration"]}

    first = await client.post(f"{API}/service-accounts", json=body, headers=h)
    assert first.status_code == 201, first.text
    secret = first.json()["client_secret"]
    assert SECRET_HEADER not in first.headers
    records = await _records(tree)
    assert [(r.state, r.status_code, r.response_body) for r in records] == [("withheld", 201, None)]
    assert not _stored_anywhere(records, secret)

    again = await client.post(f"{API}/service-accounts", json=body, headers=h)
    assert again.status_code == 409, again.text
    error = again.json()["error"]
    assert error["code"] == "conflict" and error["details"] == {"status": 201, "reason": "secret_not_stored"}
    assert secret not in again.text and "idempotent-replayed" not in again.headers
    assert await _count(tree, User, User.is_service.is_(True)) == 1  # the work was not done twice
    # The same key for another request is still a mismatch, not a hint about the first.
    other = await client.post(f"{API}/service-accounts", json={**body, "name": "Khác"}, headers=h)
    assert other.status_code == 422


async def test_a_webhook_secret_is_never_stored(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit("Huyện", "district")
    h = {**tree.auth(await tree.admin()), "Idempotency-Key": "hook-1"}
    hook = {"url": "http://127.0.0.1:9/hook", "events": ["report.submitted"], "org_unit_id": unit.id}
    first = await client.post(f"{API}/webhooks", json=hook, headers=h)
    assert first.status_code == 201, first.text
    records = await _records(tree)
    assert [r.state for r in records] == ["withheld"]
    assert not _stored_anywhere(records, first.json()["secret"])
    again = await client.post(f"{API}/webhooks", json=hook, headers=h)
    assert again.status_code == 409 and first.json()["secret"] not in again.text
    assert await _count(tree, WebhookSubscription) == 1


async def test_token_requests_are_never_stored(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit("Xã", "commune")
    user = await tree.user(("org_admin", unit))
    form = {"grant_type": "password", "username": user.username, "password": PASSWORD}
    h = {**tree.auth(user), "Idempotency-Key": "login-1"}
    first = await client.post(f"{API}/auth/token", data=form, headers=h)
    second = await client.post(f"{API}/auth/token", data=form, headers=h)
    assert (first.status_code, second.status_code) == (200, 200), first.text
    assert first.json()["access_token"] != second.json()["access_token"]
    assert "idempotent-replayed" not in second.headers
    assert await _records(tree) == []
    assert first.headers["cache-control"] == "no-store"


async def test_a_route_marked_secret_is_withheld_and_the_marker_never_leaves(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI
) -> None:
    async def issue_pin() -> dict[str, str]:
        return {"pin": "493817"}  # no secret-named field: only the route's mark tells

    app.router.add_api_route(
        f"{API}/test-only/pins", issue_pin, methods=["POST"], dependencies=[Depends(secret_response)]
    )
    h = {**tree.auth(await tree.user(("viewer", await tree.unit()))), "Idempotency-Key": "pin-1"}
    first = await client.post(f"{API}/test-only/pins", headers=h)
    assert first.status_code == 200 and first.json() == {"pin": "493817"}
    assert SECRET_HEADER not in first.headers
    assert [r.state for r in await _records(tree)] == ["withheld"]
    again = await client.post(f"{API}/test-only/pins", headers=h)
    assert again.status_code == 409 and "493817" not in again.text
    unkeyed = await client.post(f"{API}/test-only/pins", headers=tree.auth(await tree.admin()))
    assert unkeyed.status_code == 200 and SECRET_HEADER not in unkeyed.headers


async def test_a_deactivated_user_gets_401_not_the_stored_answer(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    unit = await tree.unit("Trường", "school")
    user = await tree.user(("org_admin", unit))
    person = await tree.person(unit, "staff")
    h = {**tree.auth(user), "Idempotency-Key": "eval-1"}
    body = {"person_id": person.id, "year": 2025}
    first = await client.post(f"{API}/evaluations", json=body, headers=h)
    assert first.status_code == 201, first.text
    assert (await client.post(f"{API}/evaluations", json=body, headers=h)).json() == first.json()

    user.is_active = False
    await tree.session.commit()
    replay = await client.post(f"{API}/evaluations", json=body, headers=h)
    assert replay.status_code == 401, replay.text
    assert replay.json()["error"]["code"] == "not_authenticated"
    assert replay.headers["www-authenticate"] == "Bearer"
    assert str(first.json()["id"]) not in replay.text and "idempotent-replayed" not in replay.headers
    # Any other request with a key is 401 too, and a 401 is not kept: nothing to replay after reactivation.
    second = await tree.person(unit, "staff")
    h2 = {**tree.auth(user), "Idempotency-Key": "eval-2"}
    refused = await client.post(f"{API}/evaluations", json={"person_id": second.id, "year": 2025}, headers=h2)
    assert refused.status_code == 401
    assert [r.key for r in await _records(tree)] == ["eval-1"]
    user.is_active = True
    await tree.session.commit()
    done = await client.post(f"{API}/evaluations", json={"person_id": second.id, "year": 2025}, headers=h2)
    assert done.status_code == 201, done.text
    assert await _count(tree, Evaluation) == 2


async def test_credentialed_responses_are_no_store_public_ones_are_not(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    unit = await tree.unit("Xã", "commune")
    h = tree.auth(await tree.user(("org_admin", unit)))
    me = await client.get(f"{API}/me", headers=h)
    assert me.status_code == 200 and me.headers["cache-control"] == "no-store"
    missing = await client.get(f"{API}/org-units/999999", headers=h)
    assert missing.status_code == 404 and missing.headers["cache-control"] == "no-store"
    listed = await client.get(f"{API}/org-units", params={"parent_id": unit.id}, headers=h)
    assert listed.headers["cache-control"] == "no-store"
    anonymous = await client.get(f"{API}/me")
    assert anonymous.status_code == 401
    health = await client.get("/healthz")
    assert health.status_code == 200 and "cache-control" not in health.headers
    h_key = {**h, "Idempotency-Key": "unit-1"}
    body = {"name": "Thôn 1", "kind": "village", "parent_id": unit.id}
    created = await client.post(f"{API}/org-units", json=body, headers=h_key)
    replayed = await client.post(f"{API}/org-units", json=body, headers=h_key)
    assert created.status_code == 201 and replayed.headers["idempotent-replayed"] == "true"
    assert created.headers["cache-control"] == replayed.headers["cache-control"] == "no-store"
