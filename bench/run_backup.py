"""Time ``cdht backup`` and ``cdht restore`` on a national dataset (issue #18, the backup and restore drill).

    .venv/bin/python bench/run_backup.py --write-results             # 5,000,000 people, ~17 minutes
    .venv/bin/python bench/run_backup.py --people 20000              # smoke size

In one run:

1. ``bench/generate_national.py`` (re)creates ``cdht_backup_bench`` (``--people``, ``--seed``); then
   ``--evidence-files`` evidence rows (on the first personal evaluations, one indicator each) get files of
   ``--evidence-kb`` random bytes in a fresh evidence folder (the generator writes none).
2. ``cdht backup --to DIR`` as an operator runs it (a subprocess, the environment pointing at the
   database and the folder), timed; then the manifest's check alone (every file's sha256) in process, timed.
3. A new, empty database ``cdht_backup_bench_restore`` and a new evidence folder; ``cdht restore --from
   DIR`` into them, timed (verification, evidence files, the dump in one transaction with every table's
   rows checked, then the migrations' check).
4. Prints sizes, times and rows/s with the machine's load (``uptime`` before and after) and, with
   ``--write-results``, writes the section "Backup and restore" of ``RESULTS.md`` (others' are kept).
5. Drops both databases and removes the folders (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.operations.manifest import verify  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/cdht_backup_bench"
SECTION = "## Backup and restore"
CDHT = str(ROOT / ".venv" / "bin" / "cdht")


def _with_db(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _server(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(_with_db(url, "postgres"))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _fetch(url: str, sql: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def add_evidence(url: str, root: Path, files: int, kb: int) -> int:
    """``files`` evidence rows with files of ``kb`` KB (a PDF header, then random bytes): their bytes."""
    conn = await asyncpg.connect(url)
    try:
        indicators = {
            r["set_id"]: r["id"]
            for r in await conn.fetch(
                "SELECT DISTINCT ON (set_id) set_id, id FROM indicators ORDER BY set_id, number"
            )
        }
        evaluations = await conn.fetch(
            "SELECT id, criteria_set_id FROM evaluations WHERE person_id IS NOT NULL ORDER BY id LIMIT $1",
            files,
        )
        rows = []
        total = 0
        now = datetime.now(UTC)
        for ev in evaluations:
            body = b"%PDF-1.4\n" + os.urandom(kb * 1024 - 9)
            key = uuid.uuid4().hex
            path = root / key[:2] / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            total += len(body)
            digest = hashlib.sha256(body).hexdigest()
            rows.append(
                (
                    ev["id"],
                    indicators[ev["criteria_set_id"]],
                    "minh-chung.pdf",
                    key,
                    len(body),
                    digest,
                    "application/pdf",
                    False,
                    now,
                )
            )
        await conn.copy_records_to_table(
            "evidence",
            records=rows,
            columns=[
                "evaluation_id",
                "indicator_id",
                "filename",
                "storage_key",
                "size",
                "sha256",
                "content_type",
                "rejected",
                "created_at",
            ],
        )
        return total
    finally:
        await conn.close()


def cdht(*argv: str, url: str, var: Path) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDHT_")}
    env |= {"CDHT_DATABASE_URL": url, "CDHT_VAR_DIR": str(var), "CDHT_EVIDENCE_DIR": str(var / "evidence")}
    started = time.perf_counter()
    done = subprocess.run([CDHT, *argv], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"cdht {' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout.strip()


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _mb(size: float) -> str:
    return f"{size / 1024**2:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"the database to generate (default {DEFAULT_URL})"
    )
    parser.add_argument("--people", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--evidence-files", type=int, default=5000)
    parser.add_argument("--evidence-kb", type=int, default=200)
    parser.add_argument("--skip-generate", action="store_true", help="reuse the database as it is")
    parser.add_argument("--keep", action="store_true", help="keep the databases and folders")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    url: str = args.url
    restored_url = _with_db(url, f"{make_url(url).database}_restore")
    work = Path(tempfile.mkdtemp(prefix="cdht-backup-bench-"))
    source_var, target_var, folder = work / "source", work / "restored", work / "backup"
    r: dict[str, Any] = {"load_before": _uptime(), "started": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        if not args.skip_generate:
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "generate_national.py"),
                    "--url",
                    url,
                    "--people",
                    str(args.people),
                    "--seed",
                    str(args.seed),
                    "--recreate",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            r["generate_s"] = time.perf_counter() - started
        r["evidence_bytes"] = asyncio.run(
            add_evidence(url, source_var / "evidence", args.evidence_files, args.evidence_kb)
        )
        r["db_bytes"] = asyncio.run(_fetch(url, "SELECT pg_database_size(current_database())"))
        r["server"] = asyncio.run(_fetch(url, "SHOW server_version"))
        r["load_before_backup"] = _uptime()

        r["backup_s"], r["backup_out"] = cdht("backup", "--to", str(folder), url=url, var=source_var)
        manifest = json.loads((folder / "manifest.json").read_text())
        r["rows"] = sum(manifest["tables"].values())
        r["tables"] = len(manifest["tables"])
        r["big"] = sorted(manifest["tables"].items(), key=lambda kv: -kv[1])[:6]
        r["dump_bytes"] = next(f["size"] for f in manifest["files"] if f["path"] == "database.dump")
        r["files"] = len(manifest["files"])
        started = time.perf_counter()
        verify(folder)
        r["verify_s"] = time.perf_counter() - started

        name = make_url(restored_url).database
        asyncio.run(
            _server(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        )
        r["load_before_restore"] = _uptime()
        r["restore_s"], r["restore_out"] = cdht(
            "restore", "--from", str(folder), url=restored_url, var=target_var
        )
        r["restored_db_bytes"] = asyncio.run(
            _fetch(restored_url, "SELECT pg_database_size(current_database())")
        )
        r["restored_evaluations"] = asyncio.run(_fetch(restored_url, "SELECT count(*) FROM evaluations"))
        r["load_after"] = _uptime()
    finally:
        if not args.keep:
            for database in (restored_url, url):
                asyncio.run(
                    _server(url, f'DROP DATABASE IF EXISTS "{make_url(database).database}" WITH (FORCE)')
                )
            shutil.rmtree(work, ignore_errors=True)
    text = report(args, r)
    print(text)
    if args.write_results:
        write_section(text)


def report(args: argparse.Namespace, r: dict[str, Any]) -> str:
    rows, evidence = r["rows"], r["evidence_bytes"]
    lines = [
        SECTION,
        "",
        f"Run of {r['started']} (UTC) · nproc {os.cpu_count()} · {platform.platform()} · Python "
        f"{platform.python_version()} · PostgreSQL {r['server']} (server, client programs and `cdht` on the "
        "same machine, one disk; the machine is shared with other sessions).",
        "",
        "```",
        f".venv/bin/python bench/run_backup.py --people {args.people} --seed {args.seed} --evidence-files "
        f"{args.evidence_files} --evidence-kb {args.evidence_kb} --write-results",
        "```",
        "",
        f"- Load (`uptime`): before {r['load_before'].split('load average:')[-1].strip()}; before the backup "
        f"{r['load_before_backup'].split('load average:')[-1].strip()}; before the restore "
        f"{r['load_before_restore'].split('load average:')[-1].strip()}; after "
        f"{r['load_after'].split('load average:')[-1].strip()}.",
        f"- Dataset: `bench/generate_national.py --people {args.people}`"
        + (f" ({r['generate_s']:.0f} s)" if "generate_s" in r else "")
        + f", {r['tables']} tables, **{rows:,} rows** (largest: "
        + ", ".join(f"{t} {n:,}" for t, n in r["big"])
        + f"); database {_mb(r['db_bytes'])} on disk; {args.evidence_files:,} evidence files of "
        f"{args.evidence_kb} KB ({_mb(evidence)}, random bytes: they do not compress).",
        "",
        "| step | time | rows/s | size |",
        "|---|---:|---:|---:|",
        f"| `cdht backup` (snapshot, `pg_dump -Fc`, tables counted, evidence copied and hashed, manifest) | "
        f"{r['backup_s']:.1f} s | {rows / r['backup_s']:,.0f} | dump {_mb(r['dump_bytes'])} + evidence "
        f"{_mb(evidence)} |",
        f"| the manifest's check alone ({r['files']:,} files' sha256, in `cdht restore` too) | "
        f"{r['verify_s']:.1f} s | | {_mb(r['dump_bytes'] + evidence)} read |",
        f"| `cdht restore` into a new database (check, evidence, one transaction with every table's rows "
        f"counted, migrations' check) | {r['restore_s']:.1f} s | {rows / r['restore_s']:,.0f} | database "
        f"{_mb(r['restored_db_bytes'])} on disk |",
        "",
        f"- Restored: {r['restored_evaluations']:,} evaluations; every table's rows equal the manifest's "
        "(checked inside the restore's transaction).",
        "- `cdht backup` said: " + " / ".join(r["backup_out"].splitlines()),
        "- `cdht restore` said: " + " / ".join(r["restore_out"].splitlines()),
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace this benchmark's section of RESULTS.md (or add it at the end); others' sections are kept."""
    path = ROOT / "bench" / "RESULTS.md"
    current = path.read_text(encoding="utf-8")
    if SECTION in current:
        before, _, rest = current.partition(SECTION)
        after = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""
        current = before + text + ("\n" + after if after else "")
    else:
        current = current.rstrip("\n") + "\n\n" + text
    path.write_text(current, encoding="utf-8")


if __name__ == "__main__":
    main()
