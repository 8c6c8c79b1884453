"""Dashboard reads through a read replica against the primary alone (issue #18: the primary's CPU for
dashboards should drop to about 0, p95 unchanged).

    .venv/bin/python bench/generate_national.py --people 20000 --recreate \\
        --url postgresql://postgres@127.0.0.1:5432/cdht_replica_bench
    .venv/bin/python bench/run_replica.py --write-results

In one run:

1. Makes a streaming replica of the local cluster (``pg_basebackup -R -X stream`` into a temporary
   directory, run by the ``postgres`` user, started with ``pg_ctl`` on 127.0.0.1:5433), which needs
   ``host replication all 127.0.0.1/32 trust`` in the cluster's pg_hba.conf (``.ci/run`` adds it).
2. Alternates ``--rounds`` times: the real server (uvicorn, one process, as ``run_aggregates.py`` starts it)
   with ``CDHT_READ_DATABASE_URL`` naming the replica, then without; each round drives
   ``/aggregates/progress`` and ``/aggregates/breakdown`` (``staff_recognised_pct``) at the nation, the
   largest province and the largest commune in turn with ``wrk`` (installed with apt-get if missing;
   ``--connections`` keep-alive connections, ``--seconds`` per round) as the bench admin.
3. Measures, per round: requests per second, p50/p95/p99 (wrk's own latency histogram), non-2xx answers,
   and the CPU time (utime + stime from ``/proc/PID/stat``) of the **primary's backends serving the bench
   database** (pids from ``pg_stat_activity``, read before and after the round, so other sessions on the
   shared cluster are not counted), of the replica's processes, and of the server process.
4. Prints a section (with the machine's load) and, with ``--write-results``, writes "Read replicas" of
   ``RESULTS.md``. Stops and deletes the replica; ``--drop`` drops the bench database at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import httpx
import run_aggregates as ra
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/cdht_replica_bench"
SECTION = "## Read replicas (issue #18)"
TICK = os.sysconf("SC_CLK_TCK")
LUA = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["Authorization"] = "Bearer %s"})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%.3f %%.3f %%.3f %%.3f\\n", summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise ra.BenchFailure(f"{name} not found under /usr/lib/postgresql/*/bin")
    return found[-1]


def as_postgres(*argv: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *argv], check=True, capture_output=True, text=True)


def maintenance(url: str) -> str:
    """The server's ``postgres`` database."""
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def psql(url: str, sql: str) -> str:
    done = subprocess.run(["psql", url, "-Atqc", sql], check=True, capture_output=True, text=True)
    return done.stdout.strip()


class Replica:
    """A streaming replica of the cluster ``url`` names, in a temporary directory, on ``port``."""

    def __init__(self, url: str, port: int) -> None:
        self.url, self.port = url, port
        self.root = Path(tempfile.mkdtemp(prefix="cdht-replica-bench-"))
        self.data = self.root / "data"

    def __enter__(self) -> Replica:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self.root.chmod(0o700)
        primary = make_url(self.url)
        as_postgres(
            postgres_bin("pg_basebackup"), "-h", primary.host or "127.0.0.1", "-p", str(primary.port or 5432),
            "-U", primary.username or "postgres", "-D", str(self.data), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        names = "'max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions'"
        rows = psql(maintenance(self.url), f"SELECT name, setting FROM pg_settings WHERE name IN ({names})")
        conf = "".join(f"{line.replace('|', ' = ')}\n" for line in rows.splitlines()) + "hot_standby = on\n"
        (self.data / "postgresql.conf").write_text(conf)
        (self.data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        (self.data / "pg_ident.conf").write_text("")
        if os.geteuid() == 0:
            for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
                shutil.chown(self.data / name, "postgres")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
        as_postgres(
            postgres_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "start",
        )
        return self

    def __exit__(self, *_: object) -> None:
        if (self.data / "postmaster.pid").exists():
            as_postgres(postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def database_url(self) -> str:
        return make_url(self.url).set(port=self.port).render_as_string(hide_password=False)

    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])


def ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def children(pid: int) -> list[int]:
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.split("/")[2]))
    return [pid, *found]


