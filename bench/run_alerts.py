"""Time ``GET /alerts`` and ``GET /reporting/completeness`` at the nation and a province on a database loaded
by ``bench/generate_national.py`` (goal: p95 ≤ 100 ms each).

    .venv/bin/python bench/run_alerts.py                       # 200 timed requests per series
    .venv/bin/python bench/run_alerts.py --requests 20 --url postgresql://…/cdht_bench_smoke

In one run:

1. Gives the year a reporting calendar if it has none (the nation's provinces due 15 January of the next
   year, every commune 10 January: rows of ``reporting_calendars``, ``source='user'``), so that
   ``report_overdue`` and completeness have due dates to judge; then (unless ``--no-submissions``) every
   child of the nation and of the province with data submits its report over HTTP, so completeness
   compares each submission with the live numbers. Both stay in the database for the next run.
2. Starts the real server as ``run_aggregates.py`` does (uvicorn, one worker, 127.0.0.1, the bench admin)
   and reads over HTTP with one keep-alive client, ``--warmup`` untimed then ``--requests`` timed requests
   per series: ``/aggregates/progress`` (the baseline: the dashboards' read, measured in the same run so
   machine noise shows in both), ``/alerts`` (depth 1; ``--depth2``: at the province depth 2 too, not a
   goal) and
   ``/reporting/completeness`` at the nation and the largest province (by people).
3. Prints the figures with the machine's load (``uptime``, ``nproc``, CPU busy during each series) and
   writes the section "Alerts and completeness at national scale" of ``RESULTS.md`` with
   ``--write-results`` (others' sections are kept).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import run_aggregates as ra
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Alerts and completeness at national scale"
GOAL_P95_MS = 100.0
YEAR = 2025


# What the profile showed (in process, same database; see the report of the run that added this file).
NOTES = """Where the time goes (in process on the same database, every SQL statement timed; 2026-12-03):

- `review_waiting` reads the rolled-up queue (`review_queue_counts`, kept by the evaluation workflow per
  unit, year and day submitted): 5–20 ms where counting the 710,844 waiting evaluations took ~280 ms.
- Current submissions: the latest version is the one not superseded, a plain filter on (year, unit). The
  "no later version" / GROUP BY-joined-back forms were planned as loops over the year's every submission
  (25–250 ms for a province's 300, worst while the table's statistics lag behind new submissions).
- Due dates: the listed units' ancestors of that day through `(descendant_id, ancestor_id)`, then the
  calendar entries of those ancestors (two reads of a few hundred rows); as one join PostgreSQL drove it
  from the setters and read the nation's whole subtree of links (~30 ms for 35 units).
- `changed_since_submission`: a submission keeps the sum of its unit's counter versions
  (`aggregate_versions`, bumped when a transaction that wrote counters commits); an equal sum proves the
  numbers unchanged (~1 ms for 311 children). Only children whose counters were written since they
  submitted are fingerprinted (the counters of their subtree summed by the database): when **all** 311
  children of the province were written since, completeness costs ~140 ms more (measured in process at
  load ~4.6 on 2 cores) — the case this bench does not time.
