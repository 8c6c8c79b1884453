"""Webhook subscriptions over HTTP: the secret shown once, validation (events, URLs in production and in
development), versions, scope and roles, the delivery log and redelivery; the URL rules unit by unit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core.db import unit_of_work
from app.core.errors import ValidationFailed
from app.webhooks import outbox
from app.webhooks.models import EventType, WebhookDelivery, WebhookEvent
from app.webhooks.urls import address_refused, check_url
from tests.builders import Country, Tree, build_country

pytestmark = pytest.mark.anyio  # before collection, so the parametrisations combine with anyio's

API = "/api/v1"
HOOK = "http://127.0.0.1:9/hooks/cdht"


def _body(unit_id: int, **extra: Any) -> dict[str, Any]:
    return {"url": HOOK, "events": ["decision.signed", "report.submitted"], "org_unit_id": unit_id, **extra}


async def _made(client: httpx.AsyncClient, h: dict[str, str], unit_id: int, **extra: Any) -> dict[str, Any]:
    r = await client.post(f"{API}/webhooks", json=_body(unit_id, **extra), headers=h)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _admin_of(tree: Tree, c: Country) -> dict[str, str]:
    return tree.auth(await tree.user(("org_admin", c.province_a)))


async def test_a_subscription_shows_its_secret_once(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    maker = await tree.user(("integration", c.province_a))
    h = tree.auth(maker)
    made = await _made(client, h, c.district_a.id, description="Sở GD&ĐT: đồng bộ quyết định")
    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 40
    assert (made["version"], made["active"], made["created_by"]) == (1, True, maker.id)
    # Events come back each once, in the documented order.
    assert made["events"] == ["report.submitted", "decision.signed"]

    got = await client.get(f"{API}/webhooks/{made['id']}", headers=h)
    listed = await client.get(f"{API}/webhooks", headers=h)
    patched = await client.patch(f"{API}/webhooks/{made['id']}", json={"description": "x"}, headers=h)
    for answer in (got, listed, patched):
        assert answer.status_code == 200, answer.text
        assert "secret" not in answer.text and made["secret"] not in answer.text
    assert listed.json()["total"] == 1 and listed.json()["items"][0]["id"] == made["id"]
    assert patched.json()["version"] == 2


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"events": ["decision.signed", "evaluation.created"]}, "known: report.submitted"),
        ({"events": []}, "at least 1"),
        ({"url": "ftp://127.0.0.1/x"}, "https://"),
        ({"url": "http://user:secret@127.0.0.1/x"}, "user name or password"),
        ({"url": "http:///nohost"}, "no host"),
        ({"url": "http://127.0.0.1:99999/"}, "not valid"),
        ({"url": "not a url"}, "spaces"),
        ({"secret": "whsec_mine"}, "Extra inputs"),
        ({"active": False}, "Extra inputs"),
    ],
)
async def test_bad_input_is_a_clear_422(
    client: httpx.AsyncClient, tree: Tree, change: dict[str, Any], needle: str
) -> None:
    c = await build_country(tree)
    r = await client.post(
        f"{API}/webhooks", json=_body(c.province_a.id, **change), headers=await _admin_of(tree, c)
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    assert needle in r.text
    if "url" in change:
        assert r.json()["error"]["details"] == {"field": "url"}
    assert "secret" not in change or "whsec_mine" not in r.text


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.example.org/cdht", True),
        ("https://hooks.example.org:8443/cdht?token=abc", True),
        ("https://93.184.216.34/hook", True),
        ("http://hooks.example.org/cdht", False),
        ("https://localhost/hook", False),
        ("https://api.localhost/hook", False),
        ("https://printer.local/hook", False),
        ("https://metadata.google.internal/hook", False),
        ("https://intranet/hook", False),
        ("https://127.0.0.1/hook", False),
        ("https://10.1.2.3/hook", False),
        ("https://172.16.0.1/hook", False),
        ("https://192.168.1.10/hook", False),
        ("https://169.254.169.254/latest/meta-data", False),
        ("https://100.64.0.1/hook", False),
        ("https://0.0.0.0/hook", False),
        ("https://224.0.0.1/hook", False),
        ("https://240.0.0.1/hook", False),
        ("https://[::1]/hook", False),
        ("https://[::]/hook", False),
        ("https://[fe80::1]/hook", False),
        ("https://[fd00::1]/hook", False),
        ("https://[::ffff:127.0.0.1]/hook", False),
        ("https://[::ffff:10.0.0.1]/hook", False),
        ("https://[2002:7f00:1::1]/hook", False),
        ("https://[64:ff9b::a00:1]/hook", False),
        ("https://[2606:4700::1111]/hook", True),
        ("https://2130706433/hook", False),
        ("https://0x7f.1/hook", False),
        ("https://LOCALHOST./hook", False),
    ],
)
def test_production_urls(url: str, allowed: bool) -> None:
    if allowed:
        assert check_url(url, production=True) == url
    else:
        with pytest.raises(ValidationFailed) as refused:
            check_url(url, production=True)
        assert refused.value.details == {"field": "url"}


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "http://localhost:8000/hook", "https://hooks.example.org/x"]
)
def test_development_allows_local_receivers(url: str) -> None:
    assert check_url(url, production=False) == url


def test_the_address_rule_judges_embedded_ipv4() -> None:
    import ipaddress

    assert address_refused(ipaddress.ip_address("::ffff:192.168.0.1"))
    # The IPv4-mapped range is not globally reachable itself: a public host is named, or given as IPv4.
    assert address_refused(ipaddress.ip_address("::ffff:93.184.216.34"))
    assert not address_refused(ipaddress.ip_address("93.184.216.34"))
    assert address_refused(ipaddress.ip_address("2001:db8::1"))  # documentation range: not global


async def test_production_refuses_plain_http_and_local_hosts_over_http(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI
) -> None:
    c = await build_country(tree)
    h = await _admin_of(tree, c)
    app.state.settings = app.state.settings.model_copy(update={"env": "production"})
    for url in (HOOK, "https://127.0.0.1/hook", "https://db.internal/hook"):
        r = await client.post(f"{API}/webhooks", json=_body(c.province_a.id, url=url), headers=h)
        assert r.status_code == 422 and r.json()["error"]["details"] == {"field": "url"}, (url, r.text)
    made = await _made(client, h, c.province_a.id, url="https://hooks.example.org/cdht")
    r = await client.patch(f"{API}/webhooks/{made['id']}", json={"url": HOOK}, headers=h)
    assert r.status_code == 422 and "https" in r.json()["error"]["message"]


async def test_versions_guard_edits(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = await _admin_of(tree, c)
    made = await _made(client, h, c.province_a.id)
    url = f"{API}/webhooks/{made['id']}"
    r = await client.patch(url, json={"active": False, "version": 1}, headers=h)
    assert r.status_code == 200 and (r.json()["active"], r.json()["version"]) == (False, 2)
    stale = await client.patch(url, json={"events": ["alert.raised"], "version": 1}, headers=h)
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    stale = await client.patch(url, json={"events": ["alert.raised"]}, headers={**h, "If-Match": '"1"'})
    assert stale.status_code == 409
    assert (await client.get(url, headers=h)).json()["events"] == made["events"]
    r = await client.patch(url, json={"events": ["alert.raised"]}, headers={**h, "If-Match": '"2"'})
    assert r.status_code == 200 and r.json()["events"] == ["alert.raised"]
    for empty in ({"url": None}, {"events": None}, {"active": None}):
        assert (await client.patch(url, json=empty, headers=h)).status_code == 422
    assert (await client.delete(url, headers={**h, "If-Match": "1"})).status_code == 409
    assert (await client.delete(url, headers={**h, "If-Match": "3"})).status_code == 204
    assert (await client.get(url, headers=h)).status_code == 404


async def test_list_is_scoped_filtered_and_paginated(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    top = tree.auth(await tree.user(("org_admin", c.nation)))
    a = await _made(client, top, c.province_a.id)
    school = await _made(client, top, c.school_a.id)
    b = await _made(client, top, c.province_b.id)
    h = await _admin_of(tree, c)
    mine = await client.get(f"{API}/webhooks", headers=h)
    assert [w["id"] for w in mine.json()["items"]] == [a["id"], school["id"]]
    under = await client.get(f"{API}/webhooks", params={"org_unit_id": c.commune_a.id}, headers=h)
    assert [w["id"] for w in under.json()["items"]] == [school["id"]]
    page = await client.get(f"{API}/webhooks", params={"limit": 1, "offset": 1}, headers=top)
    assert page.json() | {"items": None} == {"items": None, "total": 3, "limit": 1, "offset": 1}
    assert page.json()["items"][0]["id"] == school["id"]
    assert (await client.get(f"{API}/webhooks", params={"limit": 201}, headers=top)).status_code == 422
    elsewhere = await client.get(f"{API}/webhooks", params={"org_unit_id": c.province_b.id}, headers=h)
    assert elsewhere.status_code == 404
    assert b["id"] not in [w["id"] for w in mine.json()["items"]]
    viewer = tree.auth(await tree.user(("viewer", c.province_a)))
    assert (await client.get(f"{API}/webhooks", headers=viewer)).status_code == 403
    assert (await client.get(f"{API}/webhooks")).status_code == 401


def _routes(hook_id: int, delivery_id: int, unit_id: int) -> list[tuple[str, str, Any]]:
    base = f"{API}/webhooks/{hook_id}"
    return [
        ("GET", base, None),
        ("PATCH", base, {"description": "đổi"}),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/deliveries/{delivery_id}/redeliver", None),
        ("POST", f"{API}/webhooks", _body(unit_id)),
        ("DELETE", base, None),
    ]


async def _with_a_delivery(client: httpx.AsyncClient, tree: Tree, c: Country) -> tuple[dict[str, Any], int]:
    made = await _made(client, tree.auth(await tree.user(("org_admin", c.commune_a))), c.commune_a.id)
    event = await outbox.emit(tree.session, EventType.DECISION_SIGNED, c.school_a.id, {"decision_id": 1})
    await tree.session.commit()
    delivery_id = await tree.session.scalar(
        select(WebhookDelivery.id).where(WebhookDelivery.event_id == event.id)
    )
    assert delivery_id is not None
    return made, delivery_id


@pytest.mark.parametrize("role", ["viewer", "member", "assessor", "approver"])
async def test_roles_without_webhook_rights_get_403(client: httpx.AsyncClient, tree: Tree, role: str) -> None:
    c = await build_country(tree)
    made, delivery_id = await _with_a_delivery(client, tree, c)
    h = tree.auth(await tree.user((role, c.district_a)))
    for method, url, body in _routes(made["id"], delivery_id, c.commune_a.id):
        r = await client.request(method, url, json=body, headers=h)
        assert r.status_code == 403, (role, method, url, r.text)
        assert r.json()["error"]["code"] == "forbidden"


async def test_a_sibling_subtree_gets_404_exactly_as_missing(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    made, delivery_id = await _with_a_delivery(client, tree, c)
    h = tree.auth(await tree.user(("org_admin", c.province_b)))
    ghost = 2_000_000_000
    for (method, url, body), (_, missing_url, _) in zip(
        _routes(made["id"], delivery_id, c.commune_a.id),
        _routes(ghost, delivery_id, c.province_b.id),
        strict=True,
    ):
        r = await client.request(method, url, json=body, headers=h)
        assert r.status_code == 404, (method, url, r.text)
        if missing_url != f"{API}/webhooks":
            missing = await client.request(method, missing_url, json=body, headers=h)
            assert missing.json()["error"] == r.json()["error"] | {
                "message": missing.json()["error"]["message"]
            }
            assert r.json()["error"]["message"] == f"Webhook {made['id']} not found."
            assert missing.json()["error"]["message"] == f"Webhook {ghost} not found."
    # The same routes answer the owner, and an integration account and a system admin.
    for who in (("org_admin", c.commune_a), ("integration", c.district_a)):
        ok = await client.get(
            f"{API}/webhooks/{made['id']}/deliveries", headers=tree.auth(await tree.user(who))
        )
        assert ok.status_code == 200 and ok.json()["total"] == 1
    admin = tree.auth(await tree.admin())
    assert (await client.delete(f"{API}/webhooks/{made['id']}", headers=admin)).status_code == 204


async def test_the_delivery_log_and_redelivery(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    made, delivery_id = await _with_a_delivery(client, tree, c)
    h = tree.auth(await tree.user(("integration", c.commune_a)))
    log = (await client.get(f"{API}/webhooks/{made['id']}/deliveries", headers=h)).json()
    entry = log["items"][0]
    assert (entry["id"], entry["event_type"], entry["status"], entry["attempts"]) == (
        delivery_id,
        "decision.signed",
        "pending",
        0,
    )
    assert entry["message_id"].startswith("msg_") and entry["next_attempt_at"] is not None
    r = await client.post(f"{API}/webhooks/{made['id']}/deliveries/{delivery_id}/redeliver", headers=h)
    assert r.status_code == 202, r.text
    again = r.json()
    assert again["id"] != delivery_id and again["message_id"] == entry["message_id"]
    assert (again["status"], again["attempts"]) == ("pending", 0)
    log = (await client.get(f"{API}/webhooks/{made['id']}/deliveries", headers=h)).json()
    assert [d["id"] for d in log["items"]] == [again["id"], delivery_id]  # newest first
    none = await client.get(f"{API}/webhooks/{made['id']}/deliveries", params={"status": "failed"}, headers=h)
    assert none.json()["total"] == 0
    bad = await client.get(f"{API}/webhooks/{made['id']}/deliveries", params={"status": "lost"}, headers=h)
    assert bad.status_code == 422
    other = await _made(client, h, c.commune_a.id)
    wrong = await client.post(f"{API}/webhooks/{other['id']}/deliveries/{delivery_id}/redeliver", headers=h)
    assert wrong.status_code == 404


async def test_events_reach_subscriptions_at_or_above_their_unit(
    tree: Tree, client: httpx.AsyncClient
) -> None:
    c = await build_country(tree)
    top = tree.auth(await tree.user(("org_admin", c.nation)))
    above = await _made(client, top, c.district_a.id)
    below = await _made(client, top, c.dept_a.id)
    sibling = await _made(client, top, c.commune_a2.id)
    deaf = await _made(client, top, c.nation.id, events=["alert.raised"])
    paused = await _made(client, top, c.nation.id)
    await client.patch(f"{API}/webhooks/{paused['id']}", json={"active": False}, headers=top)
    event = await outbox.emit(tree.session, EventType.DECISION_SIGNED, c.school_a.id, {"decision_id": 7})
    await tree.session.commit()
    queued = await tree.session.scalars(
        select(WebhookDelivery.subscription_id).where(WebhookDelivery.event_id == event.id)
    )
    assert list(queued.all()) == [above["id"]]
    assert {below["id"], sibling["id"], deaf["id"], paused["id"]}.isdisjoint({above["id"]})


async def test_an_event_of_a_rolled_back_change_is_never_sent(tree: Tree, sessionmaker: Any) -> None:
    c = await build_country(tree)
    woken: list[str] = []
    outbox.add_listener(lambda: woken.append("woken"))
    try:
        from app.webhooks.models import WebhookSubscription

        tree.session.add(
            WebhookSubscription(
                org_unit_id=c.nation.id, url=HOOK, events=["alert.raised"], secret="whsec_AA=="
            )
        )
        await tree.session.commit()
        with pytest.raises(RuntimeError):
            async with unit_of_work(sessionmaker) as session:
                await outbox.emit(session, EventType.ALERT_RAISED, c.school_a.id, {"kind": "report_overdue"})
                raise RuntimeError("the change failed")
        events = await tree.session.scalar(select(func.count()).select_from(WebhookEvent))
        deliveries = await tree.session.scalar(select(func.count()).select_from(WebhookDelivery))
        assert (events, deliveries, woken) == (0, 0, [])
        async with unit_of_work(sessionmaker) as session:
            await outbox.emit(session, EventType.ALERT_RAISED, c.school_a.id, {"kind": "report_overdue"})
        assert woken == ["woken"]
        assert await tree.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
    finally:
        outbox._listeners.clear()
