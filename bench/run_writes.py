"""Re-measure only the write path of ``run_aggregates.py`` on an existing bench database (no reads, no
naive recounts): both modes in alternating blocks, then the no-op run revoked and a full rebuild compared
with the live counters cell by cell. Prints the totals; ``RESULTS.md`` records them by hand.

    .venv/bin/python bench/run_writes.py [--writes 100] [--commune ID] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_aggregates as ra

from app.core.db import make_sessionmaker


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as var:
        env = ra.server_env(args.url, var)
        with ra.server(env, ra._free_port()) as base, httpx.Client(base_url=base, timeout=120) as client:
            ra.login(client)
            async with ra.engine_for(args.url) as engine:
                idle = ra.wait_quiet(argparse.Namespace(quiet_wait=args.quiet_wait, quiet_busy=0.25))
                start = ra.cpu_times()
                sessions = make_sessionmaker(engine)
                runs, rebuild_s = await ra.measure_writes(sessions, client, args.commune, args)
                busy = ra.busy_since(start)
    live, noop = runs["live"].total(), runs["no-op"].total()
    print(f"CPU idle before {idle:.0%}, busy during {busy:.0%}; rebuild {rebuild_s:.0f} s")
    print(f"whole path: live {live:.2f} s, no-op {noop:.2f} s, ratio {live / noop:.2f}x (goal <= 2x)")
    for mode, run in runs.items():
        print(mode, {step: f"{sum(times):.2f} s" for step, times in run.steps.items()})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=ra.DEFAULT_URL)
    parser.add_argument("--writes", type=int, default=100, help="evaluations and households per mode")
    parser.add_argument("--block", type=int, default=25)
    parser.add_argument("--commune", type=int, default=28881, help="the commune of the write path (its id)")
    parser.add_argument("--quiet-wait", type=float, default=180)
    parsed = parser.parse_args()
    parsed.naive_after = False
    asyncio.run(main(parsed))
