"""HTTP throughput of the service against a bare FastAPI app (issue #15), measured with ``wrk``.

    .venv/bin/python bench/run_http.py                        # 10 s rounds, workers 1 and 2, the mix
    .venv/bin/python bench/run_http.py --duration 3 --mix-stages 8   # a quick check
    .venv/bin/python bench/run_http.py --write-results        # replaces its section of bench/RESULTS.md
    .venv/bin/python bench/run_http.py --write-results --before-from-results   # the last run as "before"

In one run:

1. Installs ``wrk`` if it is missing (``apt-get install -y -qq wrk``: the benchmark's tool, never the
   service's), creates the PostgreSQL database ``cdht_http_bench`` (dropped at the end, also on failure or
   Ctrl-C), loads the demo (``cdht demo``: migrations, seeds, demo) and a bench admin, with a random
   production secret and the longest access tokens the settings allow (15 minutes: the runner logs in again
   before every endpoint and every mix).
2. Starts the bare baseline (``bench/bare_app.py``: one catch-all route answering a small JSON, served by
   the same uvicorn with the same options as ``cdht serve``: uvloop and httptools, access log off) and the
   service (``cdht serve``, ``--workers N`` when the command has the option), each on a port of its own on
   127.0.0.1.
3. For each endpoint (``/healthz``; ``/me``, ``/org-units``, ``/aggregates/progress`` and ``/evaluations``
   as ``--user``, default the demo's ``quangngai.admin``, on its province Quảng Ngãi, the demo's largest
   with 110 evaluations of 2025; and ``/aggregates/progress`` with ``If-None-Match`` when the first GET
   answers an ``ETag``; and ``/aggregates/progress, computed``: the same progress on a third service, one
   worker with ``CDHT_KEPT_BODIES_MB=0``, so that every answer is computed rather than served from the
   bytes an earlier read with the same change counters computed), ``--rounds`` alternating rounds of
   bare then service (``wrk -t1 -c8 --latency``, ``--duration`` seconds each, the same path, query and
   headers on both), after a short warm-up of each.
   Per round: requests/s, p50/p95 latency (p95 from ``bench/wrk_report.lua``'s ``done`` hook), non-2xx/3xx
   answers, socket errors, the CPU time the server used (utime + stime from ``/proc``: the uvicorn process
   and its children; PostgreSQL's backends of the service, found by ``application_name = 'cdht'`` in
   ``pg_stat_activity``) per request, and how busy the machine was (``/proc/stat``). Medians are reported;
   the ratio is the service's median over the bare app's.
4. ``--workers 1,2`` (the default): one service per worker count, all started at once and measured in the
   same alternation (bare, 1 worker, 2 workers, bare, …), so the 2-vs-1 ratio is as robust to the
   machine's other work as the ratio to the bare app; the idle service costs nothing meanwhile.
5. The December mix (``--mix-stages``, connection counts; ``--no-mix`` to skip): ``bench/december_setup.py``'s
   schools (``--schools`` × ``--members``, added through the API as ``load_december.py`` does, the members
   on the programme's records since 1 January 2025) and, before each run, a request list in the mix's
   proportions written as a Lua table for ``bench/wrk_mix.lua``; each stage runs on each worker count in
   turn. wrk is the driver, so the Python driver's own ceiling does not cap it; the ceiling of wrk with this
   Lua script is measured against the bare app and stated.
6. Statements per request: each endpoint once more through the app in process (``httpx.ASGITransport``,
   ``app.main:create_app`` on the same database), counted with a ``before_cursor_execute`` listener as
   ``tests/api/test_statements.py`` counts them (``pg_stat_statements`` is not preloaded here).
7. Prints the section; ``--write-results`` replaces "HTTP throughput against bare FastAPI (issue #15)" in
   ``bench/RESULTS.md`` (other sections kept). The section carries its figures as JSON in an HTML comment,
   so a later run with ``--before-from-results`` can show them as "before".

The December mix through wrk differs from ``load_december.py``'s closed loops in one way: a fixed list
cannot follow a member's evaluation through its states, so the state changes (submit, complete the review,
return; about 5 % of the Python driver's requests) are left out and their share goes to the write of the
same actor (self-assessment, review). Self-assessments and uploads go to the schools' draft evaluations
(disjoint halves, so an upload, which bumps the version without naming it, never makes a self-assessment
stale), reviews to the submitted ones, views to anyone's; dashboards poll progress and breakdown of the
province, the district and a school as ``ninhbinh.viewer``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import december_setup as dec  # noqa: E402
from run_aggregates import busy_since, cpu_times  # noqa: E402

VENV = ROOT / ".venv" / "bin"
CDHT = str(VENV / "cdht")
RESULTS = BENCH / "RESULTS.md"
SECTION = "## HTTP throughput against bare FastAPI (issue #15)"
DATA_MARK = "<!-- run_http data: "
DATABASE = "cdht_http_bench"
SERVER = "postgresql://postgres@127.0.0.1:5432"
API = "/api/v1"
YEAR = 2025
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOAL_RATIO, GOAL_WORKERS, GOAL_MIX_RPS, GOAL_MIX_P95, GOAL_304 = 0.10, 1.8, 360.0, 200.0, 0.5
GOAL_ENDPOINTS = ("/me", "/org-units", "/aggregates/progress", "/evaluations")
# The Python driver's shares at its best stage (RESULTS.md, "Load: a December day"), the state changes
# (submit, complete-review, return) folded into the same actor's write.
MIX_WEIGHTS = {
    "member.view": 41,
    "member.self_assess": 16,
    "member.upload": 13,
    "assessor.list": 10,
    "assessor.review": 8,
    "dashboard.progress": 7,
    "dashboard.breakdown": 5,
}


class BenchFailure(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------- machine


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (uvicorn's supervisor, its workers, multiprocessing helpers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """utime + stime of each live pid, in clock ticks."""
    ticks = {}
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            ticks[pid] = int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return ticks


def psql(sql: str, database: str = "postgres") -> str:
    done = subprocess.run(
        ["psql", f"{SERVER}/{database}", "-Atq", "-c", sql],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise BenchFailure(f"psql failed: {sql}\n{done.stderr}")
    return done.stdout


def backends() -> list[int]:
    """The service's PostgreSQL backends (its pools: ``application_name = 'cdht'``) in the bench database."""
    out = psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{DATABASE}' AND application_name = 'cdht'")
    return [int(line) for line in out.split()]