"""


@dataclass
class Row:
    endpoint: str
    level: str
    params: dict[str, Any]
    times_ms: list[float]
    items: int
    busy: float
    goal: bool

    @property
    def p50(self) -> float:
        return ra.percentile(self.times_ms, 50)

    @property
    def p95(self) -> float:
        return ra.percentile(self.times_ms, 95)


async def prepare(url: str, year: int) -> dict[str, int]:
    """The units to measure, and a reporting calendar for ``year`` if it has none."""
    async with ra.engine_for(url) as engine:
        nation = await ra.scalar(
            engine, "SELECT id FROM org_units WHERE parent_id IS NULL ORDER BY id LIMIT 1"
        )
        province = await ra.scalar(
            engine,
            """SELECT u.id FROM org_units u JOIN aggregate_counts a ON a.org_unit_id = u.id
               WHERE u.kind = 'province' AND u.valid_to IS NULL AND a.kind = 'people'
               GROUP BY u.id ORDER BY sum(a.n) DESC, u.id LIMIT 1""",
        )
        async with engine.begin() as conn:
            for kind, due in (("", date(year + 1, 1, 15)), ("commune", date(year + 1, 1, 10))):
                await conn.execute(
                    text(
                        "INSERT INTO reporting_calendars (org_unit_id, year, kind, due_on, source,"
                        " updated_at, version) VALUES (:u, :y, :k, :d, 'user', now(), 1)"
                        " ON CONFLICT DO NOTHING"
                    ),
                    {"u": nation, "y": year, "k": kind, "d": due},
                )
        return {"nation": int(nation), "province": int(province)}


def submit_children(client: httpx.Client, levels: dict[str, int], year: int) -> int:
    """Every child of the measured units that has data and no current report submits one (over HTTP, as
    the bench admin), so that completeness compares each with its live numbers
    (``changed_since_submission``). Kept in the database: a second run submits nothing."""
    made = 0
    for unit in levels.values():
        r = client.get("/api/v1/reporting/completeness", params={"org_unit_id": unit, "year": year})
        r.raise_for_status()
        for child in r.json()["items"]:
            if child["status"] == "not_submitted":
                s = client.post(
                    "/api/v1/report-submissions", json={"org_unit_id": child["org_unit_id"], "year": year}
                )
                if s.status_code == 201:
                    made += 1
                elif s.status_code != 409:  # 409: nothing to report (no evaluation in its subtree)
                    s.raise_for_status()
    return made


def series(client: httpx.Client, args: argparse.Namespace, levels: dict[str, int]) -> list[Row]:
    plan: list[tuple[str, str, dict[str, Any], bool]] = []
    for level, unit in levels.items():
        base = {"org_unit_id": unit, "year": args.year}
        plan += [
            ("/api/v1/aggregates/progress", level, base, False),
            ("/api/v1/alerts", level, base, True),
            ("/api/v1/reporting/completeness", level, base, True),
        ]
        if level == "province" and args.depth2:
            plan.append(("/api/v1/alerts", level, {**base, "depth": 2}, False))
    rows = []
    for path, level, params, goal in plan:
        ra.wait_quiet(args)
        start = ra.cpu_times()
        times, body = ra.measure(client, path, params, args.warmup, args.requests)
        items = body.get("total", len(body.get("items", body.get("metrics", []))))
        rows.append(
            Row(path.removeprefix("/api/v1"), level, params, times, items, ra.busy_since(start), goal)
        )
        last = rows[-1]
        print(f"  {last.endpoint} {level} {params}: p50 {last.p50:.1f} ms, p95 {last.p95:.1f} ms", flush=True)
    return rows


def render(rows: list[Row], names: dict[str, str], load: str, command: str) -> str:
    lines = [
        SECTION,
        "",
        f"`{command}` on {date.today().isoformat()}; {load}. One keep-alive client, sequential requests,",
        "client-side wall time; `/aggregates/progress` is the baseline read in the same run.",
        "",
        "| endpoint | level | params | items | p50 ms | p95 ms | goal p95 ≤ 100 ms | CPU busy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        extra = ", ".join(f"{k}={v}" for k, v in r.params.items() if k not in ("org_unit_id", "year")) or "—"
        verdict = ("met" if r.p95 <= GOAL_P95_MS else "**missed**") if r.goal else "(baseline / not a goal)"
        lines.append(
            f"| `{r.endpoint}` | {r.level} ({names[r.level]}) | {extra} | {r.items} | {r.p50:.1f} | "
            f"{r.p95:.1f} | {verdict} | {r.busy:.0%} |"
        )
    return "\n".join([*lines, "", NOTES]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=ra.DEFAULT_URL)
    parser.add_argument("--year", type=int, default=YEAR)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    parser.add_argument("--quiet-busy", type=float, default=0.25)
    parser.add_argument(
        "--no-submissions", action="store_true", help="do not submit the children's reports first"
    )
    parser.add_argument("--depth2", action="store_true", help="also /alerts?depth=2 at the province")
    parser.add_argument("--write-results", action="store_true", help=f"write {ra.RESULTS.name}")
    args = parser.parse_args()

    levels = asyncio.run(prepare(args.url, args.year))
    with tempfile.TemporaryDirectory() as var:
        env = ra.server_env(args.url, var)
        names = {}
        with (
            ra.server(env, args.port or ra._free_port()) as base,
            httpx.Client(base_url=base, timeout=60) as c,
        ):
            ra.login(c)
            for level, unit in levels.items():
                names[level] = c.get(f"/api/v1/org-units/{unit}").json()["name"]
            if not args.no_submissions:
                t0 = time.monotonic()
                made = submit_children(c, levels, args.year)
                print(f"report submissions made: {made} ({time.monotonic() - t0:.0f} s)", flush=True)
            t0 = time.monotonic()
            rows = series(c, args, levels)
            print(f"({time.monotonic() - t0:.0f} s)")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    load = f"`uptime`: {uptime.split('load average:')[-1].strip()} (load average), nproc {os.cpu_count()}"
    command = ".venv/bin/python bench/run_alerts.py " + " ".join(sys.argv[1:])
    section = render(rows, names, load, command.strip())
    print(section)
    if args.write_results:
        ra.write_results(section, title=SECTION)
        print(f"results written to {ra.RESULTS.relative_to(ROOT)}")
    if any(r.goal and r.p95 > GOAL_P95_MS for r in rows):
        print(
            "goal missed (p95 > 100 ms) for:", [(r.endpoint, r.level) for r in rows if r.goal and r.p95 > 100]
        )


if __name__ == "__main__":
    main()
