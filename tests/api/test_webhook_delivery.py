"""Webhook delivery against a real receiver on 127.0.0.1 (a small HTTP/1.1 server on asyncio): signatures
checked with the standardwebhooks verifier, a receiver down for a while then back, the retry schedule
running out, 410 Gone, leases between two processes, the production address guard, and the events the
real endpoints emit (decision.signed / decision.revoked, import.finished)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from app.core.config import Settings
from app.evaluations.models import Status
from app.main import create_app
from app.webhooks import outbox
from app.webhooks.deliverer import WebhookDeliverer, retry_delay
from app.webhooks.models import EventType, WebhookDelivery, WebhookEvent, WebhookSubscription
from tests.api.test_imports import csv_file, send
from tests.builders import Tree, build_country

pytestmark = pytest.mark.anyio

API = "/api/v1"


@dataclass
class Receiver:
    """Answers every POST with ``status`` (a callable may vary it) and keeps what it got."""

    status: Callable[[], int] = lambda: 204
    got: list[tuple[str, dict[str, str], bytes, int]] = field(default_factory=list)
    port: int = 0
    server: asyncio.Server | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Down: connections are refused until :meth:`start` again (same port)."""
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()
        self.server = None

    def url(self, path: str = "hook") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def delivered(self, path: str = "hook") -> list[dict[str, Any]]:
        return [json.loads(body) for p, _, body, status in self.got if p == f"/{path}" and status < 300]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                path = head[0].split(" ")[1]
                headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in head[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = self.status()
                self.got.append((path, headers, body, status))
                # A 204 has no body; other answers carry a short one (read and dropped by the deliverer).
                answer = b"" if status == 204 else b"ok"
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-length: {len(answer)}\r\n\r\n".encode() + answer
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    if r.server is not None:
        await r.stop()


@pytest.fixture
def fast(settings: Settings) -> Settings:
    """Retries in tens of milliseconds; one subscription at a time (the test's sessions share one
    connection); no alert scan."""
    return settings.model_copy(
        update={
            "webhook_concurrency": 1,
            "webhook_retry_base_seconds": 0.02,
            "webhook_retry_cap_seconds": 0.1,
            "webhook_timeout_seconds": 2.0,
            "alert_scan_seconds": 0,
        }
    )


@pytest.fixture
async def deliverer(
    fast: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[WebhookDeliverer]:
    d = WebhookDeliverer(fast, sessionmaker)
    yield d
    await d.aclose()


async def subscribe(
    tree: Tree, unit_id: int, url: str, events: list[str] | None = None
) -> WebhookSubscription:
    from app.webhooks.service import new_secret

    sub = WebhookSubscription(
        org_unit_id=unit_id, url=url, events=events or [e.value for e in EventType], secret=new_secret()
    )
    tree.session.add(sub)
    await tree.session.commit()
    return sub


async def until_quiet(deliverer: WebhookDeliverer, done: Callable[[], bool], seconds: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    attempts = 0
    while asyncio.get_running_loop().time() < deadline:
        attempts += await deliverer.run_once()
        if done():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"deliveries did not finish ({attempts} attempts)")


async def statuses(tree: Tree, sub_id: int) -> list[tuple[str, int]]:
    rows = await tree.session.execute(
        select(WebhookDelivery.status, WebhookDelivery.attempts)
        .where(WebhookDelivery.subscription_id == sub_id)
        .order_by(WebhookDelivery.id)
        .execution_options(populate_existing=True)
    )
    return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def test_a_delivery_is_signed_per_standard_webhooks(
    client: httpx.AsyncClient, tree: Tree, receiver: Receiver, deliverer: WebhookDeliverer
) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("integration", c.province_a)))
    r = await client.post(
        f"{API}/webhooks",
        json={"url": receiver.url(), "events": ["alert.raised"], "org_unit_id": c.province_a.id},
        headers=h,
    )
    made = r.json()
    event = await outbox.emit(tree.session, EventType.ALERT_RAISED, c.school_a.id, {"kind": "review_waiting"})
    await tree.session.commit()
    assert await deliverer.run_once() == 1

    [(path, headers, body, _)] = receiver.got
    assert path == "/hook" and headers["content-type"] == "application/json"
    assert headers["webhook-id"] == event.message_id and headers["user-agent"].startswith("cdht-webhooks/")
    payload = Webhook(made["secret"]).verify(body, headers)
    assert payload["type"] == "alert.raised"
    assert payload["data"] == {"kind": "review_waiting", "event_id": event.id, "org_unit_id": c.school_a.id}
    assert payload["timestamp"].startswith(event.occurred_at.isoformat()[:19])
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)

    log = (await client.get(f"{API}/webhooks/{made['id']}/deliveries", headers=h)).json()["items"][0]
    assert (log["status"], log["attempts"], log["response_status"], log["last_error"]) == (
        "delivered",
        1,
        204,
        None,
    )
    assert log["delivered_at"] is not None and log["next_attempt_at"] is None
    assert await deliverer.run_once() == 0  # nothing twice

    # Redelivery: the same webhook-id, a new entry, delivered again.
    again = await client.post(f"{API}/webhooks/{made['id']}/deliveries/{log['id']}/redeliver", headers=h)
    assert again.status_code == 202
    assert await deliverer.run_once() == 1
    assert [g[1]["webhook-id"] for g in receiver.got] == [event.message_id, event.message_id]
    assert (
        Webhook(made["secret"]).verify(receiver.got[1][2], receiver.got[1][1])["data"]["event_id"] == event.id
    )


