"""Benchmark: import 100,000 people (or ``--rows``) from one CSV through the real app, in process.

Generates the CSV (streamed to a temp file), builds a fresh database with the migrations (a temp SQLite
file by default, or ``--database-url postgresql://…``, whose ``public`` schema is dropped first), creates a
province with communes and an admin, then posts the file to ``POST /api/v1/imports/people`` through
httpx's ASGI transport: a dry run, the import, and the same file again (which must create nothing).
Records wall time, rows per second and the process's peak RSS in ``bench/RESULTS.md`` under
"Import: 100,000 people" (the goal: peak memory under 300 MB).

A file larger than ``CDHT_IMPORT_JOB_BYTES`` (8 MB: about 130,000 rows) is answered 202 and imported by
the job runner; the benchmark then runs the app's runner (``run_pending``, what its background loop calls)
and reads the summary from ``GET /imports/jobs/{id}``, so the times include the queueing. Such runs are
recorded under "Import as a job: N people".

    .venv/bin/python bench/import_people.py [--rows 100000] [--database-url URL] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import os
import platform
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.auth.models import Role, RoleAssignment, User
from app.cli import alembic_config
from app.core.config import Settings
from app.core.db import make_engine, make_sessionmaker, unit_of_work
from app.main import create_app
from app.orgs import history
from app.orgs.models import OrgUnit
from app.people.models import Person

UNITS = 100
RESULTS = Path(__file__).with_name("RESULTS.md")
HEADING = "## Import: 100,000 people"
JOB_HEADING = "## Import as a job: {rows:,} people"
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ"]
GIVEN = ["Văn An", "Thị Bình", "Minh Châu", "Thị Dung", "Quốc Huy", "Thu Hà", "Đức Long", "Thị Mai"]
GROUPS = ["resident", "worker", "staff", "student"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["full_name", "unit_code", "group", "birth_year", "citizen_id", "gender"])
        for i in range(rows):
            writer.writerow(
                [
                    f"{SURNAMES[i % len(SURNAMES)]} {GIVEN[i % len(GIVEN)]} {i}",
                    f"BENCH-{i % UNITS:03d}",
                    GROUPS[i % len(GROUPS)],
                    1950 + i % 60,
                    f"{i:012d}",
                    "female" if i % 2 else "male",
                ]
            )


async def reset(url: str) -> None:
    if url.startswith("postgres"):
        engine = make_engine(url, pool=False)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()


async def prepare(settings: Settings) -> int:
    engine = make_engine(settings.effective_database_url)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            province = OrgUnit(name="Tỉnh Bench", kind="province", code="BENCH", depth=0)
            session.add(province)
            await session.flush()
            await history.link_new_unit(session, province)
            for n in range(UNITS):
                unit = OrgUnit(
                    name=f"Xã {n}", kind="commune", code=f"BENCH-{n:03d}", parent_id=province.id, depth=1
                )
                session.add(unit)
                await session.flush()
                await history.link_new_unit(session, unit)
            user = User(username="bench.admin", password_hash="-", full_name="Bench")
            session.add(user)
            await session.flush()
            session.add(RoleAssignment(user_id=user.id, role=Role.ADMIN.value, org_unit_id=None))
            return user.id
    finally:
        await engine.dispose()


async def run(rows: int, url: str | None, work: Path) -> dict[str, object]:
    csv_path = work / "people.csv"
    write_csv(csv_path, rows)
    url = url or f"sqlite:///{work / 'bench.db'}"
    await reset(url)
    settings = Settings(
        env="test",
        var_dir=work,
        database_url=url,
        secret_key="bench-secret-key-" + "x" * 32,
        evidence_dir=work,
    )
    await asyncio.to_thread(
        __import__("alembic.command", fromlist=["upgrade"]).upgrade, alembic_config(url), "head"
    )
    user_id = await prepare(settings)
    app = create_app(settings)
    token, _ = app.state.auth.codec.issue_access(str(user_id))
    headers = {"Authorization": f"Bearer {token}"}
    timings: dict[str, float] = {}
    jobs = 0
    summaries: dict[str, dict[str, object]] = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=None
    ) as c:
        for label, dry in (("dry_run", True), ("import", False), ("again", False)):
            started = time.perf_counter()
            with csv_path.open("rb") as f:
                r = await c.post(
                    "/api/v1/imports/people",
                    params={"dry_run": str(dry).lower()},
                    files={"file": ("people.csv", f, "text/csv")},
                    headers=headers,
                )
            if r.status_code == 202:  # a large file: queued; run it as the background runner would
                jobs += 1
                assert await app.state.import_jobs.run_pending() == 1
                job = (await c.get(r.headers["Location"], headers=headers)).json()
                assert job["status"] == "done", job
                r = httpx.Response(200, json=job["summary"])
            timings[label] = time.perf_counter() - started
            assert r.status_code == 200, r.text[:500]
            summaries[label] = r.json()
    engine = app.state.engine
    async with engine.connect() as conn:
        stored = await conn.scalar(select(func.count()).select_from(Person))
    await engine.dispose()
    assert stored == rows, stored
    assert summaries["import"]["created"] == rows and summaries["again"]["unchanged"] == rows
    return {
        "database": "PostgreSQL" if url.startswith("postgres") else "SQLite (file)",
        "rows": rows,
        "file_mb": csv_path.stat().st_size / 1024 / 1024,
        "timings": timings,
        "peak_rss_mb": peak_rss_mb(),
        "as_job": jobs == 3,
    }


def machine() -> str:
    mem_kb = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        match = re.search(r"MemTotal:\s+(\d+)", meminfo.read_text())
        mem_kb = int(match.group(1)) if match else 0
    memory = f"{mem_kb / 1024 / 1024:.1f} GB RAM"
    return (
        f"{os.cpu_count()} CPUs (nproc), {memory}, {platform.platform()}, Python {platform.python_version()}"
    )


def heading(results: list[dict[str, object]]) -> str:
    first = results[0]
    return JOB_HEADING.format(rows=first["rows"]) if first["as_job"] else HEADING


def record(results: list[dict[str, object]], command: str) -> str:
    how = (
        [
            "  Each file is larger than `CDHT_IMPORT_JOB_BYTES`: answered 202, imported by the job runner,",
            "  the summary read from `GET /imports/jobs/{id}`; the times include the queueing.",
        ]
        if results[0]["as_job"]
        else []
    )
    lines = [
        heading(results),
        "",
        f"- Date: {dt.date.today().isoformat()}",
        f"- Machine: {machine()}",
        f"- Command: `{command}`",
        "- What: `POST /api/v1/imports/people` with one CSV through the app in process (httpx ASGI",
        "  transport), 100 communes, every row with a citizen id; dry run, import, the same file again.",
        *how,
        "- Goal: peak memory (the whole process's peak RSS, `ru_maxrss`) under 300 MB. The runs share one",
        "  process, so a later row's peak includes the earlier runs'.",
        "",
        "| database | rows | file | dry run | import | rows/s (import) | same file again | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t = r["timings"]
        assert isinstance(t, dict)
        lines.append(
            f"| {r['database']} | {r['rows']:,} | {r['file_mb']:.1f} MB | {t['dry_run']:.1f} s "
            f"| {t['import']:.1f} s | {r['rows'] / t['import']:,.0f} | {t['again']:.1f} s "
            f"| {r['peak_rss_mb']:.0f} MB |"
        )
    return "\n".join(lines) + "\n"


def write_results(section: str) -> None:
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    title = section.splitlines()[0]
    if title in existing:
        start = existing.index(title)
        nxt = existing.find("\n## ", start + len(title))
        existing = existing[:start] + existing[nxt + 1 if nxt != -1 else len(existing) :]
    RESULTS.write_text(existing.rstrip("\n") + "\n\n" + section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", action="append", default=[], help="also run on this database")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the default temp SQLite run")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    results = []
    for url in [*([] if args.no_sqlite else [None]), *args.database_url]:
        with tempfile.TemporaryDirectory() as work:
            result = asyncio.run(run(args.rows, url, Path(work)))
        print(result)
        results.append(result)
    if not args.no_record:
        command = " ".join([".venv/bin/python", "bench/import_people.py", *sys.argv[1:]])
        write_results(record(results, command))


if __name__ == "__main__":
    main()
