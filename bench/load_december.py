"""Load: a December day against the real server (``cdht serve``) on PostgreSQL, loopback only.

December is when the year's evaluations close: members self-assess and upload evidence, assessors review,
district and province dashboards poll the aggregates. This driver

1. creates a PostgreSQL database of its own, runs ``cdht demo`` and ``cdht create-admin`` into it, and
   starts ``cdht serve`` on 127.0.0.1;
2. adds synthetic schools under province 37 through the API: an assessor and ``--members`` members per
   school, each member with an evaluation for 2025;
3. replays the day's mix with 4, 8, 16... virtual users (a closed loop each, ``--stage-seconds`` per
   stage) and reports requests/s, p50/p95 latency and errors per stage;
4. measures, in the same run, ``/aggregates/progress`` alone against a bare ``/healthz`` at one
   concurrency, for the ratio of their throughputs;
5. stops the server and drops the database.

Every loop is bounded in time and in count, and only 127.0.0.1 is ever addressed.

    .venv/bin/python bench/load_december.py [--record]   # --record appends to bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from december_setup import CDHT, PASSWORD, PDF, School, login, populate, psql, report, run

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1"
MAX_REQUESTS = 200_000  # a hard stop whatever the stages say


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    requests: int = 0

    def record(self, kind: str, status: int, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        self.statuses[kind, status] += 1
        self.requests += 1

    def errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status >= 500 or status in (400, 401))

    def conflicts(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status in (403, 404, 409, 422))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


class Driver:
    def __init__(
        self, client: httpx.AsyncClient, schools: list[School], units: list[int], viewer: dict[str, str]
    ) -> None:
        self.client, self.schools, self.units, self.viewer = client, schools, units, viewer
        self.rng = random.Random(12)
        self.stats = Stats()

    async def call(self, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        started = time.perf_counter()
        r = await self.client.request(method, path, **kwargs)
        self.stats.record(kind, r.status_code, time.perf_counter() - started)
        return r

    async def member_turn(self) -> None:
        school = self.rng.choice(self.schools)
        free = [m for m in school.members if not m.busy and m.evaluation["status"] in ("draft", "returned")]
        if not free:  # everyone here is waiting for the committee: members check where theirs is
            member = self.rng.choice(school.members)
            ev = member.evaluation
            await self.call("member.view", "GET", f"{API}/evaluations/{ev['id']}", headers=member.headers)
            return None
        member = self.rng.choice(free)
        member.busy = True
        try:
            ev = member.evaluation
            r = await self.call("member.view", "GET", f"{API}/evaluations/{ev['id']}", headers=member.headers)
            ev = r.json() if r.status_code == 200 else ev
            missing = [s for s in ev["scores"] if s["self_score"] is None]
            no_evidence = {s["indicator_id"] for s in ev["scores"]} - {
                e["indicator_id"] for e in ev["evidence"]
            }
            if missing:
                scores = [{"indicator_id": s["indicator_id"], "score": 9} for s in missing[:4]]
                scores += [
                    {"indicator_id": s["indicator_id"], "score": s["self_score"]}
                    for s in ev["scores"]
                    if s["self_score"] is not None
                ]
                r = await self.call(
                    "member.self_assess",
                    "PUT",
                    f"{API}/evaluations/{ev['id']}/self-assessment",
                    json={"version": ev["version"], "scores": scores},
                    headers=member.headers,
                )
            elif no_evidence:
                r = await self.call(
                    "member.upload",
                    "POST",
                    f"{API}/evaluations/{ev['id']}/evidence",
                    data={"indicator_id": str(min(no_evidence))},
                    files={"file": ("giay-chung-nhan.pdf", PDF, "application/pdf")},
                    headers=member.headers,
                )
            else:
                r = await self.call(
                    "member.submit",
                    "POST",
                    f"{API}/evaluations/{ev['id']}/submit",
                    json={"version": ev["version"]},
                    headers=member.headers,
                )
            if r.status_code in (200, 201) and "status" in r.json():
                member.evaluation = r.json()
            elif r.status_code == 201:
                member.evaluation = (
                    await self.call(
                        "member.view", "GET", f"{API}/evaluations/{ev['id']}", headers=member.headers
                    )
                ).json()
        finally:
            member.busy = False

    async def assessor_turn(self) -> None:
        school = self.rng.choice(self.schools)
        r = await self.call(
            "assessor.list",
            "GET",
            f"{API}/evaluations",
            params={"org_unit_id": school.unit_id, "status": "submitted", "limit": 20},
            headers=school.assessor,
        )
        waiting = (
            [m for m in school.members if not m.busy and m.evaluation["status"] == "submitted"]
            if r.status_code == 200
            else []
        )
        if not waiting:
            return
        member = self.rng.choice(waiting)
        member.busy = True
        try:
            ev = member.evaluation
            scores = [{"indicator_id": s["indicator_id"], "score": 8} for s in ev["scores"][:3]]
            r = await self.call(
                "assessor.review",
                "PUT",
                f"{API}/evaluations/{ev['id']}/review",
                json={"version": ev["version"], "scores": scores},
                headers=school.assessor,
            )
            if r.status_code == 200 and self.rng.random() < 0.25:  # evidence missing: back to the member
                r = await self.call(
                    "assessor.return",
                    "POST",
                    f"{API}/evaluations/{ev['id']}/return",
                    json={"version": r.json()["version"], "reason": "Bổ sung minh chứng tiêu chí 3"},
                    headers=school.assessor,
                )
            elif r.status_code == 200:
                r = await self.call(
                    "assessor.complete",
                    "POST",
                    f"{API}/evaluations/{ev['id']}/complete-review",
                    json={"version": r.json()["version"]},
                    headers=school.assessor,
                )
            if r.status_code == 200:
                member.evaluation = r.json()
        finally:
            member.busy = False

    async def dashboard_turn(self) -> None:
        params: dict[str, Any] = {"org_unit_id": self.rng.choice(self.units), "year": 2025}
        h = self.viewer
        if self.rng.random() < 0.6:
            await self.call(
                "dashboard.progress", "GET", f"{API}/aggregates/progress", params=params, headers=h
            )
        else:
            params["metric"] = "staff_recognised_pct"
            await self.call(
                "dashboard.breakdown", "GET", f"{API}/aggregates/breakdown", params=params, headers=h
            )

    async def user(self, until: float) -> None:
        turns = [(self.member_turn, 0.55), (self.assessor_turn, 0.2), (self.dashboard_turn, 0.25)]
        while time.monotonic() < until and self.stats.requests < MAX_REQUESTS:
            turn = self.rng.choices([t for t, _ in turns], [w for _, w in turns])[0]
            await turn()

    async def only(
        self, kind: str, path: str, params: dict[str, Any], headers: dict[str, str], until: float
    ) -> None:
        while time.monotonic() < until and self.stats.requests < MAX_REQUESTS:
            await self.call(kind, "GET", path, params=params, headers=headers)


async def measure(args: argparse.Namespace, base: str) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        started = time.monotonic()
        schools, units = await populate(client, args.schools, args.members)
        viewer = await login(client, "ninhbinh.viewer", "demo-password")
        setup = time.monotonic() - started
        stages = []
        for users in args.users:
            driver = Driver(client, schools, units, viewer)
            t0 = time.monotonic()
            until = t0 + args.stage_seconds
            await asyncio.gather(*(driver.user(until) for _ in range(users)))
            elapsed = time.monotonic() - t0
            every = [x for values in driver.stats.latencies.values() for x in values]
            stages.append(
                {
                    "users": users,
                    "requests": driver.stats.requests,
                    "rps": driver.stats.requests / elapsed,
                    "p50_ms": pct(every, 0.5),
                    "p95_ms": pct(every, 0.95),
                    "errors": driver.stats.errors(),
                    "refused": driver.stats.conflicts(),
                    "by_kind": {
                        k: {"n": len(v), "p95_ms": round(pct(v, 0.95), 1)}
                        for k, v in sorted(driver.stats.latencies.items())
                    },
                    "statuses": {f"{k} {s}": n for (k, s), n in sorted(driver.stats.statuses.items())},
                }
            )
            print(
                f"stage {users:3d} users: {stages[-1]['rps']:7.1f} req/s p95 {stages[-1]['p95_ms']:6.1f} ms "
                f"errors {stages[-1]['errors']}",
                file=sys.stderr,
            )
        ratio = {}
        for kind, path, params, h in (
            ("healthz", "/healthz", {}, {}),
            ("progress", f"{API}/aggregates/progress", {"org_unit_id": units[0], "year": 2025}, viewer),
        ):
            driver = Driver(client, schools, units, viewer)
            t0 = time.monotonic()
            until = t0 + args.ratio_seconds
            await asyncio.gather(
                *(driver.only(kind, path, params, h, until) for _ in range(args.ratio_users))
            )
            ratio[kind] = {
                "rps": driver.stats.requests / (time.monotonic() - t0),
                "p95_ms": pct(driver.stats.latencies.get(kind, []), 0.95),
                "errors": driver.stats.errors(),
            }
        members = sum(len(s.members) for s in schools)
        return {"setup_seconds": setup, "members": members, "stages": stages, "ratio": ratio}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--schools", type=int, default=8)
    parser.add_argument("--members", type=int, default=25)
    parser.add_argument("--users", type=int, nargs="+", default=[4, 8, 12, 16, 32])
    parser.add_argument("--stage-seconds", type=int, default=20)
    parser.add_argument("--ratio-users", type=int, default=8)
    parser.add_argument("--ratio-seconds", type=int, default=10)
    parser.add_argument("--record", action="store_true", help="append the section to bench/RESULTS.md")
    args = parser.parse_args()
    if args.stage_seconds * len(args.users) + 2 * args.ratio_seconds > 480:
        parser.error("keep the measured part under 8 minutes: access tokens live 10-15 minutes")
    name = f"cdht_load_{secrets.token_hex(4)}"
    database = args.server.rsplit("/", 1)[0] + f"/{name}"
    base = f"http://127.0.0.1:{args.port}"  # loopback only
    with tempfile.TemporaryDirectory(prefix="cdht-load-") as var:
        env = {
            **os.environ,
            "CDHT_DATABASE_URL": database,
            "CDHT_VAR_DIR": var,
            "CDHT_SECRET_KEY": secrets.token_urlsafe(48),
            "CDHT_ENV": "production",
            "CDHT_ACCESS_TOKEN_MINUTES": "15",
        }
        psql(args.server, f'CREATE DATABASE "{name}"')
        server = None
        try:
            run("demo", env=env)
            run("create-admin", "--username", "bench.admin", env={**env, "CDHT_ADMIN_PASSWORD": PASSWORD})
            server = subprocess.Popen(
                [CDHT, "serve", "--host", "127.0.0.1", "--port", str(args.port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(100):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise SystemExit("the server did not start")
            result = asyncio.run(measure(args, base))
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
            psql(args.server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    command = "python bench/load_december.py " + " ".join(sys.argv[1:])
    section = report(result, args, command.strip())
    print(section)
    if args.record:
        with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as out:
            out.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