@dataclass
class CpuMark:
    server: dict[int, int]
    database: dict[int, int]


def cpu_mark(server_pid: int | None) -> CpuMark:
    if server_pid is None:
        return CpuMark({}, {})
    return CpuMark(cpu_ticks(process_tree(server_pid)), cpu_ticks(backends()))


def cpu_used(before: CpuMark, after: CpuMark) -> tuple[float, float]:
    """CPU seconds of the server's processes and of its backends between two marks (a process born in
    between counts from zero)."""

    def delta(a: dict[int, int], b: dict[int, int]) -> float:
        return sum(ticks - a.get(pid, 0) for pid, ticks in b.items()) / CLK_TCK

    return delta(before.server, after.server), delta(before.database, after.database)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------- wrk


def ensure_wrk() -> str:
    """wrk, installed from Debian if missing: the benchmark's tool, never the service's."""
    if found := shutil.which("wrk"):
        return found
    print("wrk missing: apt-get install -y -qq wrk", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:  # a stale package list: update once, then try again
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        done = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True, text=True, check=False
        )
    if done.returncode != 0 or not (found := shutil.which("wrk")):
        raise BenchFailure(f"could not install wrk:\n{done.stdout}\n{done.stderr}")
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).split("Copyright")[0].strip()


@dataclass
class Round:
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    non_2xx_3xx: int
    socket_errors: int
    app_us: float = 0.0  # server processes' CPU per request
    db_us: float = 0.0  # PostgreSQL backends' CPU per request
    busy: float = 0.0  # share of the machine's CPU busy during the round
    wrk_us: float = 0.0  # wrk's own CPU per request (the load generator shares the machine)
    statuses: dict[int, int] = field(default_factory=dict)


