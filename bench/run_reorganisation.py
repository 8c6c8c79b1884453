"""The 2025 reorganisation at national scale, on a database loaded by ``bench/generate_national.py``.

    .venv/bin/python bench/run_reorganisation.py                      # on cdht_bench (5,000,000 people)
    .venv/bin/python bench/run_reorganisation.py --requests 20 --writes 20 \\
        --url postgresql://postgres@127.0.0.1:5432/cdht_bench_smoke  # smoke (small dataset)

One run (the reorganisation is applied once: regenerate the database to run it again):

1. Creates the administrator (``cdht create-admin``) and starts the real server (uvicorn, one worker, as
   ``run_aggregates.py`` does).
2. Before: the numbers served (numerator and denominator of every metric) for 2024 and 2025 of every unit,
   computed in batches the way ``app.aggregates.service.progress`` computes them (``through_time.sources``,
   ``repository.count``, ``metrics.total``); reads over HTTP (``progress`` and ``breakdown`` for 2025 at the
   nation, the province that absorbs the others and one commune of an abolished district; p50 / p95).
3. Through the service (``app.reorganisations.service.apply``, an admin subject, one transaction),
   effective ``--effective`` (2025-07-01): two provinces merged into a third (``--merge`` into ``--into``)
   and every district dissolved into its province. First as a dry run (rolled back), then for real; wall
   times, the summary, and where the time went (the service's steps and the functions they call, timed by
   wrapping them).
4. After: every number served over HTTP for the nation, the absorbing province, the two merged provinces,
   one abolished district and the commune, for 2024, 2025 and the current year, must equal
   ``naive_recount``; every unit alive before must serve the same 2024 numbers as before, and the same 2025
   numbers except the absorbing province (the ended ones now count 2025 on their last day, the day before
   ``--effective``, which holds the same people); the counters kept by the reorganisation must equal a full
   ``counters.rebuild`` (year by year, people as running sums; in a transaction rolled back); the same reads
   again; then the write path of ``run_aggregates.py`` (live counters vs no-op, the commune's units).
5. Writes the section "The 2025 reorganisation at national scale" of ``bench/RESULTS.md`` (full scale
   only, unless ``--write-results``).

The run fails (exit status 1, ``BenchFailure``) when a number differs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import run_aggregates as ra
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.aggregates import counters, metrics, through_time
from app.aggregates import repository as agg_repo
from app.aggregates.metrics import METRICS
from app.aggregates.naive import naive_recount
from app.aggregates.schemas import Basis
from app.auth.models import User
from app.auth.scope import Subject
from app.core.dates import today
from app.core.db import make_sessionmaker
from app.orgs import history
from app.orgs import repository as orgs_repo
from app.orgs.models import OrgUnit
from app.people import repository as people_repo
from app.reorganisations import service as reorg
from app.reorganisations.schemas import ReorganisationCreate

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = ra.DEFAULT_URL
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## The 2025 reorganisation at national scale"
EFFECTIVE = date(2025, 7, 1)
INTO = "Ninh Bình"
MERGED = ("Hưng Yên", "Hải Phòng")
PAST, EFFECTIVE_YEAR = 2024, 2025
GOAL_P95_MS, GOAL_WRITE_RATIO = ra.GOAL_P95_MS, ra.GOAL_WRITE_RATIO
FULL_SCALE = ra.FULL_SCALE
# The run of 2026-12-02T16:04:33 (UTC), before commit 739b02c (recount_units over the ended unit's own
# people, one-year counter reads summed in SQL, light unit rows for breakdowns, ANALYZE before a rebuild).
BEFORE_FIXES = (
    "**Before the fixes** (the run of 2026-12-02T16:04:33 UTC, same dataset and commands, before commit "
    "739b02c): reorganisation 77.28 s applied (56.11 s of it in `counters.recount_units`), 73.70 s dry run; "
    "reads after, p95 ms: progress nation 20.8 / province 19.5 / commune 21.8, breakdown nation 34.3 / "
    "province 351 (665 children; p50 162; goal missed) / commune 38.6; write path 1.23×; generation 473 s "
    "(finished by hand: the rebuild had no statistics), `counters.rebuild` 122.3 s; rebuild comparison "
    "skipped."
)
BATCH = 2000
BenchFailure = ra.BenchFailure
Numbers = dict[str, tuple[int, int]]


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------- numbers


async def served_batch(session: AsyncSession, unit_ids: list[int], year: int) -> dict[int, Numbers]:
    """(numerator, denominator) of every metric of each unit for ``year``, as ``service.progress`` computes
    them (same sources, same counter read, same sums), many units per read."""
    kinds = frozenset().union(*(m.kinds for m in METRICS))
    out: dict[int, Numbers] = {}
    for start in range(0, len(unit_ids), BATCH):
        ids = unit_ids[start : start + BATCH]
        units = await through_time.lives(session, ids)
        sources = await through_time.sources(session, [units[i] for i in ids], [year], Basis.AS_WAS)
        tally = await agg_repo.count(session, sources.unit_ids(), year, year, kinds)
        for unit_id in ids:
            cells, _ = sources.cells(tally, unit_id, year)
            out[unit_id] = {
                m.code: (metrics.total(m.count_numerator, cells), metrics.total(m.count_denominator, cells))
                for m in METRICS
            }
    return out


async def all_served(
    sm: async_sessionmaker[AsyncSession], ids: list[int], years: list[int]
) -> dict[int, dict[int, Numbers]]:
    async with sm() as session:
        return {year: await served_batch(session, ids, year) for year in years}


def served_http(client: httpx.Client, unit_id: int, year: int) -> Numbers:
    ra.login(client)
    response = client.get("/api/v1/aggregates/progress", params={"org_unit_id": unit_id, "year": year})
    if response.status_code != 200:
        raise BenchFailure(f"progress {unit_id} {year}: {response.status_code} {response.text[:300]}")
    return {m["metric"]: (m["numerator"], m["denominator"]) for m in response.json()["metrics"]}


def diff(before: dict[int, Numbers], after: dict[int, Numbers]) -> list[int]:
    return sorted(u for u, numbers in before.items() if after.get(u) != numbers)


# ---------------------------------------------------------------------------------------------- timing


class Timer:
    """Wall time and calls of the functions the reorganisation runs through (wrapped module attributes;
    times nest: ``history.move`` includes ``counters.subtree_moved`` and ``orgs.move_subtree``)."""

    TARGETS: tuple[tuple[Any, str, str], ...] = (
        (reorg.Applier, "apply", "Applier.apply (one step)"),
        (reorg.Applier, "settled", "Applier.settled (history.last_change)"),
        (reorg.Applier, "end", "Applier.end (one ended unit, its children moved first)"),
        (history, "move", "history.move (one child re-hung)"),
        (counters, "subtree_moved", "counters.subtree_moved"),
        (orgs_repo, "move_subtree", "orgs.repository.move_subtree (today's closure)"),
        (orgs_repo, "is_in_subtree", "orgs.repository.is_in_subtree"),
        (history, "end", "history.end (succession, recount, re-hang)"),
        (counters, "recount_units", "counters.recount_units (the ended unit's own cells)"),
        (counters, "people_counted", "counters.people_counted"),
        (people_repo, "people_placed_in", "people.repository.people_placed_in"),
        (people_repo, "move_memberships", "people.repository.move_memberships"),
        (reorg, "_move_roles", "_move_roles"),
        (reorg, "_covering_unit", "_covering_unit"),
        (reorg.Applier, "log", "Applier.log (audit rows)"),
    )

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.slowest: dict[str, float] = defaultdict(float)
        self.saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> Timer:
        for owner, name, label in self.TARGETS:
            original = getattr(owner, name)
            self.saved.append((owner, name, original))
            setattr(owner, name, self._wrap(original, label))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)
        self.saved.clear()

    def _wrap(self, fn: Callable[..., Awaitable[Any]], label: str) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(fn)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - t0
                self.seconds[label] += elapsed
                self.calls[label] += 1
                self.slowest[label] = max(self.slowest[label], elapsed)

        return timed

    def rows(self) -> list[tuple[str, int, float, float]]:
        return [
            (label, self.calls[label], self.seconds[label], self.slowest[label])
            for _, _, label in self.TARGETS
            if self.calls.get(label)
        ]


# ---------------------------------------------------------------------------------------------- setup


async def inspect(
    sm: async_sessionmaker[AsyncSession], args: argparse.Namespace, report: dict[str, Any]
) -> dict[str, Any]:
    async with sm() as session:

        async def one(sql: str, **params: Any) -> Any:
            return (await session.execute(text(sql), params)).scalar()

        report["postgres"] = await one("SELECT version()")
        report["pg_settings"] = ", ".join(
            [
                f"{name} {await one(f'SHOW {name}')}"
                for name in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather", "jit")
            ]
        )
        comment = await one(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n",
            n=urlsplit(args.url).path.lstrip("/"),
        )
        report["generator"] = json.loads(comment or "{}")
        if await one("SELECT count(*) FROM reorganisations"):
            raise SystemExit("a reorganisation was applied to this database already: regenerate it first")

        async def province(name: str) -> OrgUnit:
            unit = await session.scalar(
                select(OrgUnit).where(OrgUnit.kind == "province", OrgUnit.name.like(f"% {name}"))
            )
            if unit is None:
                raise SystemExit(f"no province named {name!r}")
            return unit

        into = await province(args.into)
        merged = [await province(name) for name in args.merge]
        districts = list(
            (
                await session.execute(
                    select(OrgUnit.id, OrgUnit.name, OrgUnit.parent_id)
                    .where(OrgUnit.kind == "district", OrgUnit.valid_to.is_(None))
                    .order_by(OrgUnit.id)
                )
            ).all()
        )
        if not districts:
            raise SystemExit("no alive district: regenerate the database")
        # The district measured: the first of the absorbing province (else the first of all); the commune:
        # its commune with the most people.
        district = next((d for d in districts if d.parent_id == into.id), districts[0])
        commune = await one(
            """
            SELECT u.id FROM org_units u JOIN aggregate_counts a ON a.org_unit_id = u.id
            WHERE u.parent_id = :d AND u.kind = 'commune' AND a.kind = 'people'
            GROUP BY u.id ORDER BY sum(a.n) DESC, u.id LIMIT 1
            """,
            d=district.id,
        )
        nation = await one("SELECT id FROM org_units WHERE parent_id IS NULL ORDER BY id LIMIT 1")
        names = {
            r.id: r.name
            for r in (
                await session.execute(
                    select(OrgUnit.id, OrgUnit.name).where(
                        OrgUnit.id.in_([nation, into.id, district.id, commune, *[m.id for m in merged]])
                    )
                )
            ).all()
        }
        alive = list(
            (
                await session.scalars(
                    select(OrgUnit.id).where(OrgUnit.valid_to.is_(None)).order_by(OrgUnit.id)
                )
            ).all()
        )
        admin_id = await session.scalar(select(User.id).where(User.username == ra.ADMIN))
        children = {
            m.id: await one("SELECT count(*) FROM org_units WHERE parent_id = :p", p=m.id) for m in merged
        }
    return {
        "nation": int(nation),
        "into": into.id,
        "merged": [m.id for m in merged],
        "merged_children": children,
        "districts": [(d.id, d.name, d.parent_id) for d in districts],
        "district": district.id,
        "commune": int(commune),
        "names": names,
        "alive": alive,
        "admin_id": int(admin_id or 0),
    }


def reorganisation(units: dict[str, Any], dry_run: bool) -> ReorganisationCreate:
    steps: list[dict[str, Any]] = [{"op": "merge", "units": units["merged"], "into": units["into"]}]
    for district_id, _, parent_id in units["districts"]:
        # A district of a merged province goes to the absorbing one (its province has ended by then).
        parent = units["into"] if parent_id in units["merged"] else parent_id
        steps.append({"op": "dissolve", "unit": district_id, "into": parent})
    return ReorganisationCreate.model_validate(
        {
            "effective_on": EFFECTIVE.isoformat(),
            "title": "Sắp xếp đơn vị hành chính 2025 (benchmark)",
            "document_no": "202/2025/QH15",
            "dry_run": dry_run,
            "steps": steps,
        }
    )


# ---------------------------------------------------------------------------------------------- phases


def read_series(
    client: httpx.Client, levels: dict[str, int], args: argparse.Namespace, when: str
) -> list[ra.Series]:
    series: list[ra.Series] = []
    for level, unit_id in levels.items():
        for endpoint, extra in (("progress", {}), ("breakdown", {"metric": ra.METRIC})):
            params = {"org_unit_id": unit_id, "year": EFFECTIVE_YEAR, **extra}
            idle = ra.wait_quiet(args)
            start = ra.cpu_times()
            times, body = ra.measure(
                client, f"/api/v1/aggregates/{endpoint}", params, args.warmup, args.requests
            )
            s = ra.Series(endpoint, level, unit_id, times, body, idle, ra.busy_since(start))
            series.append(s)
            log(
                f"{when:6} {endpoint:9} {level:8} p50 {s.p50:7.1f} ms  p95 {s.p95:7.1f} ms  rows "
                f"{ra._rows(s):4}  (CPU idle before {s.idle_before:.0%}, busy during {s.busy_during:.0%})"
            )
    return series


async def apply_once(
    sm: async_sessionmaker[AsyncSession], subject: Subject, data: ReorganisationCreate, profile: bool
) -> dict[str, Any]:
    """The reorganisation in one transaction (a dry run: rolled back); wall times and where they went."""
    timer = Timer()
    profiler = cProfile.Profile() if profile else None
    out: dict[str, Any] = {}
    async with sm() as session:
        await session.begin()
        t0 = time.perf_counter()
        with timer:
            if profiler:
                profiler.enable()
            try:
                read = await reorg.apply(session, subject, data)
            finally:
                if profiler:
                    profiler.disable()
        out["apply_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        if data.dry_run:
            await session.rollback()
        else:
            await session.commit()
        out["commit_s"] = time.perf_counter() - t1
    out["summary"] = read.summary.model_dump()
    out["id"] = read.id
    out["timings"] = timer.rows()
    if profiler:
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(30)
        out["profile"] = buffer.getvalue()
    return out


async def rebuild_matches(sm: async_sessionmaker[AsyncSession], years: list[int]) -> dict[str, Any]:
    """The counters as the reorganisation left them vs a full ``counters.rebuild`` (rolled back): per unit,
    kind, group and level, each year's value (people: the running sum of the changes up to the year)."""
    values = """
        SELECT org_unit_id, y.year, kind, grp, level,
               SUM(n) FILTER (WHERE (kind = 'people' AND a.year <= y.year) OR a.year = y.year) AS n
        FROM {table} a CROSS JOIN (SELECT unnest(CAST(:years AS int[])) AS year) y
        GROUP BY 1, 2, 3, 4, 5
    """
    compare = f"""
        SELECT count(*) FROM (
            (SELECT * FROM ({values.format(table="kept")}) k WHERE n <> 0
             EXCEPT ALL SELECT * FROM ({values.format(table="aggregate_counts")}) r WHERE n <> 0)
            UNION ALL
            (SELECT * FROM ({values.format(table="aggregate_counts")}) r WHERE n <> 0
             EXCEPT ALL SELECT * FROM ({values.format(table="kept")}) k WHERE n <> 0)
        ) d
    """
    async with sm() as session:
        await session.begin()
        await session.execute(text("SET LOCAL work_mem = '512MB'"))
        await session.execute(text("CREATE TEMP TABLE kept ON COMMIT DROP AS SELECT * FROM aggregate_counts"))
        t0 = time.perf_counter()
        await counters.rebuild(session)
        rebuild_s = time.perf_counter() - t0
        differing = (await session.execute(text(compare), {"years": years})).scalar()
        rows = (await session.execute(text("SELECT count(*) FROM aggregate_counts"))).scalar()
        kept_rows = (await session.execute(text("SELECT count(*) FROM kept"))).scalar()
        await session.rollback()
    return {"rebuild_s": rebuild_s, "differing": int(differing or 0), "rows": rows, "kept_rows": kept_rows}


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": ra.machine(),
        "load_before": os.getloadavg(),
        "args": args,
    }
    with tempfile.TemporaryDirectory(prefix="cdht-bench-") as var:
        env = ra.server_env(args.url, var)
        with (
            ra.server(env, args.port or ra._free_port()) as base,
            httpx.Client(base_url=base, timeout=300) as client,
        ):
            asyncio.run(phases(args, report, client))
    report["load_after"] = os.getloadavg()
    report["seconds"] = time.perf_counter() - started
    return report


