"""Webhook outbox throughput: deliveries per second from the outbox to a local receiver (goal ≥ 500/s).

Creates a PostgreSQL database of its own (``--url``, default ``cdht_wh_bench``; dropped at the end unless
``--keep``), migrates it, makes ``--subscriptions`` subscriptions at the root unit and emits ``--events``
events through :func:`app.webhooks.outbox.emit` (so every event is queued for every subscription), starts a
receiver in a separate process (a raw asyncio HTTP/1.1 server in Python answering ``204`` to every POST,
keep-alive, nothing checked) and times :meth:`WebhookDeliverer.run_once` sending the whole queue, once
per ``--concurrency`` value (the queue is reset to pending between runs). Checks that every delivery is
``delivered`` and that the receiver counted exactly as many requests; ``--record`` writes the section
"Webhook outbox throughput" of ``bench/RESULTS.md``.

    .venv/bin/python bench/run_webhooks.py --record
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Webhook outbox throughput"
_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


def serve(port: int) -> None:
    """The receiver (child process): counts requests and answers 204; prints its port, and the count
    when it gets SIGTERM."""
    count = 0

    class Receiver(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            nonlocal count
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                found = _LENGTH.search(self.buffer, 0, end + 2)
                size = int(found.group(1)) if found else 0
                if len(self.buffer) < end + 4 + size:
                    return
                self.buffer = self.buffer[end + 4 + size :]
                count += 1
                self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # type: ignore[attr-defined]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Receiver, "127.0.0.1", port)
        print(server.sockets[0].getsockname()[1], flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        print(count, flush=True)

    asyncio.run(main())


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    base, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(base + "/postgres")
    try:
        await conn.execute(sql.format(name=name))
    finally:
        await conn.close()


async def seed(url: str, subscriptions: int, events: int) -> None:
    from app.core.db import make_engine, make_sessionmaker, unit_of_work
    from app.orgs import history
    from app.orgs.models import OrgUnit
    from app.webhooks import outbox
    from app.webhooks.models import EventType, WebhookSubscription
    from app.webhooks.service import new_secret

    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    async with unit_of_work(maker) as session:
        root = OrgUnit(name="Việt Nam", kind="nation", code="VN", depth=0)
        session.add(root)
        await session.flush()
        await history.link_new_unit(session, root)
        for n in range(subscriptions):
            session.add(
                WebhookSubscription(
                    org_unit_id=root.id,
                    url="",
                    events=["alert.raised"],
                    secret=new_secret(),
                    description=f"{n}",
                )
            )
        root_id = root.id
    for start in range(0, events, 500):
        async with unit_of_work(maker) as session:
            for n in range(start, min(events, start + 500)):
                await outbox.emit(
                    session, EventType.ALERT_RAISED, root_id, {"kind": "report_overdue", "n": n}
                )
    await engine.dispose()


async def measure(url: str, receiver_url: str, concurrency: int, batch: int) -> tuple[float, int, int]:
    from sqlalchemy import func, select, update

    from app.core.config import Settings
    from app.core.db import make_engine, make_sessionmaker, unit_of_work
    from app.webhooks.deliverer import WebhookDeliverer
    from app.webhooks.models import WebhookDelivery, WebhookSubscription

    settings = Settings(
        database_url=url, webhook_concurrency=concurrency, webhook_batch_size=batch, alert_scan_seconds=0
    )
    engine = make_engine(url, settings=settings)
    maker = make_sessionmaker(engine)
    async with unit_of_work(maker) as session:
        await session.execute(update(WebhookSubscription).values(url=receiver_url))
        await session.execute(
            update(WebhookDelivery).values(
                status="pending", attempts=0, delivered_at=None, last_attempt_at=None, response_status=None
            )
        )
    deliverer = WebhookDeliverer(settings, maker)
    started = time.perf_counter()
    attempts = await deliverer.run_once()
    elapsed = time.perf_counter() - started
    await deliverer.aclose()
    async with unit_of_work(maker) as session:
        delivered = await session.scalar(
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "delivered")
        )
    await engine.dispose()
    return elapsed, attempts, int(delivered or 0)


def _machine() -> str:
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    system = f"{platform.platform()} · Python {platform.python_version()}"
    return f"nproc {os.cpu_count()} · {system} · `uptime`: {load}"


def _record(text: str) -> None:
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if SECTION in current:
        before, rest = current.split(SECTION, 1)
        after = rest[rest.find("\n## ") :] if "\n## " in rest else "\n"
        current = before + text + after
    else:
        current = current.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(current)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/cdht_wh_bench")
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--record", action="store_true", help="write the section of bench/RESULTS.md")
    parser.add_argument("--profile", action="store_true", help="print a cProfile listing of one run")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return 0
    if not args.url.rsplit("/", 1)[1].startswith("cdht_wh"):
        parser.error("--url must name a database of its own, starting with cdht_wh (it is dropped)")

    from alembic import command

    from app.cli import alembic_config

    asyncio.run(_admin(args.url, 'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(_admin(args.url, 'CREATE DATABASE "{name}"'))
    receiver = subprocess.Popen([sys.executable, __file__, "--serve", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        command.upgrade(alembic_config(args.url), "head")
        started = time.perf_counter()
        asyncio.run(seed(args.url, args.subscriptions, args.events))
        seeded = time.perf_counter() - started
        total = args.subscriptions * args.events
        shape = f"{args.subscriptions} subscriptions × {args.events} events = {total} deliveries"
        print(f"seeded {shape} in {seeded:.1f} s")
        rows = []
        machine_before = _machine()
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            run = measure(args.url, f"http://127.0.0.1:{port}/hook", concurrency, args.batch)
            if args.profile:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                elapsed, attempts, delivered = profiler.runcall(asyncio.run, run)
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
            else:
                elapsed, attempts, delivered = asyncio.run(run)
            assert delivered == total == attempts, (delivered, total, attempts)
            rate = total / elapsed
            print(f"concurrency {concurrency}: {total} deliveries in {elapsed:.2f} s = {rate:,.0f}/s")
            rows.append((concurrency, elapsed, rate))
        machine_after = _machine()
    finally:
        receiver.send_signal(signal.SIGTERM)
        out, _ = receiver.communicate(timeout=10)
        if not args.keep:
            asyncio.run(_admin(args.url, 'DROP DATABASE IF EXISTS "{name}"'))
    received = int(out.strip().splitlines()[-1])
    expected = total * len(rows)
    assert received == expected, f"the receiver counted {received} requests, expected {expected}"
    print(f"receiver counted {received} requests (expected {expected})")

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION,
        "",
        f"{when} · `python bench/run_webhooks.py --record` · PostgreSQL on the same machine.",
        "",
        f"- Machine before: {machine_before}",
        f"- Machine after: {machine_after}",
        f"- What: {args.subscriptions} subscriptions × {args.events} events = {total:,} deliveries queued by "
        f"`outbox.emit` (seeding {seeded:.1f} s), sent by `WebhookDeliverer.run_once()` (batches of "
        f"{args.batch}, keep-alive httpx clients of 4 connections, each POST signed with standardwebhooks) "
        "to a receiver in another process on 127.0.0.1 — **a Python asyncio server** answering 204 "
        "without reading the body, so the figures are the deliverer's and the database's, not a real "
        "receiver's.",
        f"- Checked: every delivery `delivered`, and the receiver counted exactly {expected:,} requests.",
        "- Goal: ≥ 500 deliveries/s.",
        "",
        "| subscriptions sent at once (`CDHT_WEBHOOK_CONCURRENCY`) | deliveries | seconds | deliveries/s |",
        "|---:|---:|---:|---:|",
        *[f"| {c} | {total:,} | {e:.2f} | {r:,.0f} |" for c, e, r in rows],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.record:
        _record(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
