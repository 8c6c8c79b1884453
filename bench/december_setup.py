"""Setting up the December load run: the database, the demo, the server's synthetic schools (through the
API), and the Markdown section for bench/RESULTS.md. Used by bench/load_december.py."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
CDHT = str(ROOT / ".venv" / "bin" / "cdht")
API = "/api/v1"
PASSWORD = "bench-password-0123"
PDF = b"%PDF-1.4\n" + b"0" * 20_000 + b"\n%%EOF\n"  # a small scanned certificate, ~20 KB


@dataclass
class Member:
    headers: dict[str, str]
    evaluation: dict[str, Any]
    busy: bool = False


@dataclass
class School:
    unit_id: int
    assessor: dict[str, str]
    members: list[Member] = field(default_factory=list)


def run(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([CDHT, *args], env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"cdht {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def psql(server: str, sql: str) -> None:
    subprocess.run(["psql", server, "-q", "-c", sql], check=True, capture_output=True, timeout=60)


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    data = {"grant_type": "password", "username": username, "password": password}
    r = await client.post(f"{API}/auth/token", data=data)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def ok(r: Any) -> dict[str, Any]:
    response = await r
    if response.status_code >= 300:
        raise SystemExit(f"setup request failed: {response.status_code} {response.text[:300]}")
    return response.json()


async def submitted(client: httpx.AsyncClient, h: dict[str, str], ev: dict[str, Any]) -> dict[str, Any]:
    """Self-assess every indicator, upload a certificate for each, submit: as the member would."""
    scores = [{"indicator_id": s["indicator_id"], "score": 9} for s in ev["scores"]]
    path = f"{API}/evaluations/{ev['id']}"
    ev = await ok(
        client.put(f"{path}/self-assessment", json={"version": ev["version"], "scores": scores}, headers=h)
    )
    for s in ev["scores"]:
        files = {"file": ("giay-chung-nhan.pdf", PDF, "application/pdf")}
        await ok(
            client.post(
                f"{path}/evidence", data={"indicator_id": str(s["indicator_id"])}, files=files, headers=h
            )
        )
    return await ok(client.post(f"{path}/submit", headers=h))


async def populate(client: httpx.AsyncClient, schools: int, members: int) -> tuple[list[School], list[int]]:
    admin = await login(client, "bench.admin")
    province = (await ok(client.get(f"{API}/org-units", params={"code": "37"}, headers=admin)))["items"][0]
    district = await ok(
        client.post(
            f"{API}/org-units",
            json={"name": "Huyện Tải Thử", "kind": "district", "parent_id": province["id"]},
            headers=admin,
        )
    )
    made: list[School] = []
    for n in range(schools):
        unit = await ok(
            client.post(
                f"{API}/org-units",
                json={"name": f"Trường Tải {n}", "kind": "school", "parent_id": district["id"]},
                headers=admin,
            )
        )
        assessor = f"tai.assessor{n}"
        user = {
            "username": assessor,
            "password": PASSWORD,
            "full_name": "Tổ đánh giá",
            "org_unit_id": unit["id"],
        }
        created = await ok(client.post(f"{API}/users", json=user, headers=admin))
        role = {"role": "assessor", "org_unit_id": unit["id"]}
        await ok(client.post(f"{API}/users/{created['id']}/roles", json=role, headers=admin))
        school = School(unit["id"], await login(client, assessor))
        for k in range(members):
            person = await ok(
                client.post(
                    f"{API}/people",
                    # Members since the evaluated year began: a person registered today (after 2025)
                    # could not be evaluated for 2025.
                    json={
                        "full_name": f"Giáo viên {n}-{k}",
                        "org_unit_id": unit["id"],
                        "group": "staff",
                        "member_since": "2025-01-01",
                    },
                    headers=admin,
                )
            )
            username = f"tai.gv{n}.{k}"
            body = {**user, "username": username, "full_name": person["full_name"], "person_id": person["id"]}
            await ok(client.post(f"{API}/users", json=body, headers=admin))
            h = await login(client, username)
            evaluation = await ok(
                client.post(f"{API}/evaluations", json={"person_id": person["id"], "year": 2025}, headers=h)
            )
            if k % 3 == 0:  # mid-December: a third of the members have already submitted
                evaluation = await submitted(client, h, evaluation)
            school.members.append(Member(h, evaluation))
        made.append(school)
    return made, [province["id"], district["id"], made[0].unit_id]


def _groups(by_kind: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Share of requests per actor (member, assessor, dashboard), in percent."""
    groups: dict[str, float] = {}
    for kind, values in by_kind.items():
        groups[kind.split(".")[0]] = groups.get(kind.split(".")[0], 0) + values["n"]
    total = sum(groups.values()) or 1
    return {k: 100 * v / total for k, v in groups.items()}


