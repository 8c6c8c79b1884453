"""Upload bombs (issue 14): what refusing each one costs the real server, in memory and in time.

Creates a SQLite database of its own in a temporary directory, loads the demo (``cdht demo``), starts the
real server (uvicorn, one process, 127.0.0.1) and, as the demo's users, sends each bomb ``--repeat`` times:
evidence (ODT, DOCX, XLSX whose one part inflates to 1 GB; an ODT whose directory lies about that part),
then XLSX imports (a 1 GB shared string, 512 MB of empty ``<row/>``, a sheet whose directory lies, 150,000
numbered empty rows that compress only ~20 times, a DTD). For each upload it records the server's peak RSS
above its RSS just before (``/proc/PID/clear_refs`` resets the high-water mark, ``VmHWM`` reads it) and
the client's wall time; a normal PDF and a normal XLSX import are measured the same way for comparison.
The bombs are the test suite's own builders (``tests/security/test_bombs.py``). Goal per refused upload:
< 100 MB extra RSS and < 2 s. Prints the section "Upload bombs (issue #14)" for ``bench/RESULTS.md``.

    .venv/bin/python bench/run_bombs.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import run_aggregates as ra

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CDHT = str(ROOT / ".venv" / "bin" / "cdht")
API = "/api/v1"
DEMO_PASSWORD = "demo-password"
GOAL_MB, GOAL_SECONDS = 100, 2.0


server = ra.served  # its PID is the one measured


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} for process {pid}")


@dataclasses.dataclass
class Case:
    label: str
    kind: str  # "evidence" | "import"
    name: str
    content: bytes
    expected: int


@dataclasses.dataclass
class Result:
    case: Case
    statuses: list[int]
    seconds: list[float]
    rss_mb: list[float]
    message: str = ""
    last: httpx.Response | None = None

    def timed(self, send: Callable[[], httpx.Response]) -> None:
        started = time.perf_counter()
        self.last = send()
        self.seconds.append(time.perf_counter() - started)
        self.statuses.append(self.last.status_code)
        body = self.last.json()
        self.message = body["error"]["message"] if "error" in body else ""


def cases() -> list[Case]:
    from tests.builders import MINIMAL_PDF
    from tests.security import test_bombs as b

    def bomb(kind: str) -> bytes:
        return b.archive(*b.evidence_bomb(kind)[2])

    lying = dataclasses.replace(b.inflating("mimetype", b.ODT.encode(), b.FILLER, 1024, b""), declared=39)
    start = b"<worksheet %s><sheetData>" % b.SHEET_NS
    sheet = b.inflating("xl/worksheets/sheet1.xml", start, b"<row/>", 512, b"")
    flood = b"".join(b'<row r="%d" spans="1:3"/>' % n for n in range(2, 150_002))
    laughs = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    normal_rows = b.PEOPLE_HEADER + b"".join(b.row(n, f"Người {n}", "NONE", "staff") for n in range(2, 52))
    return [
        Case("normal PDF (20 KB)", "evidence", "giay-khen.pdf", MINIMAL_PDF + b"0" * 20_000, 201),
        Case("ODT, `mimetype` → 1 GB", "evidence", "bomb.odt", bomb("odt"), 413),
        Case("DOCX, `word/document.xml` → 1 GB", "evidence", "bomb.docx", bomb("docx"), 413),
        Case("XLSX, `xl/workbook.xml` → 1 GB", "evidence", "bomb.xlsx", bomb("xlsx"), 413),
        Case(
            "ODT, `mimetype` says 39 bytes, holds 1 GB",
            "evidence",
            "lie.odt",
            b.archive(*b.odt_parts(lying)),
            413,
        ),
        Case("normal XLSX import (50 rows, dry run)", "import", "people.xlsx", b.workbook(normal_rows), 200),
        Case(
            "XLSX import, one shared string → 1 GB",
            "import",
            "a.xlsx",
            b.import_bomb("shared string")[1],
            413,
        ),
        Case(
            "XLSX import, `<row/>` × 89 M (512 MB)", "import", "b.xlsx", b.import_bomb("empty rows")[1], 413
        ),
        Case(
            "XLSX import, sheet says 4 KB, holds 512 MB",
            "import",
            "c.xlsx",
            b.workbook(dataclasses.replace(sheet, declared=4096)),
            413,
        ),
        Case(
            "XLSX import, 150,000 numbered empty rows",
            "import",
            "d.xlsx",
            b.workbook(b.PEOPLE_HEADER + flood),
            413,
        ),
        Case(
            "XLSX import, DTD with an external entity",
            "import",
            "e.xlsx",
            b.workbook(b.PEOPLE_HEADER, laughs + b"<sst><si><t>&e;</t></si></sst>"),
            415,
        ),
    ]


def login(client: httpx.Client, username: str) -> dict[str, str]:
    data = {"grant_type": "password", "username": username, "password": DEMO_PASSWORD}
    r = client.post(f"{API}/auth/token", data=data)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def open_evaluation(client: httpx.Client, admin: dict[str, str]) -> dict[str, Any]:
    """A new evaluation (editable) for a person of MN Tam Hưng A who has none for 2025."""
    units = client.get(f"{API}/org-units", params={"code": "01-278-MN-TAMHUNGA-TCM"}, headers=admin).json()
    people = client.get(
        f"{API}/people", params={"org_unit_id": units["items"][0]["id"], "limit": 100}, headers=admin
    ).json()
    for person in people["items"]:
        r = client.post(f"{API}/evaluations", json={"person_id": person["id"], "year": 2025}, headers=admin)
        if r.status_code == 201:
            return dict(r.json())
    raise SystemExit("no person without a 2025 evaluation in the demo school")


def measure(base: str, pid: int, repeat: int) -> list[Result]:
    results = []
    with httpx.Client(base_url=base, timeout=120) as client:
        admin = login(client, "tamhunga.admin")
        ev = open_evaluation(client, admin)
        indicator = str(ev["scores"][0]["indicator_id"])

        def send(case: Case) -> httpx.Response:
            files = {"file": (case.name, case.content, "application/octet-stream")}
            if case.kind == "evidence":
                path = f"{API}/evaluations/{ev['id']}/evidence"
                return client.post(path, data={"indicator_id": indicator}, files=files, headers=admin)
            return client.post(
                f"{API}/imports/people", params={"dry_run": "true"}, files=files, headers=admin
            )

        for case in cases():
            result = Result(case, [], [], [])
            post: Callable[[], httpx.Response] = functools.partial(send, case)
            for _ in range(repeat):
                result.rss_mb.append(_peak_above(pid, functools.partial(result.timed, post)))
                if case.kind == "evidence" and result.last is not None and result.last.status_code == 201:
                    client.delete(f"{API}/evidence/{result.last.json()['id']}", headers=admin)
            results.append(result)
            print(
                f"{case.label}: {result.statuses} max {max(result.seconds):.3f} s, "
                f"max {max(result.rss_mb):.1f} MB above",
                file=sys.stderr,
            )
    return results


def _peak_above(pid: int, call: Callable[[], None]) -> float:
    """MB the process's resident set rose above where it stood, at its highest, during ``call``."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_kb(pid, "VmRSS")
    call()
    return (_status_kb(pid, "VmHWM") - before) / 1024