def run_wrk(
    wrk: str,
    url: str,
    *,
    seconds: int,
    connections: int,
    headers: dict[str, str] | None = None,
    script: Path = BENCH / "wrk_report.lua",
    script_args: list[str] | None = None,
    server_pid: int | None = None,
) -> Round:
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "30s"]
    command += ["-s", str(script)]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    before, machine = cpu_mark(server_pid), cpu_times()
    # wrk is the only child that ends in between (the servers run on): its CPU is the difference.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=False)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after, busy = cpu_mark(server_pid), busy_since(machine)
    if done.returncode != 0:
        raise BenchFailure(
            f"wrk failed ({done.returncode}): {' '.join(command)}\n{done.stdout}\n{done.stderr}"
        )
    values: dict[str, int] = {}
    for line in done.stdout.splitlines():
        if line.startswith("RUN_HTTP "):
            _, key, value = line.split()
            values[key] = int(float(value))
    if "requests" not in values:
        raise BenchFailure(f"no figures in wrk's output:\n{done.stdout}\n{done.stderr}")
    requests = values["requests"]
    app_s, db_s = cpu_used(before, after)
    per = 1e6 / max(requests, 1)
    return Round(
        rps=requests / (values["duration_us"] / 1e6),
        p50_ms=values["p50_us"] / 1000,
        p95_ms=values["p95_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        requests=requests,
        non_2xx_3xx=values["err_status"],
        socket_errors=sum(values[k] for k in ("err_connect", "err_read", "err_write", "err_timeout")),
        app_us=app_s * per,
        db_us=db_s * per,
        busy=busy,
        wrk_us=(children_after.ru_utime + children_after.ru_stime - children.ru_utime - children.ru_stime)
        * per,
        statuses={int(k[7:]): v for k, v in values.items() if k.startswith("status_")},
    )


# ---------------------------------------------------------------------------------------------- servers


def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchFailure(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise BenchFailure(f"{what} did not answer {url} in 90 s")


@contextlib.contextmanager
def started(command: list[str], env: dict[str, str], ready: str, what: str, log: Path) -> Iterator[int]:
    """A server process until the block ends; stops it and every process it started."""
    with log.open("ab") as out:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(ready, proc, what)
        yield proc.pid
    finally:
        tree = process_tree(proc.pid)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pid in tree[1:]:  # workers the supervisor did not take down with it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def serve_options() -> bool:
    """Whether ``cdht serve`` takes ``--workers``."""
    out = subprocess.run([CDHT, "serve", "--help"], capture_output=True, text=True, check=False)
    return "--workers" in out.stdout


def cdht(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([CDHT, *args], env=env, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise BenchFailure(f"cdht {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def login(base: str, username: str, password: str) -> str:
    r = httpx.post(
        f"{base}{API}/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
        timeout=30,
    )
    if r.status_code != 200:
        raise BenchFailure(f"login {username} failed: {r.status_code} {r.text[:300]}")
    return str(r.json()["access_token"])


# ---------------------------------------------------------------------------------------------- endpoints


@dataclass
class Endpoint:
    name: str
    path: str  # with its query string
    auth: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    computed: bool = False  # measured on the service that keeps no bodies (CDHT_KEPT_BODIES_MB=0)


COMPUTED = "/aggregates/progress, computed"


def endpoints(base: str, token: str, province: int) -> tuple[list[Endpoint], str | None]:
    progress = f"{API}/aggregates/progress?org_unit_id={province}&year={YEAR}"
    found = [
        Endpoint("/healthz", "/healthz", auth=False),
        Endpoint("/me", f"{API}/me"),
        Endpoint("/org-units", f"{API}/org-units"),
        Endpoint("/aggregates/progress", progress),
        Endpoint("/evaluations", f"{API}/evaluations?org_unit_id={province}"),
    ]
    auth = {"Authorization": f"Bearer {token}"}
    for e in found:
        r = httpx.get(base + e.path, headers=auth if e.auth else {}, timeout=30)
        if r.status_code != 200:
            raise BenchFailure(f"{e.path}: {r.status_code} {r.text[:300]}")
    etag = httpx.get(base + progress, headers=auth, timeout=30).headers.get("etag")
    if etag:
        conditional = Endpoint("/aggregates/progress 304", progress, headers={"If-None-Match": etag})
        r = httpx.get(base + progress, headers={**auth, **conditional.headers}, timeout=30)
        if r.status_code != 304:
            raise BenchFailure(f"If-None-Match {etag} answered {r.status_code}, not 304")
        found.append(conditional)
    return found, etag


def province_id(base: str, token: str, code: str) -> int:
    r = httpx.get(
        f"{base}{API}/org-units",
        params={"code": code},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    r.raise_for_status()
    return int(r.json()["items"][0]["id"])


# ---------------------------------------------------------------------------------------------- the mix


def lua_string(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    out = []
    for byte in data:
        if 0x20 <= byte < 0x7F and byte not in (0x22, 0x5C):
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def lua_headers(headers: dict[str, str]) -> str:
    return "{" + ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()) + "}"


@dataclass
class MixPeople:
    """Who the mix acts as: usernames (logged in again before each mix) and their units and evaluations."""

    schools: list[dict[str, Any]]  # unit_id, assessor, members: [(username, evaluation id)]
    units: list[int]  # province, district, a school: the dashboards' units


async def populate_mix(base: str, schools: int, members: int) -> MixPeople:
    """``december_setup.populate``'s schools, with the members on the programme's records since 1 January
    of the measured year (created later in the calendar, they could not be evaluated for it otherwise)."""
    made: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        admin = await dec.login(client, "bench.admin")
        province = (await dec.ok(client.get(f"{API}/org-units", params={"code": "37"}, headers=admin)))[
            "items"
        ][0]
        district = await dec.ok(
            client.post(
                f"{API}/org-units",
                json={"name": "Huyện Tải Thử", "kind": "district", "parent_id": province["id"]},
                headers=admin,
            )
        )
        for n in range(schools):
            unit = await dec.ok(
                client.post(
                    f"{API}/org-units",
                    json={"name": f"Trường Tải {n}", "kind": "school", "parent_id": district["id"]},
                    headers=admin,
                )
            )
            user = {
                "username": f"tai.assessor{n}",
                "password": dec.PASSWORD,
                "full_name": "Tổ đánh giá",
                "org_unit_id": unit["id"],
            }
            created = await dec.ok(client.post(f"{API}/users", json=user, headers=admin))
            role = {"role": "assessor", "org_unit_id": unit["id"]}
            await dec.ok(client.post(f"{API}/users/{created['id']}/roles", json=role, headers=admin))
            school: dict[str, Any] = {"unit_id": unit["id"], "assessor": user["username"], "members": []}
            for k in range(members):
                person = await dec.ok(
                    client.post(
                        f"{API}/people",
                        json={
                            "full_name": f"Giáo viên {n}-{k}",
                            "org_unit_id": unit["id"],
                            "group": "staff",
                            "member_since": f"{YEAR}-01-01",
                        },
                        headers=admin,
                    )
                )
                username = f"tai.gv{n}.{k}"
                body = {
                    **user,
                    "username": username,
                    "full_name": person["full_name"],
                    "person_id": person["id"],
                }
                await dec.ok(client.post(f"{API}/users", json=body, headers=admin))
                h = await dec.login(client, username)
                evaluation = await dec.ok(
                    client.post(
                        f"{API}/evaluations", json={"person_id": person["id"], "year": YEAR}, headers=h
                    )
                )
                if k % 3 == 0:  # mid-December: a third of the members have already submitted
                    evaluation = await dec.submitted(client, h, evaluation)
                school["members"].append((username, evaluation["id"]))
            made.append(school)
    return MixPeople(schools=made, units=[province["id"], district["id"], made[0]["unit_id"]])


async def _logins(base: str, usernames: list[str], password: str) -> dict[str, dict[str, str]]:
    gate = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def one(username: str) -> tuple[str, dict[str, str]]:
            async with gate:
                return username, await dec.login(client, username, password)

        return dict(await asyncio.gather(*(one(u) for u in usernames)))


async def _evaluations(base: str, wanted: list[tuple[int, dict[str, str]]]) -> dict[int, dict[str, Any]]:
    gate = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def one(ev: int, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
            async with gate:
                r = await client.get(f"{API}/evaluations/{ev}", headers=headers)
                r.raise_for_status()
                return ev, r.json()

        return dict(await asyncio.gather(*(one(ev, h) for ev, h in wanted)))


def mix_logins(base: str, people: MixPeople) -> dict[str, dict[str, str]]:
    """Everyone the mix acts as, logged in (again: tokens live 15 minutes at most)."""
    usernames = [s["assessor"] for s in people.schools] + [u for s in people.schools for u, _ in s["members"]]
    heads = asyncio.run(_logins(base, usernames, dec.PASSWORD))
    heads.update(asyncio.run(_logins(base, ["ninhbinh.viewer"], "demo-password")))
    return heads


def write_mix(
    base: str, people: MixPeople, heads: dict[str, dict[str, str]], path: Path, count: int, seed: int
) -> dict[str, int]:
    """Read the evaluations' states and versions now, and write ``count`` requests in the mix's proportions
    as a Lua table for ``bench/wrk_mix.lua``. Returns the requests per kind."""
    owner = {ev: (u, s) for s in people.schools for u, ev in s["members"]}
    evaluations = asyncio.run(_evaluations(base, [(ev, heads[u]) for ev, (u, _) in owner.items()]))
    drafts = sorted(ev for ev, body in evaluations.items() if body["status"] in ("draft", "returned"))
    self_assess, upload = drafts[0::2], drafts[1::2]
    review = sorted(ev for ev, body in evaluations.items() if body["status"] in ("submitted", "in_review"))
    if not (self_assess and upload and review):
        raise BenchFailure(f"the mix needs draft and submitted evaluations: {len(drafts)}, {len(review)}")
    rng = random.Random(seed)
    boundary = "cdhtbench" + secrets.token_hex(8)
    bodies: dict[int, int] = {}  # indicator id -> index in the Lua table B
    body_list: list[bytes] = []
    rows: list[str] = []
    made: dict[str, int] = dict.fromkeys(MIX_WEIGHTS, 0)
    viewer = heads["ninhbinh.viewer"]
    kinds = list(MIX_WEIGHTS)
    for kind in rng.choices(kinds, [MIX_WEIGHTS[k] for k in kinds], k=count):
        made[kind] += 1
        if kind == "member.view":
            ev = rng.choice(list(owner))
            row = {"m": "GET", "p": f"{API}/evaluations/{ev}", "h": heads[owner[ev][0]]}
        elif kind == "member.self_assess":
            ev = rng.choice(self_assess)
            scores = [{"indicator_id": s["indicator_id"], "score": 9} for s in evaluations[ev]["scores"][:4]]
            row = {
                "m": "PUT",
                "p": f"{API}/evaluations/{ev}/self-assessment",
                "h": {**heads[owner[ev][0]], "Content-Type": "application/json"},
                "e": ev,
                "b1": '{"version":',
                "b2": ',"scores":' + json.dumps(scores, separators=(",", ":")) + "}",
            }
        elif kind == "member.upload":
            ev = rng.choice(upload)
            indicator = rng.choice(evaluations[ev]["scores"])["indicator_id"]
            if indicator not in bodies:
                bodies[indicator] = len(body_list) + 1
                body_list.append(
                    (
                        f'--{boundary}\r\nContent-Disposition: form-data; name="indicator_id"\r\n\r\n'
                        f'{indicator}\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                        f'filename="giay-chung-nhan.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
                    ).encode()
                    + dec.PDF
                    + f"\r\n--{boundary}--\r\n".encode()
                )
            row = {
                "m": "POST",
                "p": f"{API}/evaluations/{ev}/evidence",
                "h": {**heads[owner[ev][0]], "Content-Type": f"multipart/form-data; boundary={boundary}"},
                "B": bodies[indicator],
            }
        elif kind == "assessor.list":
            school = rng.choice(people.schools)
            row = {
                "m": "GET",
                "p": f"{API}/evaluations?org_unit_id={school['unit_id']}&status=submitted&limit=20",
                "h": heads[school["assessor"]],
            }
        elif kind == "assessor.review":
            ev = rng.choice(review)
            scores = [{"indicator_id": s["indicator_id"], "score": 8} for s in evaluations[ev]["scores"][:3]]
            row = {
                "m": "PUT",
                "p": f"{API}/evaluations/{ev}/review",
                "h": {**heads[owner[ev][1]["assessor"]], "Content-Type": "application/json"},
                "e": ev,
                "b1": '{"version":',
                "b2": ',"scores":' + json.dumps(scores, separators=(",", ":")) + "}",
            }
        else:
            unit = rng.choice(people.units)
            query = f"org_unit_id={unit}&year={YEAR}"
            if kind == "dashboard.progress":
                row = {"m": "GET", "p": f"{API}/aggregates/progress?{query}", "h": viewer}
            else:
                row = {
                    "m": "GET",
                    "p": f"{API}/aggregates/breakdown?{query}&metric=staff_recognised_pct",
                    "h": viewer,
                }
        rows.append(_lua_row(row))
    versions = ", ".join(f"[{ev}] = {evaluations[ev]['version']}" for ev in sorted(evaluations))
    text = [
        "-- written by bench/run_http.py: the December mix's requests for bench/wrk_mix.lua",
        "local B = {" + ", ".join(lua_string(b) for b in body_list) + "}",
        "return {",
        f"  versions = {{{versions}}},",
        "  requests = {",
        *rows,
        "  },",
        "}",
    ]
    path.write_text("\n".join(text) + "\n")
    return made


def _lua_row(row: dict[str, Any]) -> str:
    parts = [f"m = {lua_string(row['m'])}", f"p = {lua_string(row['p'])}", f"h = {lua_headers(row['h'])}"]
    if "e" in row:
        parts += [f"e = {row['e']}", f"b1 = {lua_string(row['b1'])}", f"b2 = {lua_string(row['b2'])}"]
    if "B" in row:
        parts.append(f"b = B[{row['B']}]")
    return "    {" + ", ".join(parts) + "},"


def mix_split(r: Round) -> tuple[int, int]:
    """(errors, refused) of a mix stage: errors are 5xx, 400, 401 and socket errors; refused are the
    answers to a request that raced another (403, 404, 409, 422), as ``load_december.py`` counts them."""
    errors = sum(n for s, n in r.statuses.items() if s >= 500 or s in (400, 401)) + r.socket_errors
    refused = sum(n for s, n in r.statuses.items() if s in (403, 404, 409, 422))
    return errors, refused


# ---------------------------------------------------------------------------------------------- statements


async def count_statements(
    env: dict[str, str], token: str, found: list[Endpoint]
) -> dict[str, tuple[int, list[str]]]:
    """Each endpoint through the app in process on the bench database, warm, its SQL statements counted."""
    from sqlalchemy import event

    from app.core.config import Settings
    from app.main import create_app

    os.environ.update({k: v for k, v in env.items() if k.startswith("CDHT_")})
    app = create_app(Settings())
    engine = app.state.engine
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append(" ".join(statement.split())[:160])

    counts: dict[str, tuple[int, list[str]]] = {}
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for e in found:
                headers = {**({"Authorization": f"Bearer {token}"} if e.auth else {}), **e.headers}
                if "If-None-Match" in headers:  # the tag of now: the mix's set-up has moved the epochs since
                    plain = {k: v for k, v in headers.items() if k != "If-None-Match"}
                    headers["If-None-Match"] = (await client.get(e.path, headers=plain)).headers["etag"]
                kept = app.state.bodies
                if e.computed:  # as the service with CDHT_KEPT_BODIES_MB=0
                    app.state.bodies = type(kept)(0, 0.0)
                await client.get(e.path, headers=headers)  # warm: caches, the pool's first connection
                event.listen(engine.sync_engine, "before_cursor_execute", before)
                try:
                    r = await client.get(e.path, headers=headers)
                finally:
                    event.remove(engine.sync_engine, "before_cursor_execute", before)
                    app.state.bodies = kept
                if r.status_code not in (200, 304):
                    raise BenchFailure(f"in process {e.path}: {r.status_code} {r.text[:200]}")
                counts[e.name] = (len(seen), list(seen))
                seen.clear()
    finally:
        await engine.dispose()
    return counts


# ---------------------------------------------------------------------------------------------- the run


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def summary(rounds: list[Round]) -> dict[str, float]:
    return {
        "rps": median([r.rps for r in rounds]),
        "p50_ms": median([r.p50_ms for r in rounds]),
        "p95_ms": median([r.p95_ms for r in rounds]),
        "app_us": median([r.app_us for r in rounds]),
        "db_us": median([r.db_us for r in rounds]),
        "non_2xx_3xx": sum(r.non_2xx_3xx for r in rounds),
        "socket_errors": sum(r.socket_errors for r in rounds),
        "busy": median([r.busy for r in rounds]),
        "wrk_us": median([r.wrk_us for r in rounds]),
        "busy_max": max((r.busy for r in rounds), default=0.0),
    }


@dataclass
class Target:
    name: str  # "bare", or the service's worker count
    base: str
    pid: int


def measure_endpoints(
    args: argparse.Namespace, wrk: str, targets: list[Target], fresh_token: Any, computed: Target
) -> tuple[dict[str, dict[str, Any]], str | None, list[Endpoint]]:
    """For every endpoint, ``--rounds`` rounds alternating over the targets (bare, then each service;
    the computed progress: bare, then ``computed``); a fresh token before each endpoint (every service
    shares the secret, so any accepts it)."""
    service = targets[1].base
    token = fresh_token()
    province = province_id(service, token, args.province)
    found, etag = endpoints(service, token, province)
    progress = next(e for e in found if e.name == "/aggregates/progress")
    found.insert(found.index(progress) + 1, Endpoint(COMPUTED, progress.path, computed=True))
    out: dict[str, dict[str, Any]] = {}
    for e in found:
        token = fresh_token()
        headers = {**({"Authorization": f"Bearer {token}"} if e.auth else {}), **e.headers}
        these = [targets[0], computed] if e.computed else targets
        for t in these:  # warm-up, not recorded
            run_wrk(wrk, t.base + e.path, seconds=args.warmup, connections=args.connections, headers=headers)
        rounds: dict[str, list[Round]] = {t.name: [] for t in these}
        for n in range(args.rounds):
            for t in these:
                r = run_wrk(
                    wrk,
                    t.base + e.path,
                    seconds=args.duration,
                    connections=args.connections,
                    headers=headers,
                    server_pid=t.pid,
                )
                rounds[t.name].append(r)
                who = "bare" if t.name == "bare" else f"{t.name} worker"
                print(
                    f"  {e.name:26} {who:9} round {n + 1}: {r.rps:9.1f} req/s  p95 {r.p95_ms:7.1f} ms  "
                    f"non-2xx/3xx {r.non_2xx_3xx}  CPU {r.app_us:7.0f} + {r.db_us:6.0f} µs/req  "
                    f"busy {r.busy:.0%}",
                    flush=True,
                )
        out[e.name] = {
            "path": e.path,
            **{t.name: summary(rounds[t.name]) for t in these},
            "rounds": {name: [asdict(r) for r in rs] for name, rs in rounds.items()},
        }
        if e.headers:  # the conditional poll: still a 304 after its rounds (the ETag did not move)?
            out[e.name]["status_after"] = httpx.get(service + e.path, headers=headers, timeout=30).status_code
    return out, etag, found


def measure_mix(
    args: argparse.Namespace, wrk: str, services: list[Target], people: MixPeople, work: Path
) -> dict[str, Any]:
    """Each stage (connections) on each service in turn, a list written afresh before each run."""
    heads = mix_logins(services[0].base, people)
    stages: dict[str, list[dict[str, Any]]] = {t.name: [] for t in services}
    made: dict[str, int] = {}
    for n, connections in enumerate(args.mix_stages):
        for t in services:
            path = work / f"mix-{t.name}-{connections}.lua"
            made = write_mix(t.base, people, heads, path, args.mix_requests, seed=n)
            r = run_wrk(
                wrk,
                t.base,
                seconds=args.mix_seconds,
                connections=connections,
                script=BENCH / "wrk_mix.lua",
                script_args=[str(path)],
                server_pid=t.pid,
            )
            errors, refused = mix_split(r)
            stages[t.name].append(
                {"connections": connections, **asdict(r), "errors": errors, "refused": refused}
            )
            print(
                f"  mix {t.name} worker(s) {connections:3d} connections: {r.rps:7.1f} req/s  "
                f"p50 {r.p50_ms:6.1f}  p95 {r.p95_ms:7.1f} ms  errors {errors}  refused {refused}  "
                f"CPU {r.app_us:6.0f} + {r.db_us:5.0f} µs/req  busy {r.busy:.0%}  "
                f"statuses {dict(sorted(r.statuses.items()))}",
                flush=True,
            )
    return {"kinds": made, "stages": stages}


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    wrk = ensure_wrk()
    has_workers = serve_options()
    counts = args.workers if has_workers else [1]
    if not has_workers and args.workers != [1]:
        print("cdht serve has no --workers: one worker only", flush=True)
    env = {
        **os.environ,
        "CDHT_DATABASE_URL": f"{SERVER}/{DATABASE}",
        "CDHT_SECRET_KEY": secrets.token_urlsafe(36),  # 48 characters
        "CDHT_ENV": "production",
        "CDHT_VAR_DIR": str(work / "var"),
        "CDHT_ACCESS_TOKEN_MINUTES": "15",  # the longest the settings allow
    }
    result: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "load_before": os.getloadavg(),
        "nproc": os.cpu_count() or 1,
        "wrk": wrk_version(wrk),
        "serve_has_workers": has_workers,
        "workers": counts,
    }
    t0 = time.monotonic()
    psql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{DATABASE}"')
    print(f"database {DATABASE}: migrate, seed, demo …", flush=True)
    cdht("migrate", env=env)
    cdht("seed", env=env)
    cdht("demo", env=env)
    cdht("create-admin", "--username", "bench.admin", env={**env, "CDHT_ADMIN_PASSWORD": dec.PASSWORD})
    result["setup_seconds"] = time.monotonic() - t0
    ports = [args.port + i for i in range(len(counts) + 1)] if args.port else [free_port()]
    while len(ports) < len(counts) + 1:
        if (port := free_port()) not in ports:
            ports.append(port)
    bare = f"http://127.0.0.1:{ports[0]}"
    uvicorn = [str(VENV / "uvicorn"), "bare_app:app", "--app-dir", str(BENCH), "--host", "127.0.0.1"]
    uvicorn += ["--port", str(ports[0]), "--no-access-log", "--log-level", "warning"]
    with contextlib.ExitStack() as stack:
        targets = [
            Target(
                "bare",
                bare,
                stack.enter_context(started(uvicorn, env, f"{bare}/healthz", "bare", work / "bare.log")),
            )
        ]
        for workers, port in zip(counts, ports[1:], strict=True):
            command = [CDHT, "serve", "--host", "127.0.0.1", "--port", str(port)]
            if has_workers:
                command += ["--workers", str(workers)]
            base = f"http://127.0.0.1:{port}"
            log = work / f"serve-{workers}.log"
            pid = stack.enter_context(started(command, env, f"{base}/readyz", "cdht serve", log))
            targets.append(Target(str(workers), base, pid))
        services = targets[1:]
        port = free_port()
        while port in ports:
            port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [CDHT, "serve", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--workers", "1"] if has_workers else []
        log = work / "serve-computed.log"
        nothing_kept = {**env, "CDHT_KEPT_BODIES_MB": "0"}
        pid = stack.enter_context(started(command, nothing_kept, f"{base}/readyz", "cdht serve", log))
        computed = Target(str(counts[0]), base, pid)  # reported in the first worker count's column
        print(
            "bare app and "
            + ", ".join(f"the service with {t.name} worker(s)" for t in services)
            + " started",
            flush=True,
        )

        def fresh_token() -> str:
            return login(services[0].base, args.user, args.password)

        result["endpoints"], result["etag"], found = measure_endpoints(
            args, wrk, targets, fresh_token, computed
        )
        token = fresh_token()
        if not args.no_mix:
            print(f"mix: {args.schools} schools × {args.members} members …", flush=True)
            t1 = time.monotonic()
            people = asyncio.run(populate_mix(services[0].base, args.schools, args.members))
            result["mix_setup_seconds"] = time.monotonic() - t1
            path = work / "mix-ceiling.lua"
            heads = mix_logins(services[0].base, people)
            write_mix(services[0].base, people, heads, path, args.mix_requests, seed=99)
            ceiling = run_wrk(
                wrk,
                bare,
                seconds=args.mix_seconds,
                connections=max(args.mix_stages),
                script=BENCH / "wrk_mix.lua",
                script_args=[str(path)],
            )
            result["mix_ceiling"] = asdict(ceiling)
            print(f"  mix driver ceiling (wrk + Lua, bare app): {ceiling.rps:.0f} req/s", flush=True)
            result["mix"] = measure_mix(args, wrk, services, people, work)
        print("statements per request (in process) …", flush=True)
        statements = asyncio.run(count_statements(env, token, found))
    result["statements"] = {k: n for k, (n, _) in statements.items()}
    for name, (n, sql) in statements.items():
        print(f"  {name}: {n}", *(f"      {s}" for s in sql), sep="\n")
    result["load_after"] = os.getloadavg()
    result["seconds"] = time.monotonic() - t0
    return result


# ---------------------------------------------------------------------------------------------- report


def git_head() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--", "app"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return f"{head} (+ uncommitted changes to {len(changed)} file(s) under app/)" if changed else head


def old_data(path: Path = RESULTS) -> dict[str, Any] | None:
    """The figures the current section of RESULTS.md carries (its JSON comment), if any."""
    if not path.exists():
        return None
    text = path.read_text()
    start = text.find(SECTION)
    if start < 0:
        return None
    end = text.find("\n## ", start + len(SECTION))
    block = text[start : end if end >= 0 else len(text)]
    mark = block.find(DATA_MARK)
    if mark < 0:
        return None
    data: dict[str, Any] = json.loads(block[mark + len(DATA_MARK) : block.index(" -->", mark)])
    return data


def fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def report(result: dict[str, Any], args: argparse.Namespace, before: dict[str, Any] | None) -> str:
    found = result["endpoints"]
    keys = [str(w) for w in result["workers"]]
    first, last = keys[0], keys[-1]
    cores = result.get("nproc", os.cpu_count() or 1)
    statements = result["statements"]
    busy = [r["busy"] for e in found.values() for rs in e["rounds"].values() for r in rs]
    command = "python bench/run_http.py " + " ".join(sys.argv[1:])
    order = ", ".join(["bare app", *(f"service with {k} worker(s)" for k in keys)])
    lines = [
        SECTION,
        "",
        f"{result['started']} UTC · git {result['git']} · `{command.strip()}` · "
        f"{platform.platform()} · nproc {os.cpu_count()} · Python {platform.python_version()} · "
        f"{result['wrk']} · PostgreSQL 15 on the same machine. Load average (1/5/15 min) before "
        f"{'/'.join(f'{x:.2f}' for x in result['load_before'])}, after "
        f"{'/'.join(f'{x:.2f}' for x in result['load_after'])}; machine CPU busy during the rounds: median "
        f"{median(busy):.0%}, max {max(busy, default=0):.0%} (wrk, the servers and PostgreSQL included, and "
        f"other sessions' work on this shared machine). Run: {result['seconds'] / 60:.0f} min.",
        "",
        f"`wrk -t1 -c{args.connections} --latency`, {args.rounds} rounds of {args.duration} s per endpoint "
        f"alternating {order} ({args.warmup} s warm-up each), medians; ratio = the service's median over the "
        "bare app's. The bare app "
        '(`bench/bare_app.py`) is one FastAPI catch-all route answering `{"status":"ok"}`, served by the '
        "same uvicorn (uvloop, httptools, access log off) and asked the very same request (path, query, "
        "headers). "
        f"Service: `cdht serve` on `{DATABASE}` (`cdht demo`, `CDHT_ENV=production`), as the demo's "
        f"`{args.user}` on its province {args.province} (Quảng Ngãi: 110 evaluations of 2025); `/healthz` "
        "without a token. CPU µs per request: utime + stime of the server's processes (uvicorn and its "
        "children) + PostgreSQL's backends (`application_name = 'cdht'`: the services' pools; the service "
        "not being measured is idle), from `/proc`, over the round's requests. Statements: one warm request "
        "through the app in process, counted with a `before_cursor_execute` listener like "
        "`tests/api/test_statements.py`.",
        "",
        f"### {'One worker' if first == '1' else f'{first} workers'}"
        f"{' (`--workers 1`)' if result['serve_has_workers'] else ' (no `--workers` option yet)'}",
        "",
    ]
    head = "| endpoint | bare req/s | service req/s | ratio | goal | p50 ms | p95 ms | non-2xx/3xx |"
    head += " CPU µs/req (app + PG) | statements/req |"
    rule = "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"
    if before:
        head += " before: req/s · ratio · CPU µs/req · statements |"
        rule += "---|"
    lines += [head, rule]
    healthz = found.get("/healthz", {}).get(first, {}).get("rps", 0.0)
    for name, e in found.items():
        b, s = e["bare"], e[first]
        ratio = s["rps"] / b["rps"] if b["rps"] else 0.0
        if name in GOAL_ENDPOINTS or name == COMPUTED:
            goal = f"≥ {GOAL_RATIO:.2f}: **{'met' if ratio >= GOAL_RATIO else 'not met'}**"
        elif name.endswith("304"):
            r304 = s["rps"] / healthz if healthz else 0.0
            goal = f"≥ {GOAL_304} × `/healthz`: {r304:.2f}, **{'met' if r304 >= GOAL_304 else 'not met'}**"
        else:
            goal = "(reference)"
        row = (
            f"| `{name}` | {fmt(b['rps'])} | {fmt(s['rps'])} | {ratio:.3f} | {goal} | {s['p50_ms']:.1f} | "
            f"{s['p95_ms']:.1f} | {s['non_2xx_3xx']:.0f} | {fmt(s['app_us'] + s['db_us'])} "
            f"({fmt(s['app_us'])} + {fmt(s['db_us'])}) | {statements.get(name, '–')} |"
        )
        if before:
            old = before["endpoints"].get(name)
            if old:
                o, ob = old[str(before["workers"][0])], old["bare"]
                row += (
                    f" {fmt(o['rps'])} · {o['rps'] / ob['rps'] if ob['rps'] else 0:.3f} · "
                    f"{fmt(o['app_us'] + o['db_us'])} · {before['statements'].get(name, '–')} |"
                )
            else:
                row += " – |"
        lines.append(row)
    after = found.get("/aggregates/progress 304", {}).get("status_after")
    if after is not None:
        lines += [
            "",
            f"`/aggregates/progress 304`: `If-None-Match` with the ETag of a first GET "
            f"(`{result['etag']}`); the same request after its rounds answered {after}"
            + (
                " (every round's answers were 304s)."
                if after == 304
                else " (the ETag moved during the rounds)."
            ),
        ]
    if COMPUTED in found:
        lines += [
            "",
            f"`{COMPUTED}`: the same request to a third service, one worker started with "
            "`CDHT_KEPT_BODIES_MB=0`, in its own alternation with the bare app: every answer computed "
            "(counts, plans, the body), where `/aggregates/progress` answers a read whose change counters "
            "have not moved with the bytes an earlier read computed (`core/conditional.KeptBodies`, kept "
            "for `CDHT_CACHE_MAX_AGE_SECONDS` at most), as a dashboard polled between changes is.",
        ]
    if not result["etag"]:
        lines += [
            "",
            "`/aggregates/progress` answers no `ETag` yet: the `304` poll is not measured (no ETag yet).",
        ]
    if len(keys) > 1:
        lines += [
            "",
            f"### {last} workers against {first}",
            "",
            f"The same rounds (`cdht serve --workers {last}`, in the same alternation). Ceiling here: the "
            f"most {last} workers could give over {first} on this machine's {cores} cores, by the CPU each "
            f"request cost in the {last}-worker rounds, wrk's own included: "
            f"min({last} × the {first}-worker rate, {cores} s of CPU per second / CPU per request), over the "
            f"{first}-worker rate (other tenants' load not counted, so a real ceiling is lower).",
            "",
            f"| endpoint | {first} worker(s) req/s | {last} workers req/s | ratio | goal ≥ {GOAL_WORKERS} | "
            f"ceiling here | {last} workers vs bare | p95 ms | CPU µs/req (app + PG + wrk) |",
            "|---|---:|---:|---:|---|---:|---:|---:|---:|",
        ]
        for name, e in found.items():
            if last not in e:  # measured on one worker only (the computed progress)
                continue
            s1, s2, b = e[first], e[last], e["bare"]
            ratio = s2["rps"] / s1["rps"] if s1["rps"] else 0.0
            goal = f"**{'met' if ratio >= GOAL_WORKERS else 'not met'}**" if name in GOAL_ENDPOINTS else "–"
            cpu = s2["app_us"] + s2["db_us"] + s2.get("wrk_us", 0.0)
            most = min(int(last) / int(first) * s1["rps"], cores * 1e6 / cpu) if cpu else 0.0
            ceiling = most / s1["rps"] if s1["rps"] else 0.0
            lines.append(
                f"| `{name}` | {fmt(s1['rps'])} | {fmt(s2['rps'])} | {ratio:.2f} | {goal} | {ceiling:.2f} | "
                f"{s2['rps'] / b['rps'] if b['rps'] else 0:.3f} | {s2['p95_ms']:.1f} | "
                f"{fmt(s2['app_us'] + s2['db_us'])} + {fmt(s2.get('wrk_us', 0.0))} |"
            )
    if "mix" in result:
        ceiling = result.get("mix_ceiling", {})
        kinds = result["mix"]["kinds"]
        total = sum(kinds.values()) or 1
        lines += [
            "",
            "### The December mix through wrk",
            "",
            f"`bench/december_setup.py`'s {args.schools} schools × {args.members} members under Ninh Bình "
            f"(members since 1 January {YEAR}; setup {result.get('mix_setup_seconds', 0):.0f} s), then "
            f"`bench/wrk_mix.lua` cycling through {args.mix_requests} requests: "
            + ", ".join(f"{k} {100 * n / total:.0f} %" for k, n in kinds.items())
            + " (the Python driver's shares with submit, complete and return folded into the actor's write; "
            f"see the script's docstring). {args.mix_seconds} s per stage, each stage on each worker count "
            "in turn, `wrk -t1 -cN`. The driver's own ceiling, the same kind of list against the bare app at "
            f"{max(args.mix_stages)} connections: **{fmt(ceiling.get('rps', 0))} req/s** (p95 "
            f"{ceiling.get('p95_ms', 0):.1f} ms), so wrk is not what limits the service. Errors: 5xx, 400, "
            "401 and socket errors; refused: 403/404/409/422 (a versioned write that raced another, or a "
            "version the list had not seen yet).",
            "",
            "| workers | connections | req/s | p50 ms | p95 ms | errors | refused | CPU µs/req (app + PG) | "
            "machine busy |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for workers, stages in result["mix"]["stages"].items():
            for st in stages:
                lines.append(
                    f"| {workers} | {st['connections']} | {fmt(st['rps'], 1)} | {st['p50_ms']:.1f} | "
                    f"{st['p95_ms']:.1f} | {st['errors']} | {st['refused']} | "
                    f"{fmt(st['app_us'] + st['db_us'])} ({fmt(st['app_us'])} + {fmt(st['db_us'])}) | "
                    f"{st['busy']:.0%} |"
                )
        lines.append("")
        for workers, stages in result["mix"]["stages"].items():
            good = [st for st in stages if st["p95_ms"] <= GOAL_MIX_P95 and st["errors"] == 0]
            best = max(good, key=lambda st: st["rps"]) if good else None
            verdict = (
                f"**{fmt(best['rps'], 1)} req/s** at {best['connections']} connections (p95 "
                f"{best['p95_ms']:.1f} ms): goal ≥ {GOAL_MIX_RPS:.0f}, "
                f"**{'met' if best['rps'] >= GOAL_MIX_RPS else 'not met'}**"
                if best
                else "no stage held p95 ≤ 200 ms with 0 errors"
            )
            lines.append(
                f"- {workers} worker(s): best with p95 ≤ {GOAL_MIX_P95:.0f} ms and 0 errors: {verdict}."
            )
    if before:
        lines += ["", f"Before: the run of {before['started']} UTC, git {before['git']}."]
    slim = json.loads(json.dumps(result))
    for e in slim["endpoints"].values():
        e.pop("rounds", None)
    lines += ["", DATA_MARK + json.dumps(slim, separators=(",", ":"), ensure_ascii=False) + " -->", ""]
    return "\n".join(lines)


def write_results(section: str, path: Path = RESULTS, title: str = SECTION) -> None:
    """Replace (or append) a runner's section (``title``, this one's by default), keeping every other
    section of the file."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    lines = old.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == title), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "\n".join([*lines[:start], *section.rstrip("\n").splitlines(), "", *lines[end:]]).rstrip("\n")
        new += "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new)
    tmp.replace(path)


def _numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per round (10)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per endpoint (3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed seconds before an endpoint (1)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    parser.add_argument("--workers", type=_numbers, default=[1, 2], help="worker counts, e.g. 1,2 (1,2)")
    parser.add_argument("--user", default="quangngai.admin", help="demo user (quangngai.admin)")
    parser.add_argument("--password", default="demo-password")
    parser.add_argument("--province", default="51", help="the province's code (51, Quảng Ngãi)")
    parser.add_argument(
        "--port", type=int, default=0, help="bare app's port, the service's is the next (free)"
    )
    parser.add_argument("--no-mix", action="store_true", help="leave out the December mix")
    parser.add_argument("--mix-stages", type=_numbers, default=[4, 8, 16, 32], help="connections (4,8,16,32)")
    parser.add_argument("--mix-seconds", type=int, default=15, help="seconds per mix stage (15)")
    parser.add_argument("--mix-requests", type=int, default=2000, help="requests in the mix's list (2000)")
    parser.add_argument("--schools", type=int, default=8)
    parser.add_argument("--members", type=int, default=25)
    parser.add_argument("--write-results", action="store_true", help=f"write the section of {RESULTS.name}")
    parser.add_argument(
        "--before-from-results",
        action="store_true",
        help="show the figures of the section now in RESULTS.md as 'before' (run on the earlier code)",
    )
    args = parser.parse_args()
    before = old_data() if args.before_from_results else None
    if args.before_from_results and before is None:
        parser.error(f"no figures of this runner in {RESULTS.name} to compare with")

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with tempfile.TemporaryDirectory(prefix="cdht-http-") as tmp:
        try:
            result = run(args, Path(tmp))
        finally:
            with contextlib.suppress(Exception):
                psql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    result["git"] = git_head()
    section = report(result, args, before)
    print()
    print(section)
    if args.write_results:
        write_results(section)
        print(f"results written to {RESULTS.relative_to(ROOT)} ({SECTION[3:]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