async def test_a_receiver_down_for_a_while_gets_every_event_once_in_order(
    tree: Tree, receiver: Receiver, deliverer: WebhookDeliverer
) -> None:
    c = await build_country(tree)
    first = await subscribe(tree, c.province_a.id, receiver.url("first"))
    second = await subscribe(tree, c.nation.id, receiver.url("second"), ["decision.signed"])
    ids = []
    for n in range(6):
        event = await outbox.emit(tree.session, EventType.DECISION_SIGNED, c.school_a.id, {"n": n})
        ids.append(event.message_id)
        if n == 2:
            await tree.session.commit()
    await tree.session.commit()

    receiver.status = lambda: 503  # up but failing
    assert await deliverer.run_once() >= 2  # the heads are tried (again as retries fall due)…
    for sub in (first, second):
        head, *rest = await statuses(tree, sub.id)
        assert head[0] == "pending" and head[1] >= 1
        assert rest == [("pending", 0)] * 5  # …and the queue behind them waits
    await asyncio.sleep(0.05)
    await deliverer.run_once()
    await receiver.stop()  # now down altogether: connections refused
    for _ in range(3):
        await asyncio.sleep(0.05)
        await deliverer.run_once()
    assert all(s == "pending" for s, _ in await statuses(tree, second.id))
    head = await tree.session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == first.id)
        .order_by(WebhookDelivery.id)
        .execution_options(populate_existing=True)
    )
    assert head is not None and head.attempts >= 3 and "ConnectError" in (head.last_error or "")
    more = await outbox.emit(tree.session, EventType.DECISION_SIGNED, c.school_a.id, {"n": 6})
    await tree.session.commit()
    ids.append(more.message_id)

    receiver.status = lambda: 200
    await receiver.start()  # back
    expected = [{"n": n} for n in range(7)]
    await until_quiet(
        deliverer, lambda: len(receiver.delivered("second")) == 7 == len(receiver.delivered("first"))
    )
    for path in ("first", "second"):
        got = receiver.delivered(path)
        assert [{"n": p["data"]["n"]} for p in got] == expected, path
        ok_ids = [h["webhook-id"] for p, h, _, s in receiver.got if p == f"/{path}" and s < 300]
        assert ok_ids == ids  # each once, in order
    assert {s for s, _ in await statuses(tree, first.id)} == {"delivered"}
    assert await deliverer.run_once() == 0