async def phases(args: argparse.Namespace, report: dict[str, Any], client: httpx.Client) -> None:
    async with ra.engine_for(args.url) as engine:
        sm = make_sessionmaker(engine)
        units = await inspect(sm, args, report)
        report["units"] = units
        report["full_scale"] = report["generator"].get("sizes", {}).get("evaluations", 0) >= FULL_SCALE
        if args.quiet_wait is None:
            args.quiet_wait = 180.0 if report["full_scale"] else 0.0
        names = units["names"]
        log(
            f"into {names[units['into']]} ({units['into']}), merged "
            + ", ".join(f"{names[m]} ({m})" for m in units["merged"])
            + f"; {len(units['districts'])} districts; district {names[units['district']]}, commune "
            f"{names[units['commune']]}; {len(units['alive']):,} alive units"
        )
        current = today().year
        years = sorted({PAST, EFFECTIVE_YEAR, current})
        report["years"] = years

        # ---- before
        t0 = time.perf_counter()
        before = await all_served(sm, units["alive"], [PAST, EFFECTIVE_YEAR])
        report["snapshot_s"] = time.perf_counter() - t0
        log(f"numbers served before, {len(units['alive']):,} units × 2 years: {report['snapshot_s']:.1f} s")
        check = {"nation": units["nation"], "province": units["into"], "commune": units["commune"]}
        # The batch computes what the service serves: checked on the measured units over HTTP.
        for level, unit_id in check.items():
            for year in (PAST, EFFECTIVE_YEAR):
                served = await asyncio.to_thread(served_http, client, unit_id, year)
                if served != before[year][unit_id]:
                    raise BenchFailure(
                        f"batch vs HTTP at the {level} {year}: {before[year][unit_id]} / {served}"
                    )
        report["reads_before"] = await asyncio.to_thread(read_series, client, check, args, "before")

        # ---- the reorganisation
        subject = Subject(user_id=units["admin_id"], username=ra.ADMIN, is_admin=True)
        report["dry_idle"] = await asyncio.to_thread(ra.wait_quiet, args)
        start = ra.cpu_times()
        report["dry"] = await apply_once(sm, subject, reorganisation(units, True), profile=False)
        report["dry_busy"] = ra.busy_since(start)
        log(f"dry run: {report['dry']['apply_s']:.1f} s, {report['dry']['summary']}")
        report["real_idle"] = await asyncio.to_thread(ra.wait_quiet, args)
        start = ra.cpu_times()
        report["real"] = await apply_once(sm, subject, reorganisation(units, False), profile=args.profile)
        report["real_busy"] = ra.busy_since(start)
        log(
            f"reorganisation: {report['real']['apply_s']:.1f} s + commit {report['real']['commit_s']:.1f} s, "
            f"{report['real']['summary']}"
        )
        for label, calls, seconds, slowest in report["real"]["timings"]:
            log(f"  {label}: {calls} calls, {seconds:.2f} s (slowest {slowest:.3f} s)")
        if args.profile:
            log(report["real"]["profile"])

        # ---- after: served (HTTP) vs naive
        checked = {
            "nation": units["nation"],
            "absorbing province": units["into"],
            **{f"merged province {i + 1}": m for i, m in enumerate(units["merged"])},
            "abolished district": units["district"],
            "commune": units["commune"],
        }
        naive_rows = []
        for level, unit_id in checked.items():
            for year in years:
                served = await asyncio.to_thread(served_http, client, unit_id, year)
                async with sm() as session:
                    t0 = time.perf_counter()
                    naive = await naive_recount(session, unit_id, year)
                    seconds = time.perf_counter() - t0
                ok = served == naive
                naive_rows.append((level, unit_id, year, ok, seconds, served))
                log(f"naive {level:20} {year}: {'equal' if ok else 'DIFFERENT'} ({seconds:.2f} s)")
                if not ok:
                    report.setdefault("failures", []).append(
                        f"{level} {year}: served {served}, naive {naive}"
                    )
        report["naive"] = naive_rows

        # ---- after: the past did not move
        t0 = time.perf_counter()
        after = await all_served(sm, units["alive"], [PAST, EFFECTIVE_YEAR])
        report["snapshot_after_s"] = time.perf_counter() - t0
        changed_past = diff(before[PAST], after[PAST])
        changed_2025 = diff(before[EFFECTIVE_YEAR], after[EFFECTIVE_YEAR])
        ended = [units["district"], *(d for d, _, _ in units["districts"]), *units["merged"]]
        report["past"] = {
            "units": len(units["alive"]),
            "changed_past": changed_past,
            "changed_2025": changed_2025,
            "ended": sorted(set(ended)),
            "ended_2025_equal": all(
                after[EFFECTIVE_YEAR][u] == before[EFFECTIVE_YEAR][u] for u in set(ended)
            ),
            "into_2025": (before[EFFECTIVE_YEAR][units["into"]], after[EFFECTIVE_YEAR][units["into"]]),
        }
        log(
            f"{PAST}: {len(changed_past)} of {len(units['alive']):,} units changed; {EFFECTIVE_YEAR}: "
            f"{len(changed_2025)} changed {changed_2025[:10]}"
        )
        if changed_past:
            report.setdefault("failures", []).append(f"{PAST} changed for units {changed_past[:20]}")
        if set(changed_2025) - {units["into"]}:
            report.setdefault("failures", []).append(
                f"{EFFECTIVE_YEAR} changed for units {changed_2025[:20]}"
            )

        # ---- after: the counters kept equal a rebuild
        if not args.skip_rebuild_check:
            report["rebuild"] = await rebuild_matches(sm, [0, *range(2020, current + 1)])
            log(f"counters vs a full rebuild: {report['rebuild']}")
        if report.get("rebuild", {}).get("differing"):
            report.setdefault("failures", []).append(f"counters differ from a rebuild: {report['rebuild']}")

        # ---- after: reads, then the write path
        report["reads_after"] = await asyncio.to_thread(read_series, client, check, args, "after")
        if args.writes:
            report["writes_idle"] = await asyncio.to_thread(ra.wait_quiet, args)
            start = ra.cpu_times()
            report["writes"], report["writes_rebuild_s"] = await ra.measure_writes(
                sm, client, units["commune"], args
            )
            report["writes_busy"] = ra.busy_since(start)
        async with sm() as session:
            report["sizes"] = {
                name: (await session.execute(text(sql))).scalar()
                for name, sql in {
                    "links": "SELECT count(*) FROM org_unit_links",
                    "links_closed": "SELECT count(*) FROM org_unit_links WHERE valid_to IS NOT NULL",
                    "memberships": "SELECT count(*) FROM memberships",
                    "memberships_closed": "SELECT count(*) FROM memberships WHERE valid_to IS NOT NULL",
                    "transfers": "SELECT count(*) FROM person_transfers",
                    "counter_rows": "SELECT count(*) FROM aggregate_counts",
                    "database_size": "SELECT pg_size_pretty(pg_database_size(current_database()))",
                }.items()
            }