def report(results: list[Result], command: str, load_before: str, load_after: str) -> str:
    lines = [
        "",
        "## Upload bombs (issue #14)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · `{command}` · nproc {os.cpu_count()} · "
        f"{platform.platform()} · Python {platform.python_version()} · the real server (uvicorn, one "
        "process, SQLite, the demo loaded) on 127.0.0.1, the client in another process on the same machine.",
        "",
        f"- Machine before: `{load_before}`",
        f"- Machine after: `{load_after}`",
        "- RSS: the server's peak resident set above its resident set just before the upload (`VmHWM` "
        "after resetting it through `/proc/PID/clear_refs`); time: the client's wall time for the request "
        "(upload included). Goal per refused upload: < 100 MB and < 2 s.",
        "",
        "| upload | size | answer | max s | median s | max MB above | what the server said |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        statuses = sorted(set(r.statuses))
        lines.append(
            f"| {r.case.label} | {len(r.case.content) / 1024:,.0f} KB | {', '.join(map(str, statuses))} | "
            f"{max(r.seconds):.3f} | {statistics.median(r.seconds):.3f} | {max(r.rss_mb):.1f} | "
            f"{r.message.replace('|', '/')[:150]} |"
        )
    refused = [r for r in results if r.case.expected >= 400]
    worst_s = max(max(r.seconds) for r in refused)
    worst_mb = max(max(r.rss_mb) for r in refused)
    ok = all(set(r.statuses) == {r.case.expected} for r in results)
    met = worst_s < GOAL_SECONDS and worst_mb < GOAL_MB
    lines += [
        "",
        f"- Every answer as expected: {'yes' if ok else '**no**'}. Worst refused upload: {worst_s:.3f} s, "
        f"{worst_mb:.1f} MB above — goal {'met' if met else '**not met**'}.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="uploads of each file (default 5)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    load_before = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="cdht-bombs-") as var:
        env = {
            **os.environ,
            "CDHT_DATABASE_URL": f"sqlite:///{var}/bench.db",
            "CDHT_VAR_DIR": var,
            "CDHT_SECRET_KEY": secrets.token_urlsafe(48),
            "CDHT_ENV": "production",
            "CDHT_WEBHOOK_WORKER": "false",
            "CDHT_IMPORT_WORKER": "false",
        }
        done = subprocess.run(
            [CDHT, "demo"], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"cdht demo failed:\n{done.stdout}\n{done.stderr}")
        with server(env, args.port or ra._free_port()) as (base, pid):
            results = measure(base, pid, args.repeat)
    load_after = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    command = "python bench/run_bombs.py " + " ".join(sys.argv[1:])
    print(report(results, command.strip(), load_before, load_after))
    return 0 if all(set(r.statuses) == {r.case.expected} for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
