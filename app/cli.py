"""The ``cdht`` command: migrate, seed, create-admin, demo, serve, cleanup-evidence, rebuild-aggregates,
import-worker and worker."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from pydantic import ValidationError

from app.core.config import ConfigurationError, Settings, get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["database_url"] = database_url
    return cfg


def migrate(settings: Settings) -> None:
    url = settings.effective_database_url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")
    from app import commands

    if asyncio.run(commands.counters_current(settings)):
        print("Aggregate counters recounted: their definition changed with this version.")


T = TypeVar("T")


def _run(fn: Callable[[Settings], Coroutine[Any, Any, T]], settings: Settings) -> T:
    return asyncio.run(fn(settings))


ADMIN_PASSWORD_ENV = "CDHT_ADMIN_PASSWORD"


def _admin_password(from_stdin: bool) -> str:
    """The new administrator's password: standard input, the environment, or a prompt (twice)."""
    from app.commands import CommandError

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if password := os.environ.get(ADMIN_PASSWORD_ENV):
        return password
    if not sys.stdin.isatty():
        raise CommandError(
            f"no password: set {ADMIN_PASSWORD_ENV}, pass --password-stdin, or run in a terminal"
        )
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        raise CommandError("the two passwords differ")
    return password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cdht", description="Công dân học tập backend")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="bring the database to the latest schema")
    sub.add_parser("seed", help="load criteria_seeds/ (criteria sets, reference plans); safe to re-run")
    admin = sub.add_parser("create-admin", help="create a system administrator")
    admin.add_argument("--username", required=True)
    admin.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read the password from standard input (else ${ADMIN_PASSWORD_ENV}, else a prompt); "
        "never on the command line, where `ps` and the shell history would keep it",
    )
    admin.add_argument("--full-name", default="System administrator")
    sub.add_parser("demo", help="load the demo tree, users, people and evaluations; prints logins")
    serve = sub.add_parser("serve", help="serve the API (migrates first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    sub.add_parser(
        "rebuild-aggregates",
        help="recount the dashboards' counters from the tables (after a bulk load or repair)",
    )
    cleanup = sub.add_parser(
        "cleanup-evidence", help="remove evidence files that no evidence row names (left by a crash)"
    )
    cleanup.add_argument("--dry-run", action="store_true", help="list the orphans, remove nothing")
    cleanup.add_argument(
        "--grace-minutes",
        type=int,
        default=60,
        help="only files older than this (default 60): uploads still in flight are never touched",
    )
    worker = sub.add_parser(
        "import-worker",
        help="run queued import jobs (for deployments that set CDHT_IMPORT_WORKER=false on the API)",
    )
    worker.add_argument("--once", action="store_true", help="run the jobs waiting now, then exit")
    everything = sub.add_parser(
        "worker",
        help="run import jobs, webhook deliveries and the alert scan (for deployments that set "
        "CDHT_IMPORT_WORKER=false and CDHT_WEBHOOK_WORKER=false on the API)",
    )
    everything.add_argument(
        "--once",
        action="store_true",
        help="run what is waiting now (jobs, due deliveries, one scan), then exit",
    )
    args = parser.parse_args(argv)

    try:
        settings = get_settings()
        settings.signing_key()
    except ValidationError as exc:
        for error in exc.errors():
            name = (
                "CDHT_" + "_".join(str(part) for part in error["loc"]).upper() + ": " if error["loc"] else ""
            )
            print(f"cdht: {name}{error['msg']}", file=sys.stderr)
        return 2
    except ConfigurationError as exc:
        print(f"cdht: {exc}", file=sys.stderr)
        return 2

    from app import commands  # imported late: keeps `cdht --help` fast

    try:
        if args.command == "migrate":
            migrate(settings)
            print(f"Database is at the latest schema ({_redact(settings.effective_database_url)}).")
        elif args.command == "seed":
            migrate(settings)
            for line in _run(commands.seed, settings):
                print(line)
        elif args.command == "create-admin":
            migrate(settings)
            password = _admin_password(args.password_stdin)
            _run(lambda s: commands.create_admin(s, args.username, password, args.full_name), settings)
            print(f"Administrator {args.username!r} created.")
        elif args.command == "demo":
            migrate(settings)
            for line in _run(commands.demo, settings):
                print(line)
        elif args.command == "rebuild-aggregates":
            migrate(settings)
            for line in _run(commands.rebuild_aggregates, settings):
                print(line)
        elif args.command == "cleanup-evidence":
            migrate(settings)
            for line in _run(
                lambda s: commands.cleanup_evidence(
                    s, dry_run=args.dry_run, grace_minutes=args.grace_minutes
                ),
                settings,
            ):
                print(line)
        elif args.command == "import-worker":
            migrate(settings)
            _log_to_stderr()
            try:
                for line in _run(lambda s: commands.import_worker(s, once=args.once), settings):
                    print(line)
            except KeyboardInterrupt:  # Ctrl-C or SIGINT: a running job went back to the queue
                print("Import worker stopped.")
        elif args.command == "worker":
            migrate(settings)
            _log_to_stderr()
            try:
                for line in _run(lambda s: commands.worker(s, once=args.once), settings):
                    print(line)
            except KeyboardInterrupt:  # Ctrl-C or SIGINT: running jobs went back to the queue
                print("Worker stopped.")
        elif args.command == "serve":
            migrate(settings)
            import uvicorn

            _log_to_stderr()
            uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, access_log=False)
    except commands.CommandError as exc:
        print(f"cdht {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def _log_to_stderr() -> None:
    """Give the app's own loggers (``cdht.access``, ``cdht.errors``, …) a handler: uvicorn configures only
    its own, so without this the access log is silently dropped."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("cdht")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


if __name__ == "__main__":
    raise SystemExit(main())