async def test_retries_run_out_then_the_queue_moves_on(
    tree: Tree, receiver: Receiver, fast: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    c = await build_country(tree)
    sub = await subscribe(tree, c.commune_a.id, receiver.url())
    for n in range(2):
        await outbox.emit(tree.session, EventType.ALERT_RAISED, c.commune_a.id, {"n": n})
    await tree.session.commit()
    answers = iter([500, 500, 500, 204])
    receiver.status = lambda: next(answers, 204)
    d = WebhookDeliverer(fast.model_copy(update={"webhook_max_attempts": 3}), sessionmaker)
    try:
        await until_quiet(d, lambda: len(receiver.got) == 4)
    finally:
        await d.aclose()
    assert await statuses(tree, sub.id) == [("failed", 3), ("delivered", 1)]
    last = await tree.session.scalar(
        select(WebhookDelivery.last_error)
        .where(WebhookDelivery.subscription_id == sub.id)
        .order_by(WebhookDelivery.id)
    )
    assert last == "HTTP 500"


def test_the_retry_schedule_doubles_up_to_the_cap(settings: Settings) -> None:
    import random

    s = settings.model_copy(update={"webhook_retry_base_seconds": 5.0, "webhook_retry_cap_seconds": 3600.0})
    top = [retry_delay(n, s, random.Random(0)) / 0.8 for n in (1, 2, 3)]
    assert all(5 * 2 ** (n - 1) <= t <= 5 * 2 ** (n - 1) * 1.25 for n, t in zip((1, 2, 3), top, strict=True))
    assert 2880 <= retry_delay(30, s) <= 3600
    default = Settings()
    total = sum(
        min(default.webhook_retry_cap_seconds, default.webhook_retry_base_seconds * 2 ** (n - 1))
        for n in range(1, default.webhook_max_attempts)
    )
    assert 30 * 3600 < total < 48 * 3600  # the default schedule keeps trying for about a day and a half


async def test_gone_pauses_the_subscription_until_it_is_resumed(
    client: httpx.AsyncClient, tree: Tree, receiver: Receiver, deliverer: WebhookDeliverer
) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.commune_a)))
    made = (
        await client.post(
            f"{API}/webhooks",
            json={"url": receiver.url(), "events": ["alert.raised"], "org_unit_id": c.commune_a.id},
            headers=h,
        )
    ).json()
    receiver.status = lambda: 410
    await outbox.emit(tree.session, EventType.ALERT_RAISED, c.commune_a.id, {"n": 0})
    await tree.session.commit()
    await deliverer.run_once()
    paused = (await client.get(f"{API}/webhooks/{made['id']}", headers=h)).json()
    assert (paused["active"], paused["version"]) == (False, 2)
    receiver.status = lambda: 204
    await asyncio.sleep(0.05)
    assert await deliverer.run_once() == 0  # paused: nothing sent, nothing lost
    r = await client.patch(f"{API}/webhooks/{made['id']}", json={"active": True, "version": 2}, headers=h)
    assert r.status_code == 200, r.text
    await until_quiet(deliverer, lambda: len(receiver.delivered()) == 1)