# ---------------------------------------------------------------------------------------------- report


def render(report: dict[str, Any], command: str) -> str:
    gen, m, units = report["generator"], report["machine"], report["units"]
    names = units["names"]
    real, dry = report["real"], report["dry"]
    s = real["summary"]
    lines = [
        SECTION,
        "",
        f"Run of {report['started']} (UTC), {report['seconds']:.0f} s, on the dataset of "
        f"`{gen.get('command', 'bench/generate_national.py')}` ({gen.get('generated_at', '?')}, "
        f"{gen.get('seconds', '?')} s).",
        "",
        f"**Machine.** {m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}, Python {m['python']}; "
        f"{report['postgres'].split(' on ')[0]} ({report['pg_settings']}); server, database and client on "
        f"the same machine, shared with other sessions: load average {report['load_before'][0]:.2f} before, "
        f"{report['load_after'][0]:.2f} after the run; before each measured phase the runner waits (up to "
        f"{report['args'].quiet_wait:.0f} s) for the machine to be ≤ {report['args'].quiet_busy:.0%} busy.",
        "",
        "**Commands** (from the repository root):",
        "",
        "```",
        f".venv/bin/python {gen.get('command', 'bench/generate_national.py')}",
        command,
        "```",
        "",
        "**Generation** "
        f"({gen.get('seconds', '?')} s): "
        + "; ".join(f"{step} {sec:.1f} s" for step, sec in gen.get("steps", {}).items())
        + ".",
        "",
        f"**The reorganisation** (`app.reorganisations.service.apply`, admin subject, one transaction), "
        f"effective {EFFECTIVE.isoformat()}: step 0 merges "
        + " and ".join(
            f"{names[u]} (id {u}, {units['merged_children'][u]} children)" for u in units["merged"]
        )
        + f" into {names[units['into']]} (id {units['into']}); steps 1–{len(units['districts'])} dissolve "
        f"each of the {len(units['districts'])} districts into its province. Summary: "
        f"{s['units_ended']} units ended, {s['units_moved']} moved, {s['people_moved']:,} people moved, "
        f"{s['roles_moved']} role assignments moved.",
        "",
        "| run | apply | commit | CPU idle before / busy during |",
        "|---|---|---|---|",
        f"| dry run (savepoint, rolled back) | {ra.fmt_s(dry['apply_s'])} | — (rolled back) | "
        f"{report['dry_idle']:.0%} / {report['dry_busy']:.0%} |",
        f"| **applied** | **{ra.fmt_s(real['apply_s'])}** | {ra.fmt_s(real['commit_s'])} | "
        f"{report['real_idle']:.0%} / {report['real_busy']:.0%} |",
        "",
        BEFORE_FIXES,
        "",
        "Where the time went (the applied run; wall time of the service's steps and the functions they call, "
        "timed by wrapping them; times nest, e.g. a step contains its moves and ends):",
        "",
        "| function | calls | total | slowest call |",
        "|---|---|---|---|",
    ]
    for label, calls, seconds, slowest in real["timings"]:
        lines.append(f"| {label} | {calls:,} | {ra.fmt_s(seconds)} | {ra.fmt_s(slowest)} |")
    past = report["past"]
    lines += [
        "",
        "### Numbers after the reorganisation",
        "",
        "Served over HTTP (`progress`, numerator and denominator of all six metrics) vs `naive_recount`:",
        "",
        "| unit | id | " + " | ".join(str(y) for y in report["years"]) + " |",
        "|---|---|" + "---|" * len(report["years"]),
    ]
    by_unit: dict[tuple[str, int], dict[int, tuple[bool, float]]] = defaultdict(dict)
    for level, unit_id, year, ok, seconds, _ in report["naive"]:
        by_unit[(level, unit_id)][year] = (ok, seconds)
    for (level, unit_id), years in by_unit.items():
        cells = [
            f"{'equal' if ok else '**different**'} (naive {ra.fmt_s(sec)})" for ok, sec in years.values()
        ]
        lines.append(f"| {level}: {names.get(unit_id, unit_id)} | {unit_id} | " + " | ".join(cells) + " |")
    before_into, after_into = past["into_2025"]
    metric = "adults_recognised_pct"
    lines += [
        "",
        f"The past did not move: for each of the {past['units']:,} units alive before, "
        f"the numbers served for "
        f"{PAST} (all six metrics; computed in batches as `service.progress` computes them, checked against "
        f"HTTP at the measured units before) are "
        + (
            "**the same as before**"
            if not past["changed_past"]
            else f"**different for {len(past['changed_past'])} units**"
        )
        + f"; for {EFFECTIVE_YEAR} only "
        + (
            f"{', '.join(names.get(u, str(u)) for u in past['changed_2025'])} changed"
            if past["changed_2025"]
            else "nothing changed"
        )
        + f" ({names[units['into']]}: {metric} {before_into[metric][0]:,}/{before_into[metric][1]:,} before, "
        f"{after_into[metric][0]:,}/{after_into[metric][1]:,} after, now with the merged provinces' people), "
        f"and the {len(past['ended'])} ended units (the districts and the merged provinces) "
        f"count {EFFECTIVE_YEAR} "
        f"on their last day ({(EFFECTIVE - timedelta(days=1)).isoformat()}) "
        + (
            "with **the same numbers as before**."
            if past["ended_2025_equal"]
            else "with **different numbers**."
        ),
        "",
        rebuild_line(report),
        "",
        f"### Reads over HTTP, before and after (2025; p50 / p95 of {report['args'].requests} requests after "
        f"{report['args'].warmup} warm-up; goal p95 ≤ {GOAL_P95_MS:.0f} ms)",
        "",
        "| endpoint | level | rows before / after | p50 ms before / after | p95 ms before / after "
        "| goal (after) "
        "| CPU idle before / busy during (after) |",
        "|---|---|---|---|---|---|---|",
    ]
    for b, a in zip(report["reads_before"], report["reads_after"], strict=True):
        lines.append(
            f"| {a.endpoint} | {a.level} | {ra._rows(b)} / {ra._rows(a)} | "
            f"{ra.fmt_ms(b.p50)} / {ra.fmt_ms(a.p50)} | "
            f"{ra.fmt_ms(b.p95)} / {ra.fmt_ms(a.p95)} | {ra.verdict(a.p95 <= GOAL_P95_MS)} | "
            f"{a.idle_before:.0%} / {a.busy_during:.0%} |"
        )
    lines.append("")
    lines.append(
        "Levels: nation = "
        + names[units["nation"]]
        + f"; province = {names[units['into']]} (before: without, after: with the merged provinces); "
        f"commune = {names[units['commune']]} (id {units['commune']}, in the abolished "
        f"{names[units['district']]}; after, a child of the province)."
    )
    if "writes" in report:
        runs = report["writes"]
        live, noop = runs["live"], runs["no-op"]
        ratio = live.total() / noop.total()
        lines += [
            "",
            "### Write path after the reorganisation "
            f"(`run_aggregates.measure_writes`, {live.n} evaluations per "
            f"mode in the commune's units), goal ≤ {GOAL_WRITE_RATIO:.0f}× the time with no aggregates kept",
            "",
            f"CPU idle before: {report['writes_idle']:.0%}; busy during: {report['writes_busy']:.0%}. "
            "No-op = "
            "`counters.recognition_changed`, `counters.evaluation_created` and `counters.people_counted` "
            "patched to do nothing; modes alternate in blocks.",
            "",
            "| step | live: median ms | no-op: median ms | live total s | no-op total s | ratio |",
            "|---|---|---|---|---|---|",
        ]
        for step in live.steps:
            x, y = live.total(step), noop.total(step)
            lines.append(
                f"| {step} | {statistics.median(live.steps[step]) * 1000:.1f} | "
                f"{statistics.median(noop.steps[step]) * 1000:.1f} | {x:.2f} | {y:.2f} | {x / y:.2f}× |"
            )
        lines.append(
            f"| **whole path** | {live.total() / live.n * 1000:.1f} per evaluation | "
            f"{noop.total() / noop.n * 1000:.1f} per evaluation | {live.total():.2f} | {noop.total():.2f} | "
            f"**{ratio:.2f}×** ({ra.verdict(ratio <= GOAL_WRITE_RATIO)}) |"
        )
        lines += [
            "",
            f"Then the counters were rebuilt ({report['writes_rebuild_s']:.1f} s) and the commune checked "
            "against the naive recount again (equal).",
        ]
    sizes = report["sizes"]
    lines += [
        "",
        f"**After** : {sizes['links']:,} closure-through-time rows ({sizes['links_closed']:,} closed); "
        f"{sizes['memberships']:,} memberships ({sizes['memberships_closed']:,} closed); "
        f"{sizes['transfers']:,} "
        f"transfers; {sizes['counter_rows']:,} counter rows; database {sizes['database_size']}.",
    ]
    if report.get("failures"):
        lines += ["", "**Failures:**", "", *[f"- {f}" for f in report["failures"]]]
    return "\n".join(lines) + "\n"


