"""The deliverer: sends the outbox (``webhook_deliveries``) to the receivers, signed, in order, with retries.

- Where it runs: in every API process, started by the app's lifespan (``CDHT_WEBHOOK_WORKER``, on by
  default) and woken by :mod:`app.webhooks.outbox` as soon as an event is committed here; other processes'
  events are found by polling every ``CDHT_WEBHOOK_POLL_SECONDS`` (or sooner, when a retry falls due).
  ``cdht worker`` runs the same loop on its own.
- Order: one process at a time holds a subscription (a lease, ``queue.claim``) and sends its pending
  deliveries oldest first; the first failure stops that subscription (later events wait behind it, so a
  receiver sees events in the order they were queued) and schedules a retry of the head: attempt *n* waits
  ``min(CDHT_WEBHOOK_RETRY_CAP_SECONDS, CDHT_WEBHOOK_RETRY_BASE_SECONDS * 2**(n-1))``, less up to a fifth
  at random (so many receivers coming back do not all get hit at once). After
  ``CDHT_WEBHOOK_MAX_ATTEMPTS`` the delivery is ``failed`` and the queue moves on; a redelivery
  (``POST …/redeliver``) queues it again. A receiver that is down loses nothing within the schedule.
- Different subscriptions are sent concurrently (``CDHT_WEBHOOK_CONCURRENCY`` at once) over keep-alive
  HTTP clients — a few small ones, a subscription always on the same one, rather than one large pool:
  httpcore's pool does work proportional to its connections on every request, and at 16 connections that
  halved the throughput (bench/RESULTS.md). The database is touched once per batch of
  ``CDHT_WEBHOOK_BATCH_SIZE``, not per delivery.
- Delivery is at least once (a process that dies after sending, before recording, sends again):
  receivers dedupe on ``webhook-id``.
- A 2xx is delivered. 410 Gone pauses the subscription (``active=false``; its deliveries wait). Anything
  else — another status, a redirect (never followed), a timeout, a refused connection — is retried. The
  response body is never stored; ``last_error`` holds a short reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import random
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any

import httpx
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from app.core.config import Settings
from app.core.db import unit_of_work, utcnow
from app.webhooks import outbox, queue, urls
from app.webhooks.models import DeliveryStatus

log = logging.getLogger("cdht.webhooks")

if importlib.util.find_spec("sniffio") is None:
    # httpcore imports sniffio each time it makes a lock (several per request); where it is not installed
    # (anyio 4 no longer needs it) every such import searches sys.path again and fails — about a fifth of
    # a delivery's CPU time. Recording the absence once makes those imports fail at once, as they would.
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

MAX_ERROR = 200
_DRAIN_BYTES = 64 * 1024  # a response body is read this far (to keep the connection) and dropped


def retry_delay(attempts: int, settings: Settings, rand: random.Random | None = None) -> float:
    """Seconds before the next try of a delivery that has failed ``attempts`` times."""
    full = min(
        settings.webhook_retry_cap_seconds, settings.webhook_retry_base_seconds * 2.0 ** (attempts - 1)
    )
    draw = rand.random() if rand is not None else random.random()  # noqa: S311 (jitter, not a secret)
    return full * (0.8 + 0.2 * draw)


CLIENT_SLOTS = 4  # subscriptions sharing one HTTP client (and its connection pool), at most


def make_client(settings: Settings, connections: int = CLIENT_SLOTS) -> httpx.AsyncClient:
    """A client for deliveries: keep-alive connections, no redirects, no proxies from the environment; in
    production connections go only to public addresses (:class:`urls.GuardedBackend`)."""
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=30
    )
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    if settings.env == "production":
        transport = urls.guarded_transport(limits)
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": f"cdht-webhooks/{metadata.version('cdht')}"},
    )


def body_of(row: Row[Any]) -> str:
    """The Standard Webhooks payload: ``type``, ``timestamp`` (when it happened) and ``data`` (with the
    event's id and unit). The same bytes on every attempt."""
    data = {**row.data, "event_id": row.event_id, "org_unit_id": row.org_unit_id}
    payload = {"type": row.type, "timestamp": row.occurred_at.isoformat(), "data": data}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Attempt:
    ok: bool
    status: int | None = None
    error: str | None = None


class WebhookDeliverer:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._given = client
        self._clients: dict[int, httpx.AsyncClient] = {}
        self._wake = asyncio.Event()
        self.lease = timedelta(seconds=max(60.0, 6 * settings.webhook_timeout_seconds))

    def client_for(self, subscription_id: int) -> httpx.AsyncClient:
        """The client of the subscription's slot (the same one every time: its connections stay open)."""
        if self._given is not None:
            return self._given
        slots = max(1, -(-self.settings.webhook_concurrency // CLIENT_SLOTS))
        slot = subscription_id % slots
        if slot not in self._clients:
            self._clients[slot] = make_client(self.settings)
        return self._clients[slot]

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    def wake(self) -> None:
        """An event was committed in this process: look now rather than at the next poll."""
        self._wake.set()

    async def run_forever(self) -> None:
        outbox.add_listener(self.wake)
        try:
            while True:
                self._wake.clear()
                try:
                    await self.run_once()
                    wait = await self._until_next_due()
                except Exception:  # e.g. the database is unreachable: say so, and try again at the next poll
                    log.exception("webhook deliverer: could not take or record deliveries; retrying")
                    wait = self.settings.webhook_poll_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            outbox.remove_listener(self.wake)
            await asyncio.shield(self.aclose())

    async def _until_next_due(self) -> float:
        poll = self.settings.webhook_poll_seconds
        async with unit_of_work(self.sessionmaker, write=False) as session:  # reads: no write lock
            due = await queue.next_due(session)
        if due is None:
            return poll
        return min(poll, max(0.01, (due - utcnow()).total_seconds()))

    async def run_once(self) -> int:
        """Send what is due now, subscription by subscription, until nothing due is left to claim; the
        number of attempts made."""
        attempts = 0
        running: set[asyncio.Task[int]] = set()
        try:
            while True:
                room = self.settings.webhook_concurrency - len(running)
                if room > 0:
                    for subscription_id in await self._claim(room):
                        running.add(asyncio.create_task(self._drain(subscription_id)))
                if not running:
                    return attempts
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                attempts += sum(task.result() for task in done)
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _claim(self, room: int) -> list[int]:
        now = utcnow()
        async with unit_of_work(self.sessionmaker) as session:
            candidates = await queue.due_subscriptions(session, now, room)
            return await queue.claim(session, candidates, self.owner, now, now + self.lease)

    async def _drain(self, subscription_id: int) -> int:
        """Send the subscription's due deliveries in order until its queue is empty or one fails."""
        attempts = 0
        try:
            while True:
                async with unit_of_work(self.sessionmaker, write=False) as session:  # reads only
                    held = await queue.holding(session, subscription_id, self.owner)
                    if held is None or not held.active:
                        return attempts
                    batch = await queue.next_batch(session, subscription_id, self.settings.webhook_batch_size)
                if not batch or batch[0].next_attempt_at > utcnow():
                    return attempts
                outcomes, stop = await self._send_batch(
                    subscription_id, held.url, Webhook(held.secret), batch
                )
                attempts += len(outcomes)
                async with unit_of_work(self.sessionmaker) as session:
                    kept = await queue.record(
                        session, subscription_id, self.owner, outcomes, utcnow() + self.lease
                    )
                    if stop == "gone":
                        await queue.pause(session, subscription_id)
                if stop or not kept:
                    return attempts
        except Exception:
            log.exception("webhook deliverer: subscription %s stopped on an error", subscription_id)
            return attempts
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release(subscription_id))

    async def _release(self, subscription_id: int) -> None:
        async with unit_of_work(self.sessionmaker) as session:
            await queue.release(session, subscription_id, self.owner)

    async def _send_batch(
        self, subscription_id: int, url: str, webhook: Webhook, batch: list[Row[Any]]
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Send in order until one fails or the lease needs renewing; the outcomes to record and why it
        stopped early (``"failed"``, ``"gone"``) if it did."""
        outcomes: list[dict[str, Any]] = []
        started = time.monotonic()
        budget = self.lease.total_seconds() / 2
        for row in batch:
            if outcomes and time.monotonic() - started > budget:
                return outcomes, None  # record what went out, renew the lease, then go on
            attempt = await self.send(self.client_for(subscription_id), url, webhook, row)
            at = utcnow()
            tries = row.attempts + 1
            outcome = {
                "b_id": row.id,
                "b_attempts": tries,
                "b_at": at,
                "b_response": attempt.status,
                "b_error": attempt.error,
                "b_delivered_at": at if attempt.ok else None,
                "b_next": row.next_attempt_at,
                "b_status": DeliveryStatus.DELIVERED.value if attempt.ok else DeliveryStatus.PENDING.value,
            }
            outcomes.append(outcome)
            if attempt.ok:
                continue
            if attempt.status == 410:
                log.warning("webhook %s: the receiver answered 410 Gone; paused", subscription_id)
                return outcomes, "gone"
            if tries >= self.settings.webhook_max_attempts:
                outcome["b_status"] = DeliveryStatus.FAILED.value
                log.warning(
                    "webhook %s: delivery %s failed %s times; given up", subscription_id, row.id, tries
                )
            else:
                outcome["b_next"] = at + timedelta(seconds=retry_delay(tries, self.settings))
            return outcomes, "failed"
        return outcomes, None

    async def send(self, client: httpx.AsyncClient, url: str, webhook: Webhook, row: Row[Any]) -> Attempt:
        """One signed POST; never raises for what the receiver or the network does."""
        body = body_of(row)
        now = datetime.now(UTC)
        headers = {
            "webhook-id": row.message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": webhook.sign(row.message_id, now, body),
            "content-type": "application/json",
        }
        try:
            async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                request = client.build_request("POST", url, content=body.encode(), headers=headers)
                response = await client.send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read > _DRAIN_BYTES:
                            break
                finally:
                    await response.aclose()
        except TimeoutError:
            return Attempt(False, error=f"timed out after {self.settings.webhook_timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return Attempt(False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR])
        if 200 <= response.status_code < 300:
            return Attempt(True, status=response.status_code)
        if response.is_redirect:
            return Attempt(
                False, response.status_code, f"HTTP {response.status_code}: redirects are not followed"
            )
        return Attempt(False, response.status_code, f"HTTP {response.status_code}")