async def test_two_processes_never_send_the_same_subscription(
    tree: Tree, receiver: Receiver, fast: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    c = await build_country(tree)
    sub = await subscribe(tree, c.nation.id, receiver.url())
    await outbox.emit(tree.session, EventType.ALERT_RAISED, c.nation.id, {})
    await tree.session.commit()
    one, other = WebhookDeliverer(fast, sessionmaker), WebhookDeliverer(fast, sessionmaker)
    try:
        assert await one._claim(5) == [sub.id]
        assert await other._claim(5) == []
        assert await other.run_once() == 0 and receiver.got == []
        await one._release(sub.id)
        assert await other.run_once() == 1
        # A lease left by a process that died is taken once it expires.
        await outbox.emit(tree.session, EventType.ALERT_RAISED, c.nation.id, {})
        await tree.session.commit()
        assert await one._claim(5) == [sub.id]
        one.owner = "a process that died"
        from datetime import timedelta

        from sqlalchemy import update

        from app.core.db import utcnow

        await tree.session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == sub.id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        await tree.session.commit()
        assert await other.run_once() == 1
    finally:
        await one.aclose()
        await other.aclose()


async def test_production_never_connects_to_internal_addresses(
    tree: Tree, receiver: Receiver, fast: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    c = await build_country(tree)
    # Written behind the API's back (as if the name had resolved to a public address when subscribing).
    subs = [
        await subscribe(tree, c.nation.id, receiver.url()),
        await subscribe(tree, c.nation.id, f"http://localhost:{receiver.port}/hook"),
    ]
    await outbox.emit(tree.session, EventType.ALERT_RAISED, c.nation.id, {})
    await tree.session.commit()
    production = {"env": "production", "webhook_retry_base_seconds": 60.0}
    d = WebhookDeliverer(fast.model_copy(update=production), sessionmaker)
    try:
        assert await d.run_once() == 2
    finally:
        await d.aclose()
    assert receiver.got == []
    for sub in subs:
        error = await tree.session.scalar(
            select(WebhookDelivery.last_error).where(WebhookDelivery.subscription_id == sub.id)
        )
        assert error is not None and "non-public address" in error


async def _events(tree: Tree, type: EventType) -> list[WebhookEvent]:
    rows = await tree.session.scalars(select(WebhookEvent).where(WebhookEvent.type == type.value))
    return list(rows.all())


async def test_signing_and_revoking_a_decision_are_announced(
    client: httpx.AsyncClient, tree: Tree, receiver: Receiver, deliverer: WebhookDeliverer
) -> None:
    c = await build_country(tree)
    sub = await subscribe(tree, c.district_a.id, receiver.url(), ["decision.signed", "decision.revoked"])
    people = [await tree.person(c.school_a) for _ in range(2)]
    evaluations = [await tree.evaluation(p, status=Status.REVIEWED) for p in people]
    approver = tree.auth(await tree.user(("approver", c.school_a)))
    body = {
        "org_unit_id": c.school_a.id,
        "year": 2025,
        "number": "15/QĐ-MNTHA",
        "signed_on": "2025-12-20",
        "evaluation_ids": [e.id for e in evaluations],
    }
    r = await client.post(f"{API}/recognition-decisions", json=body, headers=approver)
    assert r.status_code == 201, r.text
    decision = r.json()
    refused = await client.post(f"{API}/recognition-decisions", json=body, headers=approver)
    assert refused.status_code == 409
    assert len(await _events(tree, EventType.DECISION_SIGNED)) == 1  # the refused request announced nothing
    r = await client.post(
        f"{API}/recognition-decisions/{decision['id']}/revoke",
        json={"reason": "Sai sót hồ sơ"},
        headers=approver,
    )
    assert r.status_code == 200, r.text
    await until_quiet(deliverer, lambda: len(receiver.delivered()) == 2)
    signed, revoked = (Webhook(sub.secret).verify(body, h) for _, h, body, _ in receiver.got)
    assert signed["type"] == "decision.signed" and revoked["type"] == "decision.revoked"
    common = {
        "decision_id": decision["id"],
        "org_unit_id": c.school_a.id,
        "year": 2025,
        "number": "15/QĐ-MNTHA",
        "signed_on": "2025-12-20",
        "evaluation_count": 2,
        "titles": ["learning_citizen"],
    }
    assert signed["data"] == {**common, "status": "active", "event_id": signed["data"]["event_id"]}
    assert revoked["data"] == {**common, "status": "revoked", "event_id": revoked["data"]["event_id"]}
    names = {p.full_name for p in people}
    assert not any(name in json.dumps(signed, ensure_ascii=False) for name in names)


async def test_imports_are_announced_when_applied_or_when_a_job_finishes(
    client: httpx.AsyncClient,
    tree: Tree,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    c = await build_country(tree)
    await tree.unit("Trường lớn", "school", c.commune_a, code="BIG")
    sender = await tree.user(("integration", c.province_a))
    h = tree.auth(sender)
    rows = [
        ["full_name", "unit_code", "group", "citizen_id"],
        ["Người một", "BIG", "student", "200000000001"],
    ]
    assert (await send(client, h, "people", csv_file(rows), dry_run=True)).status_code == 200
    assert await _events(tree, EventType.IMPORT_FINISHED) == []  # a dry run in the request: nothing
    r = await send(client, h, "people", csv_file(rows))
    assert r.status_code == 200, r.text
    [applied] = await _events(tree, EventType.IMPORT_FINISHED)
    assert applied.org_unit_id == c.province_a.id
    assert applied.data == {
        "import_id": r.json()["import_id"],
        "job_id": None,
        "kind": "people",
        "dry_run": False,
        "status": "done",
        "applied": True,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "error_count": 0,
        "error_code": None,
    }

    # Every import as a job: its end is announced, a dry run or row errors included.
    update = {"import_job_bytes": 0, "import_jobs_dir": tmp_path / "jobs"}
    jobs_app: FastAPI = create_app(settings.model_copy(update=update), sessionmaker=sessionmaker)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=jobs_app), base_url="http://test") as jc:
        queued = await send(jc, h, "people", csv_file(rows), dry_run=True)
        assert queued.status_code == 202, queued.text
        assert await jobs_app.state.import_jobs.run_pending() == 1
    await tree.session.commit()
    events = await _events(tree, EventType.IMPORT_FINISHED)
    job = events[-1].data
    assert (job["job_id"], job["dry_run"], job["applied"], job["unchanged"]) == (
        queued.json()["job_id"],
        True,
        False,
        1,
    )
    with contextlib.suppress(Exception):
        await jobs_app.state.webhooks.aclose()


async def test_the_worker_command_delivers_and_keeps_going_when_the_alert_scan_fails(
    tree: Tree,
    receiver: Receiver,
    fast: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.alerts import scan as alert_scan
    from app.webhooks.worker import run_worker

    c = await build_country(tree)
    await subscribe(tree, c.nation.id, receiver.url())
    await outbox.emit(tree.session, EventType.ALERT_RAISED, c.nation.id, {})
    await tree.session.commit()
    assert await run_worker(fast, sessionmaker, once=True) == [
        "0 import job(s) run.",
        "1 webhook delivery attempt(s) made.",
    ]

    async def broken(session: AsyncSession) -> int:
        raise RuntimeError("scan broke")

    monkeypatch.setattr(alert_scan, "scan", broken)
    await outbox.emit(tree.session, EventType.ALERT_RAISED, c.nation.id, {})
    await tree.session.commit()
    lines = await run_worker(fast.model_copy(update={"alert_scan_seconds": 60}), sessionmaker, once=True)
    assert lines[1:] == ["Alert scan failed (see the log).", "1 webhook delivery attempt(s) made."]
    assert len(receiver.delivered()) == 2