def rebuild_line(report: dict[str, Any]) -> str:
    if "rebuild" not in report:
        return (
            "Counters vs a full `counters.rebuild`: not compared in this run (`--skip-rebuild-check`; the "
            "smoke run compares them)."
        )
    r = report["rebuild"]
    verdict = "**identical**" if not r["differing"] else f"**{r['differing']} values differ**"
    return (
        "Counters as the reorganisation left them vs a full `counters.rebuild` (run in a transaction then "
        f"rolled back, {ra.fmt_s(r['rebuild_s'])}), every unit, kind, group and level for every year from "
        f"2020 to {report['years'][-1]} (people as running sums): {verdict} ({r['kept_rows']:,} counter "
        f"rows kept, {r['rows']:,} rebuilt)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"bench database (default {DEFAULT_URL})")
    parser.add_argument("--into", default=INTO, help=f"the province that absorbs the others ({INTO})")
    parser.add_argument(
        "--merge", default=",".join(MERGED), type=lambda v: v.split(","), help="provinces merged into it"
    )
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint and level")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--writes", type=int, default=200, help="write-path evaluations per mode (0: skip)")
    parser.add_argument("--block", type=int, default=25)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--quiet-wait", type=float, default=None)
    parser.add_argument("--quiet-busy", type=float, default=0.25)
    parser.add_argument("--profile", action="store_true", help="cProfile the applied reorganisation")
    parser.add_argument(
        "--skip-rebuild-check",
        action="store_true",
        help="do not compare the counters with a full counters.rebuild (minutes at full scale)",
    )
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    report = run(args)
    command = ".venv/bin/python bench/run_reorganisation.py " + " ".join(sys.argv[1:])
    try:  # a copy of the raw report, should rendering fail after a long run
        import pickle

        Path(tempfile.gettempdir(), "run_reorganisation_report.pickle").write_bytes(pickle.dumps(report))
    except Exception as exc:
        log(f"report not pickled: {exc}")
    section = render(report, command.strip())
    Path(tempfile.gettempdir(), "run_reorganisation_section.md").write_text(section)
    if args.no_results or not (report["full_scale"] or args.write_results):
        print(section)
    else:
        ra.write_results(section, RESULTS, SECTION)
        print(f"results written to {RESULTS.relative_to(ROOT)} ({SECTION[3:]})")
    if report.get("failures"):
        raise BenchFailure("; ".join(report["failures"]))


if __name__ == "__main__":
    main()
