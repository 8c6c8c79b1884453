"""This tree's service against the same service at another commit (issue #15), through ``wrk``, in
interleaved rounds on one machine in one run.

    .venv/bin/python bench/run_ab.py --baseline 039c445                    # endpoints and the mix
    .venv/bin/python bench/run_ab.py --baseline 039c445 --write-results    # and its section of RESULTS.md

Why: this machine is shared, and its speed drifts by a third within an hour (``bench/RESULTS.md``: the
CPU time of an unchanged ``/me`` went from 2,050 to 3,319 µs a request between two runs 20 minutes apart).
A ``run_http.py`` run of the earlier code followed by one of the new code measures the drift as much as
the change. Here both versions serve at once, against one database, and each round goes to the baseline,
then to this tree, then to the baseline again …, so both meet the same machine; the figure is the ratio of
the medians (this tree over the baseline), with the CPU each used per request.

1. ``git worktree add --detach`` of ``--baseline`` into a temporary folder (removed at the end). The
   baseline is the same ``cdht serve`` of this virtualenv with ``PYTHONPATH`` set to that folder, so its
   ``app`` package is the baseline's; refused when the two differ in ``migrations/`` or
   ``pyproject.toml`` (one database and one virtualenv serve both).
2. The database of ``run_http.py`` (``cdht demo``, the bench admin) and the December mix's schools
   (``bench/december_setup.py``, through this tree's service). Both services share the var directory, so
   each one's commits reach the other's kept copies (``app/core/generations.py``).
3. ``run_http.py``'s endpoints (``/me``, ``/org-units``, ``/aggregates/progress``, ``/evaluations``,
   ``GET /evaluations/{id}`` as the assessor of a mix school, a page of 50 descendants of the demo's root as
   the bench admin), then the December mix (``bench/wrk_mix.lua``,
   a request list written afresh before each round), ``--rounds`` rounds each, ``wrk -t1``, both services
   with ``--workers`` workers.
4. Prints the section; ``--write-results`` replaces "HTTP: this tree against a baseline (issue #15)" in
   ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import platform
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import december_setup as dec
import httpx
import run_http as h

SECTION = "## HTTP: this tree against a baseline (issue #15)"


@dataclass
class Measured:
    name: str
    rounds: dict[str, list[h.Round]]  # "baseline" / "tree" → its rounds


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=h.ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise h.BenchFailure(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


@contextlib.contextmanager
def worktree(commit: str) -> Any:
    folder = Path(tempfile.mkdtemp(prefix="cdht-baseline-"))
    git("worktree", "add", "--detach", str(folder), commit)
    try:
        yield folder
    finally:
        git("worktree", "remove", "--force", str(folder))


def same_schema_and_dependencies(commit: str) -> None:
    changed = git("diff", "--name-only", commit, "HEAD", "--", "migrations", "pyproject.toml")
    if changed:
        raise h.BenchFailure(
            f"{commit} and HEAD differ in {changed.split()}: "
            "one database and one virtualenv cannot serve both"
        )


def alternate(name: str, targets: list[h.Target], rounds: int, once: Any, *, log: bool = True) -> Measured:
    """``rounds`` rounds of ``once(target)``, alternating baseline and tree, each pair in turn starting
    with the other so neither always follows the same one."""
    found: dict[str, list[h.Round]] = {t.name: [] for t in targets}
    for n in range(rounds):
        for t in targets if n % 2 == 0 else reversed(targets):
            r = once(t)
            found[t.name].append(r)
            if log:
                print(
                    f"  {name:28} {t.name:8} round {n + 1}: {r.rps:8.1f} req/s  p95 {r.p95_ms:7.1f} ms  "
                    f"CPU {r.app_us:6.0f} + {r.db_us:5.0f} µs/req  busy {r.busy:.0%}  "
                    f"non-2xx/3xx {r.non_2xx_3xx}",
                    flush=True,
                )
    return Measured(name, found)


def run(args: argparse.Namespace, work: Path, baseline: Path) -> dict[str, Any]:
    wrk = h.ensure_wrk()
    env = {
        **os.environ,
        "CDHT_DATABASE_URL": f"{h.SERVER}/{h.DATABASE}",
        "CDHT_SECRET_KEY": secrets.token_urlsafe(36),
        "CDHT_ENV": "production",
        "CDHT_VAR_DIR": str(work / "var"),
        "CDHT_ACCESS_TOKEN_MINUTES": "15",
    }
    env.pop("PYTHONPATH", None)
    result: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "load_before": os.getloadavg(),
        "wrk": h.wrk_version(wrk),
    }
    t0 = time.monotonic()
    h.psql(f'DROP DATABASE IF EXISTS "{h.DATABASE}" WITH (FORCE)')
    h.psql(f'CREATE DATABASE "{h.DATABASE}"')
    print(f"database {h.DATABASE}: migrate, seed, demo …", flush=True)
    for step in ("migrate", "seed", "demo"):
        h.cdht(step, env=env)
    h.cdht("create-admin", "--username", "bench.admin", env={**env, "CDHT_ADMIN_PASSWORD": dec.PASSWORD})
    with contextlib.ExitStack() as stack:
        targets = []
        for name, extra in (("baseline", {"PYTHONPATH": str(baseline)}), ("tree", {})):
            port = h.free_port()
            base = f"http://127.0.0.1:{port}"
            command = [h.CDHT, "serve", "--host", "127.0.0.1", "--port", str(port)]
            command += ["--workers", str(args.workers)]
            ready, log = f"{base}/readyz", work / f"{name}.log"
            what = f"cdht serve ({name})"
            pid = stack.enter_context(h.started(command, {**env, **extra}, ready, what, log))
            targets.append(h.Target(name, base, pid))
        tree = targets[1].base
        print("both services started; the mix's schools …", flush=True)
        people = asyncio.run(h.populate_mix(tree, args.schools, args.members))
        school = people.schools[0]
        some_evaluation = school["members"][0][1]

        measured: list[Measured] = []
        token = h.login(tree, args.user, args.password)
        province = h.province_id(tree, token, args.province)
        found, _ = h.endpoints(tree, token, province)
        # Tokens of 15 minutes: the endpoints' rounds and the mix's take less together.
        heads = h.mix_logins(tree, people)
        runs = [
            (e.name, e.path, {"Authorization": f"Bearer {token}", **e.headers})
            for e in found
            if e.name != "/healthz"
        ]
        view = f"{h.API}/evaluations/{some_evaluation}"
        runs.append(("/evaluations/{id}", view, heads[school["assessor"]]))
        admin = {"Authorization": f"Bearer {h.login(tree, 'bench.admin', dec.PASSWORD)}"}
        root = httpx.get(f"{tree}{h.API}/org-units", headers=admin, timeout=30).json()["items"][0]["id"]
        runs.append(("descendants, 50 a page", f"{h.API}/org-units/{root}/descendants?limit=50", admin))
        for name, path, headers in runs:
            measured.append(
                alternate(
                    name,
                    targets,
                    args.rounds,
                    lambda t, path=path, headers=headers: h.run_wrk(
                        wrk,
                        t.base + path,
                        seconds=args.duration,
                        connections=args.connections,
                        headers=headers,
                        server_pid=t.pid,
                    ),
                )
            )

        seeds = itertools.count()

        def mix_round(t: h.Target) -> h.Round:
            path = work / f"mix-{t.name}.lua"
            h.write_mix(t.base, people, heads, path, args.mix_requests, seed=next(seeds))
            return h.run_wrk(
                wrk,
                t.base,
                seconds=args.mix_seconds,
                connections=args.mix_connections,
                script=h.BENCH / "wrk_mix.lua",
                script_args=[str(path)],
                server_pid=t.pid,
            )

        measured.append(alternate("December mix", targets, args.mix_rounds, mix_round))
    result["measured"] = measured
    result["load_after"] = os.getloadavg()
    result["seconds"] = time.monotonic() - t0
    return result


def report(result: dict[str, Any], args: argparse.Namespace, head: str) -> str:
    lines = [
        SECTION,
        "",
        f"{result['started']} UTC · this tree: git {head} · baseline: git {args.baseline} · "
        f"`python bench/run_ab.py --baseline {args.baseline}` · {platform.platform()} · "
        f"nproc {os.cpu_count()} · {result['wrk']} · PostgreSQL on the same machine. Load average before "
        f"{'/'.join(f'{x:.2f}' for x in result['load_before'])}, after "
        f"{'/'.join(f'{x:.2f}' for x in result['load_after'])}. Run: {result['seconds'] / 60:.0f} min.",
        "",
        f"Both versions served at once (`cdht serve --workers {args.workers}` each, one database, the "
        f"baseline's `app/` from a worktree on `PYTHONPATH`); {args.rounds} rounds of {args.duration} s "
        f"per endpoint (`wrk -t1 -c{args.connections}`) and {args.mix_rounds} rounds of "
        f"{args.mix_seconds} s of the December mix (`-c{args.mix_connections}`, {args.schools} schools × "
        f"{args.members} members, the "
        "request list written afresh before each round), alternating baseline and tree, each pair in turn "
        "starting with the other. Medians; ratio = tree over baseline. CPU µs per request: the service's "
        "processes (uvicorn and its workers) plus PostgreSQL's backends, from `/proc`. Endpoints as in the "
        "section above, as `quangngai.admin`; `/evaluations/{id}`: one of a mix school's evaluations, as "
        "its assessor; descendants: `/org-units/{root}/descendants?limit=50`, the first 50 units under the "
        "demo's root, as the bench admin.",
        "",
        "| what | baseline req/s | tree req/s | ratio | baseline CPU µs/req | tree CPU µs/req | CPU ratio "
        "| p95 ms (baseline → tree) | non-2xx/3xx (baseline, tree) | busy |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for m in result["measured"]:
        b, t = m.rounds["baseline"], m.rounds["tree"]
        b_rps, t_rps = h.median([r.rps for r in b]), h.median([r.rps for r in t])
        b_cpu = h.median([r.app_us + r.db_us for r in b])
        t_cpu = h.median([r.app_us + r.db_us for r in t])
        b_p95, t_p95 = h.median([r.p95_ms for r in b]), h.median([r.p95_ms for r in t])
        lines.append(
            f"| `{m.name}` | {b_rps:,.1f} | {t_rps:,.1f} | **{t_rps / b_rps:.2f}** | {b_cpu:,.0f} "
            f"| {t_cpu:,.0f} | {t_cpu / b_cpu:.2f} | {b_p95:.1f} → {t_p95:.1f} "
            f"| {sum(r.non_2xx_3xx for r in b)}, {sum(r.non_2xx_3xx for r in t)} "
            f"| {h.median([r.busy for r in b + t]):.0%} |"
        )
    lines += [
        "",
        "Rounds (req/s, in the order run): "
        + "; ".join(
            f"`{m.name}` baseline {', '.join(f'{r.rps:.0f}' for r in m.rounds['baseline'])}, tree "
            f"{', '.join(f'{r.rps:.0f}' for r in m.rounds['tree'])}"
            for m in result["measured"]
        )
        + ". The mix's non-2xx are 409s of a versioned write that raced another (`run_http.py` counts "
        "them as refused, not errors).",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, help="the commit to measure this tree against")
    parser.add_argument("--workers", type=int, default=2, help="workers of each service (2)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per endpoint, alternating (4)")
    parser.add_argument("--duration", type=int, default=6, help="seconds per endpoint round (6)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--mix-rounds", type=int, default=6, help="rounds of the mix, alternating (6)")
    parser.add_argument("--mix-seconds", type=int, default=15)
    parser.add_argument("--mix-connections", type=int, default=8)
    parser.add_argument("--mix-requests", type=int, default=2000)
    parser.add_argument("--schools", type=int, default=8)
    parser.add_argument("--members", type=int, default=25)
    parser.add_argument("--user", default="quangngai.admin")
    parser.add_argument("--password", default="demo-password")
    parser.add_argument("--province", default="51")
    parser.add_argument("--write-results", action="store_true", help=f"write its section of {h.RESULTS.name}")
    args = parser.parse_args()
    args.baseline = git("rev-parse", "--short", args.baseline)
    same_schema_and_dependencies(args.baseline)
    head = h.git_head()
    with tempfile.TemporaryDirectory(prefix="cdht-ab-") as tmp, worktree(args.baseline) as baseline:
        try:
            result = run(args, Path(tmp), baseline)
        finally:
            h.psql(f'DROP DATABASE IF EXISTS "{h.DATABASE}" WITH (FORCE)')
    section = report(result, args, head)
    print("\n" + section)
    if args.write_results:
        h.write_results(section, title=SECTION)
        print(f"results written to {h.RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
