"""Where one ``GET /api/v1/aggregates/breakdown`` spends its time, in process (no network, no uvicorn).

    .venv/bin/python bench/profile_breakdown.py                       # Tỉnh Ninh Bình (48811), 2025
    .venv/bin/python bench/profile_breakdown.py --unit 1 --requests 50

Builds the real app (``app.main.create_app``) on the bench database, logs in as ``run_aggregates.ADMIN``
(created by ``run_aggregates.py`` / ``run_reorganisation.py``) and sends the requests through
``httpx.ASGITransport``. Three passes after a warm-up:

1. wall time of whole requests (p50 / p95);
2. the same requests with the steps of ``service.breakdown`` wrapped by timers, and every SQL statement
   timed from ``before_cursor_execute`` to ``after_cursor_execute`` (driver + server time of that
   statement, rows fetched included), so each step splits into SQL and Python;
3. cProfile of ``--profile-requests`` requests (cumulative and own time).

Prints everything; writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/cdht_bench"
EXECUTE = "session.execute (compile + round trip + asyncpg fetch)"
ALL = "result.all() (SQLAlchemy ORM row processing)"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


async def main(args: argparse.Namespace) -> None:
    var = tempfile.mkdtemp(prefix="cdht-profile-")
    os.environ.update(
        {
            "CDHT_DATABASE_URL": args.url,
            "CDHT_ENV": "development",
            "CDHT_SECRET_KEY": secrets.token_urlsafe(48),
            "CDHT_VAR_DIR": var,
        }
    )
    import httpx
    import run_aggregates as ra
    from sqlalchemy import event

    from app.aggregates import repository as repo
    from app.aggregates import service, through_time
    from app.main import create_app

    app = create_app()
    engine = app.state.engine
    params = {"org_unit_id": args.unit, "year": args.year, "metric": args.metric}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        response = await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": ra.ADMIN, "password": ra.ADMIN_PASSWORD},
        )
        response.raise_for_status()
        client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

        async def one() -> float:
            t0 = time.perf_counter()
            r = await client.get("/api/v1/aggregates/breakdown", params=params)
            elapsed = time.perf_counter() - t0
            r.raise_for_status()
            return elapsed

        r = await client.get("/api/v1/aggregates/breakdown", params=params)
        r.raise_for_status()
        body = r.json()
        print(
            f"unit {args.unit}, {args.year}, {args.metric}: {len(body['items'])} rows, "
            f"{len(r.content):,} bytes"
        )
        for _ in range(args.warmup):
            await one()

        # 1. whole requests
        times = sorted([await one() for _ in range(args.requests)])
        p95 = times[max(0, round(0.95 * len(times)) - 1)]
        print(
            f"\n1. whole request in process ({args.requests}): p50 {ms(statistics.median(times))} ms, "
            f"p95 {ms(p95)} ms, min {ms(times[0])} ms"
        )

        # 2. steps and SQL
        steps: dict[str, list[float]] = defaultdict(list)
        current: list[str] = []
        sql: dict[tuple[str, str], list[float]] = defaultdict(list)
        started: dict[int, float] = {}

        def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            started[id(cursor)] = time.perf_counter()

        def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            t = time.perf_counter() - started.pop(id(cursor), time.perf_counter())
            head = " ".join(statement.split())[:90]
            sql[(current[-1] if current else "(outside the steps)", head)].append(t)

        def wrap_async(owner: Any, name: str, label: str) -> Any:
            original = getattr(owner, name)

            @functools.wraps(original)
            async def timed(*a: Any, **k: Any) -> Any:
                current.append(label)
                t0 = time.perf_counter()
                try:
                    return await original(*a, **k)
                finally:
                    steps[label].append(time.perf_counter() - t0)
                    current.pop()

            setattr(owner, name, timed)
            return original

        def wrap_sync(owner: Any, name: str, label: str) -> Any:
            original = getattr(owner, name)

            @functools.wraps(original)
            def timed(*a: Any, **k: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return original(*a, **k)
                finally:
                    steps[label].append(time.perf_counter() - t0)

            setattr(owner, name, timed)
            return original

        wrapped = [
            (service, "breakdown", "service.breakdown (all of it)", wrap_async),
            (service, "get_visible_unit", "orgs.service.get_visible (scope, unit)", wrap_async),
            (repo, "children_on", "repository.children_on", wrap_async),
            (through_time, "sources", "through_time.sources", wrap_async),
            (repo, "count", "repository.count (counter read + tally)", wrap_async),
            (repo, "applicable_plans", "repository.applicable_plans", wrap_async),
            (repo, "plans_below", "repository.plans_below", wrap_async),
            (through_time.Sources, "cells", "Sources.cells (per child: Tally.combined)", wrap_sync),
            (service, "measure", "service.measure (per child)", wrap_sync),
            (service, "BreakdownRow", "BreakdownRow(...) (per child, pydantic)", wrap_sync),
        ]
        originals = [(owner, name, wrap(owner, name, label)) for owner, name, label, wrap in wrapped]
        event.listen(engine.sync_engine, "before_cursor_execute", before)
        event.listen(engine.sync_engine, "after_cursor_execute", after)
        request_times = [await one() for _ in range(args.requests)]
        event.remove(engine.sync_engine, "before_cursor_execute", before)
        event.remove(engine.sync_engine, "after_cursor_execute", after)
        for owner, name, original in originals:
            setattr(owner, name, original)
        n = args.requests
        total = sum(request_times) / n
        print(f"\n2. per request, mean of {n} (request {ms(total)} ms; times nest):")
        print(f"   {'step':48} {'ms/request':>10} {'calls/request':>13}")
        for label, values in steps.items():
            print(f"   {label:48} {ms(sum(values) / n):>10} {len(values) / n:>13.0f}")
        inside = sum(steps["service.breakdown (all of it)"]) / n
        outside = "outside service.breakdown (auth, routing, validation, JSON)"
        print(f"   {outside:48} {ms(total - inside):>10}")
        print("\n   SQL statements (cursor execute → after execute; ms/request, calls/request), by step:")
        for (step, head), values in sorted(sql.items(), key=lambda kv: -sum(kv[1])):
            print(f"   {ms(sum(values) / n):>7} {len(values) / n:>4.0f}×  [{step}] {head}")
        print(f"   {ms(sum(sum(v) for v in sql.values()) / n):>7} total SQL per request")

        # 3. cProfile
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.profile_requests):
            await one()
        profiler.disable()
        for key in ("cumulative", "tottime"):
            buffer = io.StringIO()
            pstats.Stats(profiler, stream=buffer).sort_stats(key).print_stats(args.top)
            print(f"\n3. cProfile of {args.profile_requests} requests, by {key}:\n{buffer.getvalue()}")

        # 4. repository.count split (no profiler): the breakdown's own call, repeated
        from sqlalchemy import text
        from sqlalchemy.dialects import postgresql

        from app.aggregates import metrics as agg_metrics
        from app.aggregates.schemas import Basis
        from app.core.db import make_sessionmaker
        from app.orgs.models import OrgUnit

        metric = agg_metrics.get(args.metric)
        parts: dict[str, list[float]] = defaultdict(list)
        captured: list[Any] = []

        class TimedResult:
            def __init__(self, result: Any) -> None:
                self.result = result

            def all(self) -> Any:
                t0 = time.perf_counter()
                rows = self.result.all()
                parts[ALL].append(time.perf_counter() - t0)
                parts["rows"].append(len(rows))
                return rows

        class TimedSession:
            def __init__(self, session: Any) -> None:
                self.session = session

            async def execute(self, stmt: Any, *a: Any, **k: Any) -> Any:
                captured[:] = [stmt]
                t0 = time.perf_counter()
                result = await self.session.execute(stmt, *a, **k)
                parts[EXECUTE].append(time.perf_counter() - t0)
                return TimedResult(result)

        sm = make_sessionmaker(engine)
        async with sm() as session:
            unit = await session.get(OrgUnit, args.unit)
            day = through_time.reference_day(unit, args.year)
            children = await repo.children_on(session, args.unit, day)
            years = range(args.year, args.year + 1)
            sources = await through_time.sources(session, children, years, Basis.AS_WAS)
            roots = sources.unit_ids()
            for i in range(args.requests + 5):
                t0 = time.perf_counter()
                await repo.count(
                    TimedSession(session), roots, args.year, args.year, metric.kinds, metric.groups
                )
                total = time.perf_counter() - t0
                if i >= 5:
                    parts["repository.count (whole)"].append(total)
                else:
                    for values in parts.values():
                        values.clear()
            stmt = captured[0]
            t0 = time.perf_counter()
            for _ in range(20):
                compiled = stmt.compile(dialect=engine.dialect)
                str(compiled)
            compile_s = (time.perf_counter() - t0) / 20
            literal = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            plan = (await session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + literal))).scalars().all()
        print(
            f"\n4. repository.count at the breakdown ({len(roots)} units), median of {args.requests}, "
            "no profiler:"
        )
        whole = statistics.median(parts["repository.count (whole)"])
        for label, values in parts.items():
            if label == "rows":
                print(f"   rows returned: {statistics.median(values):.0f}")
            else:
                print(f"   {label:58} {ms(statistics.median(values))} ms")
        rest = whole - sum(statistics.median(parts[label]) for label in (EXECUTE, ALL))
        print(f"   {'building the statement + the tally loop (rest)':58} {ms(rest)} ms")
        print(f"   (uncached compile of that statement alone, for scale: {ms(compile_s)} ms)")
        print("   EXPLAIN ANALYZE (literal ids):")
        for line in plan:
            print("     " + line)
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--unit", type=int, default=48811)
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--metric", default="staff_recognised_pct")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--profile-requests", type=int, default=5)
    parser.add_argument("--top", type=int, default=45)
    asyncio.run(main(parser.parse_args()))
