"""Measure the aggregates (issues 4 and 11) against a database loaded by ``bench/generate_national.py``.

    .venv/bin/python bench/run_aggregates.py                    # 200 requests per endpoint and level
    .venv/bin/python bench/run_aggregates.py --requests 20 --writes 20              # smoke (small dataset)

In one run:

1. Creates the administrator (``cdht create-admin``) and starts the real server (uvicorn, one worker,
   127.0.0.1 only, ``CDHT_ENV=development``) on the bench database; stops it at the end.
2. Reads, over HTTP with one keep-alive client: ``GET /api/v1/aggregates/progress`` (the registry's 12
   metrics) and ``/breakdown`` (metrics ``staff_recognised_pct`` and ``learning_families_pct``) for 2025 at
   the nation, the largest province and the largest commune; ``--warmup`` requests, then ``--requests``
   timed ones each; p50 / p95 client-side wall time. The served numbers must add up: each breakdown's rows
   to the unit's progress, and the nation's progress (every metric) to the sum of its provinces'.
3. The naive recount (``app.aggregates.naive.naive_recount``, pure Python over a few queries) for the
   same units, in-process: one warm-up then ``--naive-reps`` timed ones; every numerator and denominator
   of all 12 metrics served must equal the naive one (else the run fails); for the breakdowns, the rows of
   ``--naive-children`` children (the largest two and random others; 0 = all) likewise. The naive recount
   works out the whole country's members of recognised collectives on every call, whatever the unit (one or
   two queries per recognised household, clan, village and unit): the runner computes those sets once with
   the app's own functions and reuses them while the database does not change (``NaiveMemo``), and reports
   a naive recount as the memoised time plus that. At the nation ``naive_recount`` fails on PostgreSQL (it
   binds the subtree's 98,188 unit ids as query parameters): recorded, and the ratio is taken at the
   province and commune.
4. The write path, in-process through the real services with an admin subject and one unit of work
   (transaction) per step: submit → review (the declared digital level confirmed) → complete review → a
   recognition decision listing that one evaluation, for ``--writes`` fresh complete evaluations (new
   people, every indicator self-scored with evidence rows) in the largest commune's units; after each, one
   generated household of its province with no evaluation of the year (the commune's own first) through the
   same steps as a learning family, recognised by a decision of its commune (its members are recounted).
   Once with the counters kept live and once with the counter maintenance patched out (the write-path hooks
   of ``app.aggregates.counters`` — ``recognition_changed``, ``collective_recognition_changed``,
   ``evaluation_created``, ``people_counted``, ``collectives_counted``, ``units_counted`` — to a no-op, and
   ``recognitions_changed`` to run the change alone), the two modes alternating in blocks so machine noise
   hits both. The live counters must hold exactly the live run's recognitions; the no-op run's decisions
   are then revoked with the hooks still off (nothing was counted for them), and a full
   ``counters.rebuild`` must equal the live counters cell by cell (``--naive-after``: and the commune a
   fresh naive recount).
5. Writes the section "Aggregates at national scale" of ``bench/RESULTS.md`` (others' sections are kept)
   when the dataset has 5,000,000 people or more, or with ``--write-results``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.aggregates import counters
from app.aggregates import naive as aggregates_naive
from app.aggregates.metrics import METRICS
from app.aggregates.naive import naive_recount
from app.auth.models import User
from app.auth.scope import Subject
from app.core.db import make_engine, make_sessionmaker, unit_of_work
from app.criteria import service as criteria_service
from app.criteria.models import CriteriaSet, Indicator
from app.decisions import service as decisions
from app.decisions.schemas import DecisionCreate
from app.demo_evaluations import Committee
from app.demo_evaluations import committee as demo_committee
from app.evaluations import review, service
from app.evaluations.models import DigitalLevel, Evaluation, Evidence, Score, Status, Title
from app.evaluations.schemas import Review, ScoreInput
from app.orgs.models import OrgUnit
from app.people.models import Membership, Person

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/cdht_bench"
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Aggregates at national scale"
YEAR = 2025
METRIC = "staff_recognised_pct"
# Breakdowns timed at each level: the personal metric of issue 4, and a collective one (households).
BREAKDOWN_METRICS = (METRIC, "learning_families_pct")
FAMILY_METRIC = "learning_families_pct"
ADMIN, ADMIN_PASSWORD = "bench-admin", "bench-admin-password-2025"
GOAL_P95_MS, GOAL_SPEEDUP, GOAL_WRITE_RATIO = 50.0, 100.0, 2.0
FULL_SCALE = (
    5_000_000  # people (run_reorganisation.py: evaluations): below this a run only prints its section
)
NOISY = 0.70  # a series during which the machine was busier than this shared it with other sessions
CRITERIA_CODES = {"resident": "KHVN-324-II", "worker": "KHVN-324-III", "staff": "KHVN-324-IV"}
GROUP_OF_KIND = {"village": "resident", "enterprise": "worker"}  # anything else: staff


class BenchFailure(RuntimeError):
    """The numbers served differ from the naive recount (or the server misbehaved)."""


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


# ---------------------------------------------------------------------------------------------- machine


def cpu_times() -> tuple[int, int]:
    """(total, idle) jiffies of all CPUs since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values), values[3] + values[4]


def busy_since(start: tuple[int, int]) -> float:
    total, idle = cpu_times()
    elapsed = total - start[0]
    return 1 - (idle - start[1]) / elapsed if elapsed else 0.0


def wait_quiet(args: argparse.Namespace) -> float:
    """Other sessions share this machine: wait (up to ``--quiet-wait`` s) until at most
    ``--quiet-busy`` of its CPU is busy over 3 s; return the idle share last seen."""
    deadline = time.monotonic() + args.quiet_wait
    while True:
        start = cpu_times()
        time.sleep(3 if args.quiet_wait else 0.5)
        busy = busy_since(start)
        if busy <= args.quiet_busy or time.monotonic() >= deadline:
            return 1 - busy
        print(f"  machine busy ({busy:.0%} CPU), waiting …", flush=True)
        time.sleep(7)