def report(result: dict[str, Any], args: Any, command: str) -> str:
    good = [s for s in result["stages"] if s["p95_ms"] <= 200 and s["errors"] == 0]
    best = max(good, key=lambda s: s["rps"]) if good else None
    shown = best or result["stages"][0]
    total = sum(s["requests"] for s in result["stages"])
    errors = sum(s["errors"] for s in result["stages"])
    ratio = result["ratio"]["progress"]["rps"] / result["ratio"]["healthz"]["rps"]
    free = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout.rstrip()
    lines = [
        "",
        "## Load: a December day",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · `{command}` · {platform.platform()} · "
        f"nproc {os.cpu_count()} · Python {platform.python_version()} · PostgreSQL on the same machine; "
        "driver, server (`cdht serve`, one worker) and database share the cores.",
        "",
        "```",
        free,
        "```",
        "",
        f"Data: `cdht demo` plus {args.schools} synthetic schools × {args.members} members "
        f"({result['members']} members, each with a 2025 evaluation, a third of them already submitted; "
        f"setup {result['setup_seconds']:.0f} s). "
        "Mix per virtual user (closed loop, no think time): 55 % member turns (view, self-assess four "
        "indicators at a time, upload a 20 KB PDF per indicator, submit; once submitted, check on it), "
        "20 % assessor turns (list the school's submitted evaluations, review, then complete the review "
        "or, one time in four, return it), 25 % dashboards "
        "(`/aggregates/progress` 60 %, `/aggregates/breakdown` 40 %, for the province, the district "
        "and a school).",
        "",
        "| virtual users | requests | req/s | p50 ms | p95 ms | errors | refused (4xx) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["stages"]:
        lines.append(
            f"| {s['users']} | {s['requests']} | {s['rps']:.1f} | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} | "
            f"{s['errors']} | {s['refused']} |"
        )
    lines += [
        "",
        f"- **Sustained with p95 ≤ 200 ms: {best['rps']:.1f} req/s** ({best['users']} virtual users)."
        if best
        else "- No stage held p95 ≤ 200 ms.",
        f"- Error rate: {errors} of {total} requests ({100 * errors / max(total, 1):.3f} %); "
        "errors = 5xx, 400, 401. Refused = 403/404/409/422 answers to a request that raced another.",
        f"- Aggregates vs a bare `/healthz` ({args.ratio_users} concurrent clients, {args.ratio_seconds} s "
        f"each, same run): `/aggregates/progress` {result['ratio']['progress']['rps']:.1f} req/s "
        f"(p95 {result['ratio']['progress']['p95_ms']:.1f} ms) vs `/healthz` "
        f"{result['ratio']['healthz']['rps']:.1f} req/s (p95 {result['ratio']['healthz']['p95_ms']:.1f} ms): "
        f"**ratio {ratio:.2f}**.",
        "- Requests by kind at the best stage: "
        + ", ".join(f"{group} {share:.0f} %" for group, share in _groups(shown["by_kind"]).items())
        + ".",
        "- p95 by request kind at the best stage: "
        + ", ".join(f"{k} {v['p95_ms']} ms (n={v['n']})" for k, v in shown["by_kind"].items()),
        "",
    ]
    return "\n".join(lines)
