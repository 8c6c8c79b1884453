"""SQLite drivers compared in one run: aiosqlite (the driver until the one of ``app/core/sqlite_driver.py``;
``bench/aiosqlite_app.py`` brings it back) against ``app/core/sqlite_driver.py``.

    .venv/bin/python bench/run_sqlite_driver.py                  # prints the section
    .venv/bin/python bench/run_sqlite_driver.py --write-results  # replaces its section of bench/RESULTS.md

1. ``cdht demo`` into a fresh SQLite file with each driver, ``--demo-rounds`` alternating rounds (wall
   time of the command, migrations and seeds included).
2. Statements in process on the demo's file, ``--rounds`` alternating rounds of plain ``sqlite3`` (the
   floor: no SQLAlchemy, no asyncio), the app's engine on aiosqlite and the app's engine on the driver: a
   primary-key ``SELECT`` (Core), 50 evaluations as ORM entities, and a write transaction (``BEGIN
   IMMEDIATE``, one ``INSERT``, ``COMMIT``); the median µs of each.
3. HTTP through ``wrk`` (installed if missing): one server per driver on the demo's file (one worker each,
   as ``cdht serve`` runs on SQLite), ``--rounds`` alternating rounds per endpoint (``wrk -t1 -c8``,
   ``--duration`` s): ``/healthz``, ``/me``, ``/aggregates/progress`` and ``/evaluations`` of Quảng Ngãi as
   the demo's ``quangngai.admin``. Requests/s, p95, the server's CPU per request and how busy the machine
   was (``/proc/stat``), medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import aiosqlite_app  # noqa: E402
import run_aggregates as ra  # noqa: E402
import run_http as rh  # noqa: E402
from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from app.core import sqlite_driver  # noqa: E402
from app.core.db import WRITE_OPTION, make_engine, make_sessionmaker  # noqa: E402
from app.evaluations.models import Evaluation  # noqa: E402

SECTION = "## SQLite drivers: aiosqlite against the loop's own thread"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
DRIVERS = ("aiosqlite", "driver")
DEMO_USER, DEMO_PASSWORD, PROVINCE = "quangngai.admin", "demo-password", "51"


def command(driver: str) -> list[str]:
    """The ``cdht`` command line running on ``driver``."""
    if driver == "aiosqlite":
        return [PYTHON, str(BENCH / "aiosqlite_app.py")]
    return [rh.CDHT]


def environment(var: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CDHT_VAR_DIR": str(var),
        "CDHT_DATABASE_URL": f"sqlite:///{var / 'cdht.db'}",
        "CDHT_SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
    }


def demo_rounds(work: Path, rounds: int) -> tuple[dict[str, list[float]], Path]:
    """Seconds of ``cdht demo`` per driver; the var folder of the driver's last run (the demo to serve)."""
    seconds: dict[str, list[float]] = {d: [] for d in DRIVERS}
    last = work
    for n in range(rounds):
        for driver in DRIVERS:
            var = work / f"demo-{driver}-{n}"
            var.mkdir()
            started = time.monotonic()
            done = subprocess.run(
                [*command(driver), "demo"], env=environment(var), capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise rh.BenchFailure(f"demo on {driver} failed:\n{done.stdout}\n{done.stderr}")
            seconds[driver].append(time.monotonic() - started)
            print(f"demo on {driver}: {seconds[driver][-1]:.1f} s", flush=True)
            if driver == "driver":
                last = var
    return seconds, last


def engines(url: str) -> dict[str, AsyncEngine]:
    made = {"driver": make_engine(url)}
    original = sqlite_driver.connect
    aiosqlite_app.use_aiosqlite()
    try:
        made["aiosqlite"] = make_engine(url)
    finally:
        sqlite_driver.connect = original
    return made


PK_SELECT = text("SELECT id, code, name FROM org_units WHERE id = :i")


def _us(started: float, calls: int) -> float:
    return (time.perf_counter() - started) / calls * 1e6


def plain_select_us(path: str, calls: int) -> float:
    with sqlite3.connect(path, isolation_level=None) as conn:
        started = time.perf_counter()
        for i in range(calls):
            conn.execute("SELECT id, code, name FROM org_units WHERE id = ?", (i % 30 + 1,)).fetchall()
        return _us(started, calls)


async def pk_select_us(engine: AsyncEngine, calls: int) -> float:
    async with engine.connect() as conn:
        started = time.perf_counter()
        for i in range(calls):
            (await conn.execute(PK_SELECT, {"i": i % 30 + 1})).all()
        return _us(started, calls)


async def orm_page_us(engine: AsyncEngine, calls: int) -> float:
    sessionmaker = make_sessionmaker(engine)
    started = time.perf_counter()
    for _ in range(calls):
        async with sessionmaker() as session:
            (await session.scalars(select(Evaluation).order_by(Evaluation.id).limit(50))).all()
    return _us(started, calls)


async def write_us(engine: AsyncEngine, calls: int) -> float:
    writer = engine.execution_options(**{WRITE_OPTION: True})  # BEGIN IMMEDIATE, as a write request's
    started = time.perf_counter()
    for _ in range(calls):
        async with writer.begin() as conn:
            await conn.execute(text("INSERT INTO bench_scratch VALUES (1)"))
    return _us(started, calls)


# What is timed in process: (function, share of --calls).
KINDS: dict[str, tuple[Callable[[AsyncEngine, int], Awaitable[float]], int]] = {
    "primary-key SELECT": (pk_select_us, 1),
    "50 evaluations (ORM)": (orm_page_us, 20),
    "write transaction": (write_us, 10),
}


async def statements(path: str, rounds: int, calls: int) -> dict[str, dict[str, list[float]]]:
    """µs per call of each kind on each driver (plain sqlite3 for the primary-key SELECT only)."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_scratch (x INTEGER)")
    made = engines(f"sqlite:///{path}")
    results: dict[str, dict[str, list[float]]] = {kind: {} for kind in KINDS}
    try:
        for _ in range(rounds):
            results["primary-key SELECT"].setdefault("sqlite3", []).append(plain_select_us(path, calls))
            for driver in DRIVERS:
                for kind, (measure, share) in KINDS.items():
                    us = await measure(made[driver], max(calls // share, 10))
                    results[kind].setdefault(driver, []).append(us)
            print("statements round done", flush=True)
    finally:
        for engine in made.values():
            await engine.dispose()
    return results


def serve_rounds(var: Path, rounds: int, duration: int, wrk: str) -> dict[str, dict[str, list[rh.Round]]]:
    """wrk rounds per endpoint, alternating the two servers (both on the demo's file)."""
    out: dict[str, dict[str, list[rh.Round]]] = {}
    with ExitStack() as stack:
        bases, pids = {}, {}
        for driver in DRIVERS:
            port = rh.free_port()
            bases[driver] = f"http://127.0.0.1:{port}"
            pids[driver] = stack.enter_context(
                rh.started(
                    [*command(driver), "serve", "--host", "127.0.0.1", "--port", str(port)],
                    environment(var),
                    f"{bases[driver]}/healthz",
                    f"server on {driver}",
                    var / f"serve-{driver}.log",
                )
            )
        token = rh.login(bases["driver"], DEMO_USER, DEMO_PASSWORD)
        province = rh.province_id(bases["driver"], token, PROVINCE)
        auth = {"Authorization": f"Bearer {token}"}
        paths = {
            "/healthz": ("/healthz", {}),
            "/me": (f"{rh.API}/me", auth),
            "/aggregates/progress": (
                f"{rh.API}/aggregates/progress?org_unit_id={province}&year={rh.YEAR}",
                auth,
            ),
            "/evaluations": (f"{rh.API}/evaluations?org_unit_id={province}", auth),
        }
        for name, (path, headers) in paths.items():
            for driver in DRIVERS:  # warm-up, and both must answer alike
                rh.run_wrk(wrk, bases[driver] + path, seconds=1, connections=8, headers=headers)
            for _ in range(rounds):
                for driver in DRIVERS:
                    before = rh.cpu_ticks(rh.process_tree(pids[driver]))
                    r = rh.run_wrk(
                        wrk, bases[driver] + path, seconds=duration, connections=8, headers=headers
                    )
                    after = rh.cpu_ticks(rh.process_tree(pids[driver]))
                    used = sum(t - before.get(pid, 0) for pid, t in after.items()) / rh.CLK_TCK
                    r.app_us = used / max(r.requests, 1) * 1e6
                    if r.non_2xx_3xx or r.socket_errors:
                        raise rh.BenchFailure(
                            f"{name} on {driver}: {r.non_2xx_3xx} non-2xx, {r.socket_errors} errors"
                        )
                    out.setdefault(name, {}).setdefault(driver, []).append(r)
                    print(f"{name} on {driver}: {r.rps:,.0f} req/s, p95 {r.p95_ms:.1f} ms", flush=True)
    return out


def med(values: list[float]) -> float:
    return statistics.median(values)


def report(
    demo: dict[str, list[float]],
    stmts: dict[str, dict[str, list[float]]],
    http: dict[str, dict[str, list[rh.Round]]],
    args: argparse.Namespace,
) -> str:
    busy = [r.busy for per in http.values() for rounds in per.values() for r in rounds]
    machine = ra.machine()
    lines = [
        SECTION,
        "",
        f"`bench/run_sqlite_driver.py --rounds {args.rounds} --duration {args.duration} --demo-rounds "
        f"{args.demo_rounds}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {rh.git_head()}; "
        f"{machine['nproc']} × {machine['cpu']}, Python {machine['python']}, "
        f"SQLite {sqlite3.sqlite_version}. "
        f"The machine was {med(busy):.0%} busy during the wrk rounds (median; min {min(busy):.0%}, "
        f"max {max(busy):.0%}), most of it the benchmark itself (wrk and the server on 2 cores).",
        "",
        "### `cdht demo` (fresh file; migrations, seeds and the demo)",
        "",
        "| driver | seconds (median) | rounds |",
        "|---|---:|---|",
    ]
    for driver in DRIVERS:
        lines.append(
            f"| {driver} | {med(demo[driver]):.1f} | {', '.join(f'{s:.1f}' for s in demo[driver])} |"
        )
    lines += [
        "",
        "### In process (µs per call, median of the rounds)",
        "",
        "| call | sqlite3 alone | engine on aiosqlite | engine on the driver | aiosqlite / driver |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, per in stmts.items():
        plain = f"{med(per['sqlite3']):,.0f}" if "sqlite3" in per else "–"
        a, d = med(per["aiosqlite"]), med(per["driver"])
        lines.append(f"| {kind} | {plain} | {a:,.0f} | {d:,.0f} | {a / d:.1f}× |")
    lines += [
        "",
        "### HTTP (`wrk -t1 -c8`, one worker per server, medians of the rounds)",
        "",
        "| endpoint | aiosqlite req/s | driver req/s | ratio | aiosqlite p95 ms | driver p95 ms "
        "| aiosqlite CPU µs/req | driver CPU µs/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, per in http.items():
        a, d = per["aiosqlite"], per["driver"]
        ar, dr = med([r.rps for r in a]), med([r.rps for r in d])
        lines.append(
            f"| `{name}` | {ar:,.0f} | {dr:,.0f} | {dr / ar:.2f}× | {med([r.p95_ms for r in a]):.1f} "
            f"| {med([r.p95_ms for r in d]):.1f} | {med([r.app_us for r in a]):,.0f} "
            f"| {med([r.app_us for r in d]):,.0f} |"
        )
    lines += [
        "",
        "The driver runs each sqlite3 call at once in the event loop's thread; aiosqlite sends each call "
        "(cursor, execute, fetch, close) to the connection's thread and waits to be woken. The HTTP rows "
        "count every statement of a request, the subject's read included.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (statements and wrk)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk round")
    parser.add_argument("--demo-rounds", type=int, default=2, help="alternating `cdht demo` runs")
    parser.add_argument("--calls", type=int, default=4000, help="primary-key SELECTs per round")
    parser.add_argument("--write-results", action="store_true", help="replace the section of RESULTS.md")
    args = parser.parse_args()
    wrk = rh.ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="cdht-sqlite-driver-") as tmp:
        work = Path(tmp)
        demo, var = demo_rounds(work, args.demo_rounds)
        stmts = asyncio.run(statements(str(var / "cdht.db"), args.rounds, args.calls))
        http = serve_rounds(var, args.rounds, args.duration, wrk)
    section = report(demo, stmts, http, args)
    print(section)
    if args.write_results:
        ra.write_results(section, title=SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