# ---------------------------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(env: dict[str, str], port: int) -> Iterator[tuple[str, int]]:
    """uvicorn serving ``app.main:create_app`` on 127.0.0.1:port (one process) until the block ends: its
    base URL and process id."""
    command = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(command, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise BenchFailure(f"the server exited with {proc.returncode}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise BenchFailure("the server did not become ready in 60 s")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def server(env: dict[str, str], port: int) -> Iterator[str]:
    """uvicorn serving ``app.main:create_app`` on 127.0.0.1:port until the block ends."""
    with served(env, port) as (base, _):
        yield base


def login(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": ADMIN, "password": ADMIN_PASSWORD},
    )
    if response.status_code != 200:
        raise BenchFailure(f"login failed: {response.status_code} {response.text}")
    client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"


@dataclass
class Series:
    endpoint: str
    level: str
    unit_id: int
    times_ms: list[float]
    body: dict[str, Any]
    idle_before: float = 1.0  # share of the machine's CPU idle just before the series
    busy_during: float = 0.0  # share of the machine's CPU busy during the series (ours included)
    metric: str = METRIC  # a breakdown's metric

    @property
    def p50(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        return percentile(self.times_ms, 95)


def measure(
    client: httpx.Client, path: str, params: dict[str, Any], warmup: int, n: int
) -> tuple[list[float], Any]:
    login(client)  # a fresh access token per series (they live 10 minutes)
    body = None
    for _ in range(warmup):
        client.get(path, params=params)
    times: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(path, params=params)
        times.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise BenchFailure(f"GET {path} {params}: {response.status_code} {response.text[:300]}")
        body = response.json()
    return times, body


# ---------------------------------------------------------------------------------------------- naive


@dataclass
class Naive:
    level: str
    unit_id: int
    progress_s: list[float]  # timed recounts with the country-wide collective sets memoised
    failed: str | None = None  # why naive_recount could not run for this unit
    breakdown_s: float = 0.0  # the checked children's recounts (memoised sets)
    children: int = 0
    checked: int = 0  # children checked against the naive recount (the others: by the sums)

    @property
    def warm_s(self) -> float | None:
        return statistics.median(self.progress_s) if self.progress_s else None


NAIVE_SETS = ("_naive_in_collectives", "_naive_under_recognised")


class NaiveMemo:
    """``naive.naive_counts`` works out, on every call and for the whole country, who belongs to a
    recognised learning family, clan, community or unit: a query or two per recognised household, clan,
    village and unit (``_naive_in_collectives``, ``_naive_under_recognised``), whatever the unit asked.
    While the database does not change (the read check), those sets are computed once per (year, title)
    by the app's own functions and reused; ``seconds`` is what computing them took, which every naive
    recount that is not memoised pays on top of its own work."""

    def __init__(self) -> None:
        self.cache: dict[tuple[Any, ...], Any] = {}
        self.seconds = 0.0
        self.cold: tuple[int, float] | None = None  # (unit, seconds) of the recount that computed them
        self._depth = 0

    @contextmanager
    def active(self) -> Iterator[None]:
        saved = {name: getattr(aggregates_naive, name) for name in NAIVE_SETS}

        def memoised(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def call(session: AsyncSession, *args: Any) -> Any:
                key = (name, *args)
                if key not in self.cache:
                    self._depth += 1
                    t0 = time.perf_counter()
                    try:
                        self.cache[key] = await fn(session, *args)
                    finally:
                        self._depth -= 1
                    if not self._depth:  # nested calls are inside their caller's time
                        self.seconds += time.perf_counter() - t0
                return self.cache[key]

            return call

        for name, fn in saved.items():
            setattr(aggregates_naive, name, memoised(name, fn))
        try:
            yield
        finally:
            for name, fn in saved.items():
                setattr(aggregates_naive, name, fn)


async def naive_once(
    sm: async_sessionmaker[AsyncSession], unit_id: int
) -> tuple[float, dict[str, tuple[int, int]]]:
    async with sm() as session:
        t0 = time.perf_counter()
        numbers = await naive_recount(session, unit_id, YEAR)
        return time.perf_counter() - t0, numbers


def check_progress(level: str, body: dict[str, Any], naive: dict[str, tuple[int, int]]) -> None:
    served = {m["metric"]: (m["numerator"], m["denominator"]) for m in body["metrics"]}
    wanted = {m.code for m in METRICS}
    if set(served) != wanted or set(naive) != wanted:
        raise BenchFailure(
            f"progress at the {level}: the registry's {len(wanted)} metrics, served {sorted(served)}, "
            f"naive {sorted(naive)}"
        )
    if served != naive:
        raise BenchFailure(f"progress at the {level} differs from the naive recount:\n{served}\n{naive}")


# ---------------------------------------------------------------------------------------------- writes


PERSONAL_STEPS = ("submit", "review", "complete_review", "decision")
FAMILY_STEPS = ("family_submit", "family_review", "family_complete_review", "family_decision")


@dataclass
class WriteRun:
    mode: str  # "live" or "no-op"
    steps: dict[str, list[float]] = field(
        default_factory=lambda: {step: [] for step in (*PERSONAL_STEPS, *FAMILY_STEPS)}
    )
    decisions: list[int] = field(default_factory=list)  # the decisions it signed
    members: int = 0  # people in the households it recognised

    def total(self, step: str | None = None) -> float:
        if step:
            return sum(self.steps[step])
        return sum(sum(v) for v in self.steps.values())

    @property
    def n(self) -> int:
        return len(self.steps["submit"])

    @property
    def families(self) -> int:
        return len(self.steps["family_submit"])


async def _noop(*_: object, **__: object) -> None:
    return None


async def _change_only(
    session: AsyncSession, _evaluations: object, _sign: int, change: Callable[[], Awaitable[None]]
) -> None:
    """``counters.recognitions_changed`` without the counters: the change itself still runs."""
    await change()
    await session.flush()


# The write-path hooks of app.aggregates.counters (recognitions_changed wraps the change it counts).
NOOP_HOOKS = (
    "recognition_changed",
    "collective_recognition_changed",
    "evaluation_created",
    "people_counted",
    "collectives_counted",
    "units_counted",
)
WRAPPING_HOOKS = {"recognitions_changed": _change_only}


@contextmanager
def counters_disabled() -> Iterator[None]:
    """The write-path hooks of ``app.aggregates.counters`` patched to do nothing (the services look them
    up on the module at call time; so do the hooks that call each other)."""
    replaced = {**dict.fromkeys(NOOP_HOOKS, _noop), **WRAPPING_HOOKS}
    saved = {name: getattr(counters, name) for name in replaced}
    for name, hook in replaced.items():
        setattr(counters, name, hook)
    try:
        yield
    finally:
        for name, hook in saved.items():
            setattr(counters, name, hook)


def _halves(k: int, digital: bool) -> int:
    """9 points on every indicator, the digital ones 8 or 6 by turns: a pass."""
    return (16 if k % 2 else 12) if digital else 18


LEVEL_CYCLE = (DigitalLevel.PROFICIENT, DigitalLevel.BASIC, DigitalLevel.NONE)


@dataclass
class Fresh:
    evaluation_id: int
    unit_id: int
    indicators: list[tuple[int, bool]]  # (indicator id, digital)
    level: DigitalLevel = DigitalLevel.BASIC  # declared by the person, confirmed by the assessor


async def make_fresh(
    sm: async_sessionmaker[AsyncSession], units: list[tuple[int, str]], n: int, tag: str
) -> list[Fresh]:
    """``n`` new people in ``units`` (round robin), each with a complete draft 2025 evaluation: every
    indicator self-scored, one evidence row each, a declared digital level; each person gets an open
    membership (since always), and they are counted, evaluations included, by ``counters.people_counted``."""
    out: list[Fresh] = []
    async with unit_of_work(sm) as session:
        sets: dict[str, tuple[int, list[tuple[int, bool]]]] = {}
        for group, code in CRITERIA_CODES.items():
            set_id = await session.scalar(
                select(CriteriaSet.id).where(CriteriaSet.code == code).order_by(CriteriaSet.version.desc())
            )
            rows = await session.execute(
                select(Indicator.id, Indicator.digital)
                .where(Indicator.set_id == set_id)
                .order_by(Indicator.number)
            )
            sets[group] = (int(set_id or 0), [(i, d) for i, d in rows.all()])
        person_ids: list[int] = []
        for k in range(n):
            unit_id, kind = units[k % len(units)]
            group = GROUP_OF_KIND.get(kind, "staff")
            person = Person(full_name=f"Bench {tag} {k}", org_unit_id=unit_id, group=group, birth_year=1985)
            session.add(person)
            await session.flush()
            session.add(Membership(person_id=person.id, org_unit_id=unit_id, group=group))
            person_ids.append(person.id)
            set_id, indicators = sets[group]
            level = LEVEL_CYCLE[k % len(LEVEL_CYCLE)]
            evaluation = Evaluation(
                person_id=person.id,
                org_unit_id=unit_id,
                year=YEAR,
                criteria_set_id=set_id,
                status=Status.DRAFT,
                declared_digital_level=level.value,
            )
            session.add(evaluation)
            await session.flush()
            for j, (indicator_id, digital) in enumerate(indicators):
                session.add(
                    Score(
                        evaluation_id=evaluation.id,
                        indicator_id=indicator_id,
                        self_halves=_halves(k, digital),
                    )
                )
                session.add(_evidence(evaluation.id, indicator_id, j))
            out.append(Fresh(evaluation.id, unit_id, indicators, level))
        await session.flush()
        await counters.people_counted(session, person_ids, +1)
    return out


def _evidence(evaluation_id: int, indicator_id: int, j: int) -> Evidence:
    return Evidence(
        evaluation_id=evaluation_id,
        indicator_id=indicator_id,
        filename=f"minh-chung-{j + 1}.pdf",
        storage_key=f"bench-{uuid.uuid4().hex}",
        size=1024,
        sha256="0" * 64,
        content_type="application/pdf",
    )


@dataclass
class Family:
    evaluation_id: int
    household_id: int
    commune_id: int  # where the decision is signed
    members: int
    indicators: list[tuple[int, int]]  # (indicator id, maximum in half-points)


# Households of the province placed in villages, with no evaluation of the year: the commune's first.
FAMILIES_SQL = """
    SELECT c.id, c.org_unit_id, v.parent_id,
           (SELECT count(*) FROM household_members m WHERE m.household_id = c.id AND m.valid_to IS NULL)
    FROM collectives c
    JOIN org_units v ON v.id = c.org_unit_id AND v.kind = 'village'
    JOIN org_unit_closure k ON k.descendant_id = v.id AND k.ancestor_id = :province
    WHERE c.kind = 'household' AND c.valid_to IS NULL
      AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.collective_id = c.id AND e.year = :year)
    ORDER BY v.parent_id <> :commune, c.id
    LIMIT :n
"""


async def make_families(
    sm: async_sessionmaker[AsyncSession], commune: int, province: int, n: int
) -> list[Family]:
    """``n`` generated households (members with their own evaluations and memberships) that have no
    evaluation of the year, each given a complete draft learning-family evaluation (the title's criteria
    set, every indicator self-scored at its maximum, one evidence row each), counted by
    ``counters.evaluation_created``."""
    out: list[Family] = []
    async with unit_of_work(sm) as session:
        rows = await session.execute(
            text(FAMILIES_SQL), {"province": province, "commune": commune, "year": YEAR, "n": n}
        )
        for household_id, unit_id, commune_id, members in rows.all():
            criteria_set = await criteria_service.set_for_title(session, Title.LEARNING_FAMILY.value, unit_id)
            indicators = [
                (int(i), int(m) * 2)
                for i, m in (
                    await session.execute(
                        select(Indicator.id, Indicator.max_points)
                        .where(Indicator.set_id == criteria_set.id)
                        .order_by(Indicator.number)
                    )
                ).all()
            ]
            evaluation = Evaluation(
                title=Title.LEARNING_FAMILY.value,
                collective_id=household_id,
                org_unit_id=unit_id,
                year=YEAR,
                criteria_set_id=criteria_set.id,
                status=Status.DRAFT,
            )
            session.add(evaluation)
            await session.flush()
            for j, (indicator_id, most) in enumerate(indicators):
                session.add(Score(evaluation_id=evaluation.id, indicator_id=indicator_id, self_halves=most))
                session.add(_evidence(evaluation.id, indicator_id, j))
            await session.flush()
            await counters.evaluation_created(session, evaluation)
            out.append(Family(evaluation.id, household_id, int(commune_id), int(members), indicators))
    return out


async def write_path(
    sm: async_sessionmaker[AsyncSession],
    subject: Subject,
    items: list[Fresh],
    run: WriteRun,
    tag: str,
    families: Sequence[Family] = (),
) -> None:
    """Each fresh evaluation through submit → review → complete review → its own decision; after the
    k-th, the k-th household's learning-family evaluation through the same steps, recognised by a decision
    of its commune (its members are recounted). Three users do the three duties (separation of duties):
    the demo's committee, acting with ``subject``'s reach."""
    async with unit_of_work(sm) as session:
        duties = await demo_committee(session, subject)

    async def step(name: str, fn: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        t0 = time.perf_counter()
        async with unit_of_work(sm) as session:
            result = await fn(session)
        run.steps[name].append(time.perf_counter() - t0)
        return result

    for k, item in enumerate(items):
        eid = item.evaluation_id
        read = await step("submit", lambda s, e=eid: service.submit(s, duties.clerk, e, None))
        scores = [ScoreInput(indicator_id=i, score=Decimal(_halves(k, d)) / 2) for i, d in item.indicators]
        read = await step(
            "review",
            lambda s, e=eid, v=read.version, sc=scores, lv=item.level: review.review(
                s, duties.assessor, e, Review(version=v, scores=sc, digital_level=lv), None
            ),
        )
        read = await step(
            "complete_review",
            lambda s, e=eid, v=read.version: review.complete_review(s, duties.assessor, e, v),
        )
        if not (read.result and read.result.passed):
            raise BenchFailure(f"evaluation {eid} did not pass: {read.result}")
        body = DecisionCreate(
            org_unit_id=item.unit_id,
            year=YEAR,
            number=f"BENCH-{tag}-{k}",
            signed_on=date(YEAR, 12, 30),
            evaluation_ids=[eid],
        )
        made = await step("decision", lambda s, b=body: decisions.create(s, duties.approver, b))
        run.decisions.append(made.id)
        if k < len(families):
            await family_path(step, duties, families[k], run, f"{tag}-{k}")


async def family_path(
    step: Callable[[str, Callable[[AsyncSession], Awaitable[Any]]], Awaitable[Any]],
    duties: Committee,
    family: Family,
    run: WriteRun,
    tag: str,
) -> None:
    eid = family.evaluation_id
    read = await step("family_submit", lambda s: service.submit(s, duties.clerk, eid, None))
    scores = [ScoreInput(indicator_id=i, score=Decimal(h) / 2) for i, h in family.indicators]
    read = await step(
        "family_review",
        lambda s, v=read.version: review.review(
            s, duties.assessor, eid, Review(version=v, scores=scores), None
        ),
    )
    read = await step(
        "family_complete_review",
        lambda s, v=read.version: review.complete_review(s, duties.assessor, eid, v),
    )
    if not (read.result and read.result.passed):
        raise BenchFailure(f"household evaluation {eid} did not pass: {read.result}")
    body = DecisionCreate(
        org_unit_id=family.commune_id,
        year=YEAR,
        number=f"BENCH-GĐHT-{tag}",
        signed_on=date(YEAR, 12, 30),
        evaluation_ids=[eid],
    )
    made = await step("family_decision", lambda s: decisions.create(s, duties.approver, body))
    run.decisions.append(made.id)
    run.members += family.members


# ---------------------------------------------------------------------------------------------- helpers


async def by_status(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT status, count(*) FROM evaluations WHERE year = :y GROUP BY 1 ORDER BY 1"),
            {"y": YEAR},
        )
        return {str(k): int(v) for k, v in rows.all()}


async def by_title(engine: AsyncEngine) -> dict[str, dict[str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT title, status, count(*) FROM evaluations WHERE year = :y GROUP BY 1, 2 ORDER BY 1, 2"
            ),
            {"y": YEAR},
        )
        out: dict[str, dict[str, int]] = {}
        for title, status, n in rows.all():
            out.setdefault(str(title), {})[str(status)] = int(n)
        return out


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


@asynccontextmanager
async def engine_for(url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url)  # pooled like the server's; no statement timeout (naive recounts are slow)
    try:
        yield engine
    finally:
        await engine.dispose()


def machine() -> dict[str, str]:
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    free = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "free": free,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def fmt_ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def fmt_s(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def fmt_long(value: float) -> str:
    return (
        fmt_s(value) if value < 600 else f"{value / 60:.0f} min" if value < 7200 else f"{value / 3600:.1f} h"
    )


# ---------------------------------------------------------------------------------------------- main


async def inspect(url: str, report: dict[str, Any]) -> dict[str, int]:
    """The generator's summary, the server version and the units to measure (level → id)."""
    async with engine_for(url) as engine:
        report["postgres"] = await scalar(engine, "SELECT version()")
        settings = ("shared_buffers", "work_mem", "max_parallel_workers_per_gather", "jit")
        report["pg_settings"] = ", ".join(
            [f"{name} {await scalar(engine, f'SHOW {name}')}" for name in settings]
        )
        comment = await scalar(
            engine,
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n",
            n=urlsplit(url).path.lstrip("/"),
        )
        report["generator"] = json.loads(comment or "{}")
        biggest = """
            SELECT u.id FROM org_units u JOIN aggregate_counts a ON a.org_unit_id = u.id
            WHERE u.kind = :kind AND u.valid_to IS NULL AND a.kind = 'people'
            GROUP BY u.id ORDER BY sum(a.n) DESC, u.id LIMIT 1
        """
        levels = {
            "nation": await scalar(
                engine, "SELECT id FROM org_units WHERE parent_id IS NULL ORDER BY id LIMIT 1"
            ),
            "province": await scalar(engine, biggest, kind="province"),
            "commune": await scalar(engine, biggest, kind="commune"),
        }
        report["units"] = {
            level: {
                "id": unit_id,
                "name": await scalar(engine, "SELECT name FROM org_units WHERE id = :i", i=unit_id),
            }
            for level, unit_id in levels.items()
        }
        return {level: int(unit_id) for level, unit_id in levels.items()}


def measure_reads(client: httpx.Client, levels: dict[str, int], args: argparse.Namespace) -> list[Series]:
    series: list[Series] = []
    for level, unit_id in levels.items():
        for endpoint, metric in (("progress", METRIC), *(("breakdown", m) for m in BREAKDOWN_METRICS)):
            extra = {"metric": metric} if endpoint == "breakdown" else {}
            params = {"org_unit_id": unit_id, "year": YEAR, **extra}
            idle = wait_quiet(args)
            start = cpu_times()
            times, body = measure(
                client, f"/api/v1/aggregates/{endpoint}", params, args.warmup, args.requests
            )
            s = Series(endpoint, level, unit_id, times, body, idle, busy_since(start), metric)
            series.append(s)
            label = endpoint if endpoint == "progress" else f"breakdown {metric}"
            print(
                f"{label:38} {level:8} p50 {s.p50:7.1f} ms  p95 {s.p95:7.1f} ms  "
                f"(CPU idle before {s.idle_before:.0%}, busy during {s.busy_during:.0%})",
                flush=True,
            )
    return series


def _sample(items: list[dict[str, Any]], n: int, seed: int) -> list[int]:
    """All children (``n`` 0), else the two with the largest denominators and random others."""
    ids = [int(i["org_unit_id"]) for i in items]
    if not n or len(ids) <= n:
        return ids
    largest = [int(i["org_unit_id"]) for i in sorted(items, key=lambda i: -i["denominator"])[:2]]
    rest = [i for i in ids if i not in largest]
    return largest + sorted(random.Random(seed).sample(rest, n - len(largest)))


def check_sums(client: httpx.Client, levels: dict[str, int], series: list[Series]) -> list[str]:
    """Served numbers that must add up: each breakdown's rows to the unit's progress for its metric (the
    units measured hold no people or households of their own, only their children do), and the nation's
    progress to the sum of its provinces' (all metrics)."""
    done: list[str] = []
    for s in series:
        if s.endpoint != "breakdown":
            continue
        progress = next(p for p in series if p.level == s.level and p.endpoint == "progress")
        whole = _by_metric(progress.body["metrics"])[s.metric]
        summed = (
            sum(i["numerator"] for i in s.body["items"]),
            sum(i["denominator"] for i in s.body["items"]),
        )
        if summed != whole:
            raise BenchFailure(
                f"breakdown {s.metric} at the {s.level}: rows add up to {summed}, progress {whole}"
            )
        done.append(f"{s.metric} at the {s.level}")
    nation = next(s for s in series if s.level == "nation" and s.endpoint == "breakdown")
    totals: dict[str, list[int]] = {}
    for item in nation.body["items"]:
        for code, (num, den) in _by_metric(served_progress(client, item["org_unit_id"])).items():
            sums = totals.setdefault(code, [0, 0])
            sums[0] += num
            sums[1] += den
    whole = _by_metric(
        next(s for s in series if s.level == "nation" and s.endpoint == "progress").body["metrics"]
    )
    if {k: tuple(v) for k, v in totals.items()} != whole:
        raise BenchFailure(f"the nation's progress {whole} is not the sum of its provinces' {totals}")
    done.append(
        f"all {len(whole)} metrics of the nation = the sum of its {len(nation.body['items'])} provinces"
    )
    return done


async def check_naive(
    sm: async_sessionmaker[AsyncSession],
    levels: dict[str, int],
    series: list[Series],
    args: argparse.Namespace,
    memo: NaiveMemo,
) -> list[Naive]:
    """Time the naive recount of each level (and of the checked breakdown children) and fail unless every
    number served equals it. The first recount that runs computes the country-wide collective sets (timed
    apart, ``memo.cold``); every timed one after it reuses them (``NaiveMemo``)."""

    async def recount(unit_id: int) -> tuple[float, dict[str, tuple[int, int]]]:
        if not memo.cache:
            seconds, _ = await naive_once(sm, unit_id)
            memo.cold = (unit_id, seconds)
            print(f"naive     first recount (unit {unit_id}, cold): {seconds:.1f} s", flush=True)
        return await naive_once(sm, unit_id)

    naive: list[Naive] = []
    with memo.active():
        for level, unit_id in levels.items():
            record = Naive(level, unit_id, [])
            naive.append(record)
            try:
                seconds, numbers = await recount(unit_id)  # a warm-up
            except DBAPIError as error:
                record.failed = str(error.orig).splitlines()[0][:160]
                print(f"naive     {level:8} FAILED: {record.failed}", flush=True)
            else:
                for _ in range(args.naive_reps):
                    seconds, numbers = await naive_once(sm, unit_id)
                    record.progress_s.append(seconds)
                progress = next(s for s in series if s.level == level and s.endpoint == "progress")
                check_progress(level, progress.body, numbers)
            breakdowns = [s for s in series if s.level == level and s.endpoint == "breakdown"]
            items = breakdowns[0].body["items"]
            record.children = len(items)
            chosen = _sample(items, args.naive_children, unit_id)
            for child in chosen:
                seconds, numbers = await recount(child)
                record.breakdown_s += seconds
                for b in breakdowns:
                    item = next(i for i in b.body["items"] if i["org_unit_id"] == child)
                    if (item["numerator"], item["denominator"]) != numbers[b.metric]:
                        raise BenchFailure(
                            f"breakdown {b.metric} at the {level}: child {child} serves "
                            f"{item['numerator']}/{item['denominator']}, naive {numbers[b.metric]}"
                        )
            record.checked = len(chosen)
            print(
                f"naive     {level:8} progress "
                + (f"{statistics.median(record.progress_s):.3f} s" if record.progress_s else "—")
                + f", {record.checked} of {record.children} children {record.breakdown_s:.1f} s; "
                f"country-wide sets {memo.seconds:.1f} s: numbers equal",
                flush=True,
            )
    return naive


async def _ancestor(sm: async_sessionmaker[AsyncSession], unit_id: int, kind: str) -> int:
    async with sm() as session:
        found = await session.scalar(
            text(
                "SELECT c.ancestor_id FROM org_unit_closure c JOIN org_units u ON u.id = c.ancestor_id "
                "WHERE c.descendant_id = :u AND u.kind = :k"
            ),
            {"u": unit_id, "k": kind},
        )
    return int(found or unit_id)


async def rebuild_equals_live(sm: async_sessionmaker[AsyncSession]) -> tuple[float, int]:
    """Rebuild every counter (``counters.rebuild``, committed) and count the cells where the rebuild
    differs from the counters the write path left (fails, rolled back, if any)."""
    cells = "org_unit_id, year, kind, grp, level, born, n"
    async with unit_of_work(sm) as session:
        await session.execute(text("SET LOCAL work_mem = '512MB'"))
        await session.execute(
            text(
                "CREATE TEMP TABLE bench_live ON COMMIT DROP AS "
                f"SELECT {cells} FROM aggregate_counts WHERE n <> 0"
            )
        )
        t0 = time.perf_counter()
        await counters.rebuild(session)
        seconds = time.perf_counter() - t0
        differing = await session.scalar(
            text(
                f"SELECT count(*) FROM ((SELECT {cells} FROM aggregate_counts WHERE n <> 0 EXCEPT ALL "
                f"SELECT {cells} FROM bench_live) UNION ALL (SELECT {cells} FROM bench_live EXCEPT ALL "
                f"SELECT {cells} FROM aggregate_counts WHERE n <> 0)) d"
            )
        )
        if differing:
            sample = (
                await session.execute(
                    text(
                        f"SELECT 'rebuild', {cells} FROM (SELECT {cells} FROM aggregate_counts WHERE n <> 0 "
                        f"EXCEPT ALL SELECT {cells} FROM bench_live) a UNION ALL SELECT 'live', {cells} FROM "
                        f"(SELECT {cells} FROM bench_live EXCEPT ALL SELECT {cells} FROM aggregate_counts "
                        "WHERE n <> 0) b ORDER BY 2, 3, 4, 5, 6, 7, 1 LIMIT 20"
                    )
                )
            ).all()
            raise BenchFailure(f"{differing} counter cells differ from a rebuild; first: {sample}")
    return seconds, 0


async def measure_writes(
    sm: async_sessionmaker[AsyncSession], client: httpx.Client, commune: int, args: argparse.Namespace
) -> tuple[dict[str, WriteRun], float]:
    """Both modes of the write path in alternating blocks; then the no-op run's decisions revoked (with
    the hooks still off, so that the counters owe nothing), the counters rebuilt and compared cell by cell
    with those the live run kept, and the commune's numbers checked."""
    async with sm() as session:
        rows = await session.execute(
            select(OrgUnit.id, OrgUnit.kind).where(OrgUnit.parent_id == commune).order_by(OrgUnit.id)
        )
        units = [(int(i), str(k)) for i, k in rows.all()] or [(commune, "commune")]
        admin_id = await session.scalar(select(User.id).where(User.username == ADMIN))
    province = await _ancestor(sm, commune, "province")
    subject = Subject(user_id=int(admin_id or 0), username=ADMIN, is_admin=True)
    before = {u: _by_metric(await asyncio.to_thread(served_progress, client, u)) for u in (commune, province)}
    runs = {"live": WriteRun("live"), "no-op": WriteRun("no-op")}
    block = max(1, min(args.block, args.writes))
    tag = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    done = 0
    while done < args.writes:
        size = min(block, args.writes - done)
        for mode in ("live", "no-op") if (done // block) % 2 == 0 else ("no-op", "live"):
            label = f"{tag}-{mode}-{done}"
            fresh = await make_fresh(sm, units, size, label)
            families = await make_families(sm, commune, province, size)
            if mode == "live":
                await write_path(sm, subject, fresh, runs[mode], label, families)
            else:
                with counters_disabled():
                    await write_path(sm, subject, fresh, runs[mode], label, families)
        done += size
    live = {u: _by_metric(await asyncio.to_thread(served_progress, client, u)) for u in (commune, province)}
    # The live counters hold exactly the live run's recognitions: people at the commune, households at
    # the province (the no-op run's are missing).
    recognised = {k: v[commune]["digital_skills_pct"][1] for k, v in (("before", before), ("live", live))}
    families = {k: v[province][FAMILY_METRIC][0] for k, v in (("before", before), ("live", live))}
    if recognised["live"] != recognised["before"] + runs["live"].n or families["live"] != (
        families["before"] + runs["live"].families
    ):
        raise BenchFailure(
            f"live counters: recognised people at the commune {recognised}, learning families at the "
            f"province {families}; {runs['live'].n} people and {runs['live'].families} households recognised"
        )
    with counters_disabled():  # nothing was counted for them: withdrawing them needs no counting either
        for decision_id in runs["no-op"].decisions:
            async with unit_of_work(sm) as session:
                await decisions.revoke(session, subject, decision_id, "Bench: the no-op run is withdrawn.")
    rebuild_s, _ = await rebuild_equals_live(sm)
    after = _by_metric(await asyncio.to_thread(served_progress, client, commune))
    if after != live[commune]:
        raise BenchFailure(f"the commune after the rebuild: {after}, live {live[commune]}")
    if getattr(args, "naive_after", True):
        check_progress(
            "commune after the write path",
            {"metrics": await asyncio.to_thread(served_progress, client, commune)},
            (await naive_once(sm, commune))[1],
        )
    print(
        f"write path: live {runs['live'].total():.2f} s, no-op {runs['no-op'].total():.2f} s for "
        f"{args.writes} evaluations and {runs['live'].families} / {runs['no-op'].families} households each; "
        f"counters rebuilt in {rebuild_s:.1f} s, equal to the live ones cell by cell",
        flush=True,
    )
    return runs, rebuild_s


async def measure_db(
    args: argparse.Namespace, report: dict[str, Any], levels: dict[str, int], client: httpx.Client
) -> None:
    async with engine_for(args.url) as engine:
        sm = make_sessionmaker(engine)
        report["sums"] = await asyncio.to_thread(check_sums, client, levels, report["series"])
        report["naive_idle"] = await asyncio.to_thread(wait_quiet, args)
        memo = NaiveMemo()
        start = cpu_times()
        report["naive"] = await check_naive(sm, levels, report["series"], args, memo)
        report["naive_busy"] = busy_since(start)
        report["naive_sets_s"] = memo.seconds
        report["naive_cold"] = memo.cold
        report["writes_idle"] = await asyncio.to_thread(wait_quiet, args)
        start = cpu_times()
        report["writes"], report["rebuild_s"] = await measure_writes(sm, client, levels["commune"], args)
        report["writes_busy"] = busy_since(start)
        count = "SELECT count(*) FROM "
        report["sizes"] = {
            "org_units": await scalar(engine, count + "org_units"),
            "closure_rows": await scalar(engine, count + "org_unit_closure"),
            "people": await scalar(engine, count + "people"),
            "evaluations": await scalar(engine, count + "evaluations"),
            "evaluations_by_status": await by_status(engine),
            "evaluations_by_title": await by_title(engine),
            "households": await scalar(engine, count + "collectives WHERE kind = 'household'"),
            "clans": await scalar(engine, count + "collectives WHERE kind = 'clan'"),
            "decisions": await scalar(engine, count + "recognition_decisions"),
            "revoked_decisions": await scalar(
                engine, count + "recognition_decisions WHERE status = 'revoked'"
            ),
            "plans": await scalar(engine, count + "plans"),
            "targets": await scalar(engine, count + "plan_targets"),
            "attendance": await scalar(engine, count + "training_attendance"),
            "counter_rows": await scalar(engine, count + "aggregate_counts"),
            "counter_rows_nation": await scalar(
                engine, count + "aggregate_counts WHERE org_unit_id = :u", u=levels["nation"]
            ),
            "counters_size": await scalar(
                engine, "SELECT pg_size_pretty(pg_total_relation_size('aggregate_counts'))"
            ),
            "database_size": await scalar(
                engine, "SELECT pg_size_pretty(pg_database_size(current_database()))"
            ),
        }


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": os.getloadavg(),
        "args": args,
    }
    with tempfile.TemporaryDirectory(prefix="cdht-bench-") as var:  # the server's var dir, removed after
        env = server_env(args.url, var)
        levels = asyncio.run(inspect(args.url, report))
        report["full_scale"] = report["generator"].get("sizes", {}).get("people", 0) >= FULL_SCALE
        if args.quiet_wait is None:
            args.quiet_wait = 180.0 if report["full_scale"] else 0.0
        if args.naive_reps is None:
            args.naive_reps = 1 if report["full_scale"] else 3
        if args.naive_children is None:
            args.naive_children = 4 if report["full_scale"] else 6
        if args.naive_after is None:
            args.naive_after = not report["full_scale"]
        with (
            server(env, args.port or _free_port()) as base,
            httpx.Client(base_url=base, timeout=120) as client,
        ):
            report["series"] = measure_reads(client, levels, args)
            asyncio.run(measure_db(args, report, levels, client))
    report["load_after"] = os.getloadavg()
    report["seconds"] = time.perf_counter() - started
    return report


def _by_metric(metrics: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    return {m["metric"]: (m["numerator"], m["denominator"]) for m in metrics}


def served_progress(client: httpx.Client, unit_id: int) -> list[dict[str, Any]]:
    login(client)
    response = client.get("/api/v1/aggregates/progress", params={"org_unit_id": unit_id, "year": YEAR})
    if response.status_code != 200:
        raise BenchFailure(f"progress: {response.status_code} {response.text[:300]}")
    return list(response.json()["metrics"])


# ---------------------------------------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _dataset(report: dict[str, Any]) -> str:
    gen = report["generator"]
    sizes = report["sizes"]
    g = gen.get("sizes", {})
    titles = sizes["evaluations_by_title"]
    personal = titles.get("learning_citizen", {})
    collective = ", ".join(
        f"{TITLE_NAMES.get(t, t)} {sum(v.values()):,} "
        f"({v.get('recognised', 0) * 100 / (sum(v.values()) or 1):.0f} % "
        "recognised)"
        for t, v in titles.items()
        if t != "learning_citizen"
    )
    levels = g.get("digital_levels", {}).get("result", {})
    graded = sum(n for k, n in levels.items() if k != "None") or 1
    return (
        "**Dataset** (after the run; the write path adds its own people and evaluations): "
        f"{sizes['org_units']:,} units ({_kinds(gen)}), {sizes['closure_rows']:,} closure rows; "
        f"{sizes['people']:,} people (residents born 1935–2025, {g.get('residents_under_15', 0):,} of them "
        f"under 15, with no evaluation of their own; pupils 2007–2016, staff 1965–2002, workers 1968–2006); "
        f"{sizes['households']:,} households of 1–6 people (everyone belongs to one: "
        f"{g.get('household_members', 0):,} open memberships), {sizes['clans']:,} clans of 5–60 households "
        f"of a commune ({g.get('clan_households', 0):,} households in one); {sizes['evaluations']:,} "
        f"evaluations for 2025: {sum(personal.values()):,} personal ({_statuses(personal)}; digital level "
        "of the completed reviews, declared by the person and confirmed or changed by the assessor: "
        + ", ".join(f"{k} {levels.get(k, 0) * 100 / graded:.0f} %" for k in ("none", "basic", "proficient"))
        + f") and collective: {collective}; {sizes['decisions']:,} recognition decisions "
        f"({sizes['revoked_decisions']} revoked, the write path's no-op run included); "
        f"{sizes['attendance']:,} training attendances; {sizes['plans']} plans with {sizes['targets']} "
        f"targets; **{sizes['counter_rows']:,} counter rows** ({sizes['counter_rows_nation']:,} for the "
        f"nation; {sizes['counters_size']} with the index); database {sizes['database_size']}."
    )


TITLE_NAMES = {
    "learning_family": "households",
    "learning_clan": "clans",
    "learning_community": "villages",
    "learning_unit": "schools, agencies and enterprises",
}


def render(report: dict[str, Any], command: str) -> str:
    gen = report["generator"]
    m = report["machine"]
    args = report["args"]
    series: list[Series] = report["series"]
    naive: list[Naive] = report["naive"]
    runs: dict[str, WriteRun] = report["writes"]
    loops = report["naive_sets_s"]
    lines = [
        SECTION,
        "",
        f"Run of {report['started']} (UTC), {report['seconds']:.0f} s; generator run of "
        f"{gen.get('generated_at', '?')}, {gen.get('seconds', '?')} s.",
        "",
        "**Machine.** "
        f"{m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}, Python {m['python']}; "
        f"{report['postgres'].split(' on ')[0]} ({report['pg_settings']}); server, database and client on "
        "the same machine. Other sessions share it (their test suites and benchmarks): load average "
        f"{report['load_before'][0]:.2f} before, {report['load_after'][0]:.2f} after the run; before each "
        f"measured phase the runner waits (up to {args.quiet_wait:.0f} s) for the machine to be "
        f"≤ {args.quiet_busy:.0%} busy, and records how idle it was and how busy it got.",
        "",
        "```",
        m["free"],
        "```",
        "",
        "**Generation** "
        f"({gen.get('seconds', '?')} s in all): "
        + "; ".join(f"{step} {sec:.1f} s" for step, sec in gen.get("steps", {}).items())
        + ".",
        "",
        "**Commands** (from the repository root):",
        "",
        "```",
        f".venv/bin/python {gen.get('command', 'bench/generate_national.py')}",
        command,
        "```",
        "",
        _dataset(report),
        "",
        "Units measured: "
        + "; ".join(f"{lvl} = {u['name']} (id {u['id']})" for lvl, u in report["units"].items())
        + ". Province and commune are the ones with the most people.",
        "",
        f"### Reads over HTTP (p50 / p95 of {len(series[0].times_ms)} requests after "
        f"{args.warmup} warm-up, goal p95 ≤ {GOAL_P95_MS:.0f} ms)",
        "",
        "| endpoint | level | rows | p50 ms | p95 ms | max ms | goal | CPU idle before / busy during |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in series:
        name = "progress (12 metrics)" if s.endpoint == "progress" else f"breakdown `{s.metric}`"
        lines.append(
            f"| {name} | {s.level} | {_rows(s)} | {fmt_ms(s.p50)} | {fmt_ms(s.p95)} | "
            f"{fmt_ms(max(s.times_ms))} | {verdict(s.p95 <= GOAL_P95_MS)} | "
            f"{s.idle_before:.0%} / {s.busy_during:.0%} |"
        )
    lines += [
        "",
        "Client-side wall time of each request (httpx, keep-alive, one request at a time); the server is "
        "one uvicorn worker. Alone on the machine, one series keeps about one core busy (client, server "
        "and PostgreSQL take turns), i.e. ~50 % of the two; more than that during a series means other "
        "sessions were running.",
        "",
        f"### Naive recount (`naive.naive_recount`, in-process), goal ≥ {GOAL_SPEEDUP:.0f}× at the nation",
        "",
        _naive_text(report),
        "",
        "| level | naive progress (memoised sets, median of "
        f"{args.naive_reps}) | + country-wide sets = one naive recount | vs progress p50 | "
        "breakdown children "
        "checked | naive breakdown, every child (est.) | vs breakdown p50 | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in naive:
        p = next(s for s in series if s.level == n.level and s.endpoint == "progress")
        b = next(s for s in series if s.level == n.level and s.endpoint == "breakdown")
        per_child = n.breakdown_s / n.checked if n.checked else 0.0
        whole_b = (per_child + loops) * n.children
        goal = "—"
        if n.failed:
            first = f"fails: {n.failed}"
            equiv = ratio = "—"
            if n.level == "nation":
                goal = "not measurable (fails); see the province"
        else:
            w = n.warm_s or 0.0
            one = w + loops
            first = fmt_s(w)
            equiv = fmt_long(one)
            ratio = f"{one * 1000 / p.p50:,.0f}×"
            if n.level == "nation":
                goal = verdict(one * 1000 / p.p50 >= GOAL_SPEEDUP)
        lines.append(
            f"| {n.level} | {first} | {equiv} | {ratio} | {n.checked} of {n.children} "
            f"({fmt_s(per_child)} each, memoised) | {fmt_long(whole_b)} | "
            f"{whole_b * 1000 / b.p50:,.0f}× | {goal} |"
        )
    live, noop = runs["live"], runs["no-op"]
    ratio = live.total() / noop.total()
    lines += [
        "",
        f"### Write path (in-process services, one transaction per step: {live.n} personal evaluations and "
        f"{live.families} households per mode), goal ≤ {GOAL_WRITE_RATIO:.0f}× the time with no "
        "aggregates kept",
        "",
        f"Machine CPU idle before: {report['writes_idle']:.0%}; busy during: {report['writes_busy']:.0%}. "
        f"The modes alternate in blocks of {args.block}. Each fresh person (in the commune's units, a "
        "declared digital level confirmed by the review) gets their own decision (the most counter work per "
        "recognition); after each, one generated household of the province (the commune's first) that had no "
        "evaluation goes through the same steps as a learning family, recognised by a decision of its "
        f"commune: its members ({live.members} in the live run, {noop.members} in the no-op run) are "
        "recounted (`counters.people_counted` −1 before, +1 after, with `collective_recognition_changed`). "
        "No-op = the write-path hooks `counters."
        + "`, `counters.".join(NOOP_HOOKS)
        + "` patched to do nothing and `counters.recognitions_changed` to run the change alone.",
        "",
        "| step | counters live: median ms | no-op: median ms | live total s | no-op total s | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for step in live.steps:
        a, b = live.total(step), noop.total(step)
        if not live.steps[step] or not noop.steps[step]:
            continue
        lines.append(
            f"| {step} | {statistics.median(live.steps[step]) * 1000:.1f} | "
            f"{statistics.median(noop.steps[step]) * 1000:.1f} | {a:.2f} | {b:.2f} | {a / b:.2f}× |"
        )
    lines.append(
        f"| **whole path** | {live.total() / live.n * 1000:.1f} per evaluation and household | "
        f"{noop.total() / noop.n * 1000:.1f} per evaluation and household | {live.total():.2f} | "
        f"{noop.total():.2f} | **{ratio:.2f}×** ({verdict(ratio <= GOAL_WRITE_RATIO)}) |"
    )
    personal = [s for s in PERSONAL_STEPS]
    p_live, p_noop = sum(live.total(s) for s in personal), sum(noop.total(s) for s in personal)
    lines += [
        "",
        f"Personal steps alone: {p_live:.2f} s live vs {p_noop:.2f} s no-op ({p_live / p_noop:.2f}×).",
        "",
        "Checks: before any rebuild, the live counters held exactly the live run's recognitions (recognised "
        "people at the commune, learning families at the province; the no-op run's were missing, as "
        "expected); the no-op run's decisions were then revoked with the hooks still off (nothing was "
        "counted for them), and a full `counters.rebuild` "
        f"({report['rebuild_s']:.1f} s) equals the counters the live run kept, cell by cell"
        + (
            "; the commune's progress equals a fresh naive recount."
            if args.naive_after
            else " (the commune's progress was not recounted naively again: the read check did that)."
        ),
        "",
        "### Reading",
        "",
        reading(report),
        "",
        NOTES,
        "",
    ]
    return "\n".join(lines)


def _naive_text(report: dict[str, Any]) -> str:
    naive: list[Naive] = report["naive"]
    args = report["args"]
    loops = report["naive_sets_s"]
    failed = [n for n in naive if n.failed]
    checked = sum(n.checked for n in naive)
    children = sum(n.children for n in naive)
    parts = [
        "Every numerator and denominator served (all 12 metrics of progress, at every level where the naive "
        f"recount runs; the breakdown rows of {checked} of the {children} children, the largest and random "
        + ("ones" if args.naive_children else "ones: all")
        + ") equals the naive recount. The served numbers also add up: "
        + "; ".join(report["sums"])
        + ".",
        f"`naive_counts` computes, on every call, the whole country's members of recognised families, clans, "
        "communities and learning units with one or two queries per recognised household, clan, village and "
        f"unit, whatever the unit asked: {fmt_s(loops)} here. The runner computes those sets once with the "
        "app's own functions and reuses them while nothing changes (`NaiveMemo`), so that the checks fit in "
        "the run; a real naive recount is the memoised time plus those sets.",
        f"CPU idle before: {report['naive_idle']:.0%}; busy during: {report['naive_busy']:.0%}.",
    ]
    if report.get("naive_cold"):
        unit_id, seconds = report["naive_cold"]
        parts.append(
            f"The first naive recount that ran (unit {unit_id}, nothing memoised) took {fmt_s(seconds)} "
            "from start to end."
        )
    if failed:
        parts.append(
            "At "
            + ", ".join(f"the {n.level}" for n in failed)
            + " `naive_recount` fails on PostgreSQL: it binds the subtree's unit ids as parameters of an "
            "`IN (…)` (98,188 at the nation; asyncpg takes at most 32,767), so the nation's numbers are "
            "checked "
            "as the sum of its provinces' (above), a sample of provinces against the naive recount, and "
            "the ratio is measured at the province and commune instead."
        )
    return " ".join(parts)


NOTES = """\
Found in `app/` while measuring issue 11 (reported, not changed here):
(1) `repository.naive_recount` fails on PostgreSQL for a subtree of more than 32,767 units (the nation):
`naive_counts` and `_naive_collective_subjects` bind the subtree's unit ids as the parameters of an
`IN (…)`, over asyncpg's limit ("the number of query arguments cannot exceed 32767").
(2) Its cost does not depend on the unit: every call loads the whole country's recognitions, evaluations,
trainings and collective titles, and `_naive_in_collectives` / `_naive_under_recognised` walk every
recognised household, clan, village and learning unit of the country with one to three queries each
(~14 minutes at 5,000,000 people), so a commune costs as much as a province and a breakdown's naive check
is hours; the runner memoises those sets to stay within the run.
(3) The write-path hooks cost time that does not depend on the data: `counters.people_counted` and
`recognition_changed` build large UNION statements with fresh `aliased()` entities on every call; in a
rolled-back probe here a household's members' recount (−1 and +1) took ~40–150 ms, of which 3–45 ms in
PostgreSQL (planning ~6–9 ms per statement, execution 1–2 ms) and the rest building the statements in
Python. That is what puts the household decision at +130 ms and the whole path over 2×; building each
statement once (expanding bind parameters for the ids) would remove most of it.

Earlier changes made in `app/aggregates` while measuring issue 4 (no schema change):
(1) `counters.rebuild` rendered the `''` of `COALESCE(digital_level, '')` inline (two bound parameters are
not the same GROUP BY expression on PostgreSQL) and writes all counter rows in primary-key order; (2) a
breakdown passes its children's ids and reads only the cells of the metric's groups; (3) a breakdown reads the
plans at or above the unit once and the children's own plans. Before them the province breakdown measured
p50 38 ms / p95 132 ms on a busier machine."""


def _rows(series: Series) -> int:
    return len(series.body.get("items", series.body.get("metrics", [])))


def _kinds(gen: dict[str, Any]) -> str:
    kinds = gen.get("sizes", {}).get("units_by_kind", {})
    return ", ".join(f"{k} {n:,}" for k, n in kinds.items())


def _statuses(by_status: dict[str, int]) -> str:
    total = sum(by_status.values()) or 1
    return ", ".join(
        f"{k} {v * 100 / total:.1f} %" for k, v in sorted(by_status.items(), key=lambda kv: -kv[1])
    )


def reading(report: dict[str, Any]) -> str:
    series: list[Series] = report["series"]
    naive: list[Naive] = report["naive"]
    runs: dict[str, WriteRun] = report["writes"]
    loops = report["naive_sets_s"]
    worst = max(series, key=lambda s: s.p95)
    live, noop = runs["live"], runs["no-op"]
    ratio = live.total() / noop.total()
    decision_extra = (live.total("decision") - noop.total("decision")) / live.n * 1000
    family_extra = (
        (live.total("family_decision") - noop.total("family_decision")) / live.families * 1000
        if live.families and noop.families
        else 0.0
    )
    reads_ok = all(s.p95 <= GOAL_P95_MS for s in series)
    noisy = [f"{s.endpoint} at the {s.level}" for s in series if s.busy_during > NOISY]
    contention = (
        f" {len(noisy)} of the {len(series)} series ({', '.join(noisy)}) ran while other sessions kept the "
        "CPU busy, so their tails include waiting for a core."
        if noisy
        else ""
    )
    measured = [n for n in naive if not n.failed and n.warm_s is not None]
    speed = []
    for n in measured:
        p = next(s for s in series if s.level == n.level and s.endpoint == "progress")
        speed.append(
            f"{(n.warm_s or 0) + loops:.0f} s at the {n.level} "
            f"({((n.warm_s or 0) + loops) * 1000 / p.p50:,.0f}×)"
        )
    nation = next((n for n in naive if n.level == "nation"), None)
    parts = [
        f"Reads {'meet' if reads_ok else 'miss'} the 50 ms goal: the worst p95 is {fmt_ms(worst.p95)} ms "
        f"({worst.endpoint} at the {worst.level}). A request reads the counter rows of one unit "
        "(progress) or "
        "of each child (breakdown) plus the plans above, so its cost does not grow with the "
        f"{report['sizes']['evaluations']:,} evaluations underneath; the birth-year key makes a unit's cells "
        "more numerous than before (one per birth year after 1990 for each kind, group and level), which is "
        f"what a breakdown of hundreds of children pays.{contention}",
        (
            "The naive recount cannot run at the nation (it fails, see above), so the 100× goal is judged at "
            "the province, the largest subtree where it runs: "
            if nation is not None and nation.failed
            else "Naive recount: "
        )
        + "; ".join(speed)
        + (
            f" — far above 100×; most of it ({loops:.0f} s) is the country-wide loop over recognised "
            "collectives, which every naive call pays whatever the unit."
        ),
        f"On the write path, a personal decision costs {decision_extra:+.1f} ms with the counters kept and "
        f"a household's learning-family decision {family_extra:+.1f} ms (its members recounted as people: "
        "every fact about them, in each ancestor's row); the whole path, submit → review → complete review "
        f"→ decision for a person and for a household, is {ratio:.2f}× the time with no aggregates kept "
        f"({'within' if ratio <= GOAL_WRITE_RATIO else 'over'} the 2× goal).",
    ]
    return " ".join(parts)


def server_env(url: str, var: str) -> dict[str, str]:
    """The environment of a served bench database (a fresh key, ``var`` as its var dir), with the bench
    admin created in it (``cdht create-admin``; kept if it exists)."""
    env = {
        **os.environ,
        "CDHT_DATABASE_URL": url,
        "CDHT_ENV": "development",
        "CDHT_SECRET_KEY": secrets.token_urlsafe(48),
        "CDHT_VAR_DIR": var,
    }
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "create-admin",
        "--username",
        ADMIN,
    ]
    created = subprocess.run(
        command,
        env={**env, "CDHT_ADMIN_PASSWORD": ADMIN_PASSWORD},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise BenchFailure(f"cdht create-admin failed: {created.stderr}")
    return env


def write_results(section: str, path: Path = RESULTS, title: str = SECTION) -> None:
    """Replace (or append) the section headed ``title``, keeping every other section of the file."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    lines = old.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == title), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = (
            "\n".join([*lines[:start], *section.rstrip("\n").splitlines(), "", *lines[end:]]).rstrip("\n")
            + "\n"
        )
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"bench database (default {DEFAULT_URL})")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint and level")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests before each series")
    parser.add_argument(
        "--naive-reps",
        type=int,
        default=None,
        help="timed naive recounts per level after a warm-up (default 3, 1 at full scale)",
    )
    parser.add_argument(
        "--naive-children",
        type=int,
        default=None,
        help="breakdown children checked against the naive recount per level, 0 = all (default 6, 4 at "
        "full scale: each recount loads the whole country's evaluations); every row is also checked by "
        "the sums",
    )
    parser.add_argument(
        "--naive-after",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after the write path, check the commune against a fresh naive recount too (default: below "
        "full scale; the counters are compared with a rebuild cell by cell in any case)",
    )
    parser.add_argument(
        "--writes", type=int, default=200, help="evaluations through the write path, per mode"
    )
    parser.add_argument("--block", type=int, default=25, help="evaluations per block (modes alternate)")
    parser.add_argument("--port", type=int, default=0, help="server port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="before each measured phase, wait up to this many seconds for the machine to be quiet "
        "(default 180 at full scale, else 0)",
    )
    parser.add_argument(
        "--quiet-busy", type=float, default=0.25, help="quiet = at most this share of all CPUs busy (0.25)"
    )
    parser.add_argument("--no-results", action="store_true", help=f"do not write {RESULTS.name}")
    parser.add_argument(
        "--write-results",
        action="store_true",
        help=f"write {RESULTS.name} even for a dataset under {FULL_SCALE:,} people (a smoke run's "
        "figures would otherwise replace the recorded ones)",
    )
    args = parser.parse_args()
    report = run(args)
    command = ".venv/bin/python bench/run_aggregates.py " + " ".join(sys.argv[1:])
    section = render(report, command.strip())
    if args.no_results or not (report["full_scale"] or args.write_results):
        print(section)
        if not args.no_results:
            print(f"(dataset under {FULL_SCALE:,} people: {RESULTS.name} left as it is)")
    else:
        write_results(section)
        print(f"results written to {RESULTS.relative_to(ROOT)} ({SECTION[3:]})")


if __name__ == "__main__":
    main()