def bench_backends(url: str) -> list[int]:
    """The primary's backends connected to the bench database (the server's pool; not this psql)."""
    database = make_url(url).database
    sql = f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    return [int(p) for p in psql(maintenance(url), sql).split()]


def cpu_of(pids: set[int], start: dict[int, int]) -> float:
    return sum(max(0, ticks(pid) - start.get(pid, 0)) for pid in pids) / TICK


@dataclass
class Round:
    mode: str  # "replica" or "primary"
    requests: int
    errors: int
    seconds: float
    p50: float
    p95: float
    p99: float
    primary_cpu: float
    replica_cpu: float
    server_cpu: float
    busy: float
    reads: dict[str, int]  # the server's cdht_replica_reads_total by target, warm-up included

    @property
    def off_replica(self) -> int:
        """Dashboard reads the router kept on the primary (fallback or a recent write)."""
        return self.reads.get("fallback", 0) + self.reads.get("recent_write", 0)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def per_1000(self, cpu: float) -> float:
        return cpu / self.requests * 1000


def one_round(args: argparse.Namespace, mode: str, replica: Replica, paths: list[str]) -> Round:
    with tempfile.TemporaryDirectory() as var:
        env = ra.server_env(args.url, var)
        if mode == "replica":
            env |= {"CDHT_READ_DATABASE_URL": replica.database_url()}
        with (
            ra.served(env, ra._free_port()) as (base, server_pid),
            httpx.Client(base_url=base, timeout=60) as c,
        ):
            ra.login(c)
            token = c.headers["Authorization"].split()[1]
            for path in paths:  # warm: caches, the pool, the replica's lag poll
                assert c.get(path).status_code == 200
            script = Path(var) / "paths.lua"
            script.write_text(LUA % (", ".join(f'"{p}"' for p in paths), token))
            before_backends = set(bench_backends(args.url))
            replica_pids = set(children(replica.postmaster()))
            watched = before_backends | replica_pids | {server_pid}
            start = {pid: ticks(pid) for pid in watched}
            load = ra.cpu_times()
            out = subprocess.run(
                ["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "-s", str(script), base],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            busy = ra.busy_since(load)
            backends = before_backends | set(bench_backends(args.url))
            primary_cpu = cpu_of(backends, start)
            replica_cpu = cpu_of(replica_pids | set(children(replica.postmaster())), start)
            server_cpu = cpu_of({server_pid}, start)
            reads = replica_reads(c.get("/metrics").text)
    found = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)", out)
    if not found:
        raise ra.BenchFailure(f"wrk printed no result:\n{out}")
    requests, errors = int(found[1]), int(found[2])
    seconds, p50, p95, p99 = (float(found[i]) for i in range(3, 7))
    return Round(
        mode, requests, errors, seconds, p50, p95, p99, primary_cpu, replica_cpu, server_cpu, busy, reads
    )


def replica_reads(metrics: str) -> dict[str, int]:
    """``cdht_replica_reads_total`` by target from the server's ``/metrics`` (the bench admin's token)."""
    found = re.findall(r'^cdht_replica_reads_total\{target="(\w+)"\} ([\d.e+]+)$', metrics, re.M)
    return {target: int(float(value)) for target, value in found}


def render(rounds: list[Round], args: argparse.Namespace, load: str, units: dict[str, int]) -> str:
    lines = [
        SECTION,
        "",
        f"`bench/run_replica.py` on `{make_url(args.url).database}` ({args.people_note}), "
        f"{date_now()}: `/aggregates/progress` and `/aggregates/breakdown` (staff_recognised_pct) at the "
        f"nation, the largest province and the largest commune in turn, driven by `wrk` (1 thread, "
        f"{args.connections} keep-alive connections, {args.seconds} s per round) against the real server "
        "(uvicorn, one process), rounds alternating with and without `CDHT_READ_DATABASE_URL` (a streaming "
        "replica of the same cluster on 127.0.0.1:5433, same machine). CPU: utime + stime from `/proc` of "
        "the primary's backends connected to the bench database (the server's pool, as listed by "
        "`pg_stat_activity` before and after the round: other sessions on the shared cluster are not "
        "counted), of all the replica's processes, and of the server process. Reads on the replica / kept "
        "on the primary: the server's own `cdht_replica_reads_total` at the round's end (`replica` / "
        "`fallback` + `recent_write`; warm-up included; none in primary-only rounds, which have no "
        "replica). Machine: "
        f"{load}.",
        "",
        "| round | mode | req/s | p50 ms | p95 ms | p99 ms | non-2xx | primary CPU s (per 1000 req) | "
        "replica CPU s | server CPU s | reads on the replica / kept on the primary | machine busy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rounds, 1):
        lines.append(
            f"| {i} | {r.mode} | {r.rps:.0f} | {r.p50:.1f} | {r.p95:.1f} | {r.p99:.1f} | {r.errors} | "
            f"{r.primary_cpu:.2f} ({r.per_1000(r.primary_cpu):.3f}) | {r.replica_cpu:.2f} | "
            f"{r.server_cpu:.2f} | {r.reads.get('replica', 0):,} / {r.off_replica:,} | {r.busy:.0%} |"
        )
    summary = []
    for mode in ("replica", "primary"):
        mine = [r for r in rounds if r.mode == mode]
        rps, p95 = median(r.rps for r in mine), median(r.p95 for r in mine)
        primary = median(r.per_1000(r.primary_cpu) for r in mine)
        replica = median(r.per_1000(r.replica_cpu) for r in mine)
        summary.append(
            f"- **{mode}** (median of {len(mine)} rounds): {rps:.0f} req/s, p95 {p95:.1f} ms, primary CPU "
            f"{primary:.3f} s per 1000 requests, replica CPU {replica:.3f} s per 1000."
        )
    lines += ["", *summary, "", f"Command: `.venv/bin/python bench/run_replica.py {' '.join(sys.argv[1:])}`."]
    return "\n".join(lines) + "\n"


def date_now() -> str:
    return time.strftime("%Y-%m-%d")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"a database loaded by generate_national.py ({DEFAULT_URL})"
    )
    parser.add_argument("--port", type=int, default=5433, help="the replica's port")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per mode (alternating)")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--drop", action="store_true", help="drop the bench database at the end")
    parser.add_argument(
        "--write-results", action="store_true", help=f"write the section of {ra.RESULTS.name}"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    units = asyncio.run(ra.inspect(args.url, report := {}))
    people = re.search(r"--people (\d+)", report.get("generator", {}).get("command", ""))
    args.people_note = f"{int(people[1]):,} people" if people else "generated"
    year = ra.YEAR
    paths = []
    for unit in units.values():
        paths.append(f"/api/v1/aggregates/progress?org_unit_id={unit}&year={year}")
        paths.append(f"/api/v1/aggregates/breakdown?org_unit_id={unit}&year={year}&metric={ra.METRIC}")
    rounds: list[Round] = []
    try:
        with Replica(args.url, args.port) as replica:
            for i in range(args.rounds):
                for mode in ("replica", "primary") if i % 2 == 0 else ("primary", "replica"):
                    r = one_round(args, mode, replica, paths)
                    print(
                        f"round {len(rounds) + 1} {mode}: {r.rps:.0f} req/s p95 {r.p95:.1f} ms, primary CPU "
                        f"{r.primary_cpu:.2f} s, replica CPU {r.replica_cpu:.2f} s, non-2xx {r.errors}",
                        flush=True,
                    )
                    rounds.append(r)
    finally:
        if args.drop:
            psql(
                maintenance(args.url), f'DROP DATABASE IF EXISTS "{make_url(args.url).database}" WITH (FORCE)'
            )
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    averages = uptime.split("load average:")[-1].strip()
    load = f"`uptime` load average {averages} at the end, nproc {os.cpu_count()}"
    section = render(rounds, args, load, units)
    print(section)
    if any(r.errors for r in rounds):
        raise ra.BenchFailure("non-2xx answers during the run")
    if args.write_results:
        ra.write_results(section, title=SECTION)
        print(f"results written to {ra.RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
