"""The ``cdht`` command: migrate, seed, create-admin, demo, serve, cleanup-evidence, rebuild-aggregates,
import-worker, worker, backup and restore."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from pydantic import ValidationError

from app.core import generations
from app.core.config import ConfigurationError, Settings, get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


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
    serving = sub.add_parser("serve", help="serve the API (migrates first)")
    serving.add_argument("--host", default="127.0.0.1")
    serving.add_argument("--port", type=int, default=8000)
    serving.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes serving requests (default: 1 on SQLite, which has one writer at a time; the "
        "number of cores on PostgreSQL)",
    )
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
    backup = sub.add_parser(
        "backup",
        help="copy the database and its evidence files into a new folder, with a manifest of sha256s",
    )
    backup.add_argument("--to", required=True, type=Path, metavar="DIR", help="a new or empty folder")
    restore = sub.add_parser(
        "restore",
        help="verify a backup, then restore its database and evidence files here and migrate",
    )
    restore.add_argument("--from", dest="source", required=True, type=Path, metavar="DIR")
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace a database that holds data (refused without: a restore replaces everything)",
    )
    args = parser.parse_args(argv)

    try:
        settings = get_settings()
        settings.signing_key()
        # Commands that change users, roles or counters move the generations the API's workers read.
        generations.install(generations.path_for(settings.var_dir))
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
        elif args.command == "backup":  # no migration first: the database is backed up as it is
            for line in _run(lambda s: commands.backup(s, args.to), settings):
                print(line)
        elif args.command == "restore":
            for line in _run(lambda s: commands.restore(s, args.source, force=args.force), settings):
                print(line)
            migrate(settings)  # a backup made before an upgrade is brought to this version's schema
            print(f"Database is at the latest schema ({_redact(settings.effective_database_url)}).")
        elif args.command == "serve":
            migrate(settings)
            serve(settings, host=args.host, port=args.port, workers=args.workers)
    except commands.CommandError as exc:
        print(f"cdht {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def serve_workers(settings: Settings, asked: int | None) -> int:
    """How many processes ``cdht serve`` starts: as asked, else one on SQLite (one writer at a time: more
    processes only queue for its lock) and one per core on PostgreSQL."""
    from app.commands import CommandError

    if asked is not None:
        if asked < 1:
            raise CommandError("--workers must be at least 1")
        return asked
    if settings.effective_database_url.startswith("sqlite"):
        return 1
    return os.cpu_count() or 1


def serve(settings: Settings, *, host: str, port: int, workers: int | None) -> None:
    """uvicorn with the app factory; with several workers, uvicorn's supervisor starts them (spawned, so
    each builds its own app, engine and pool) and restarts one that dies. Every piece of shared state (the
    login throttle, idempotency keys, jobs, deliveries) lives in the database, so any worker may answer."""
    import uvicorn

    count = serve_workers(settings, workers)
    with _metrics_shared(count):
        uvicorn.run(
            "app.main:serve_app",
            factory=True,
            host=host,
            port=port,
            workers=count,
            access_log=False,
            log_config=_log_config(settings),  # applied again in every worker process by uvicorn
        )


@contextlib.contextmanager
def _metrics_shared(workers: int) -> Iterator[None]:
    """With several workers, prometheus_client's multiprocess mode: every worker writes its samples
    under ``PROMETHEUS_MULTIPROC_DIR`` and a scrape of any one sums them all. The folder must be in the
    environment before the workers are spawned (they read it at import). One given by the operator is
    emptied of an earlier run's files; one made here is removed at the end."""
    if workers < 2:
        yield
        return
    given = os.environ.get(MULTIPROC_ENV)
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="cdht-metrics-"))
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)
    try:
        yield
    finally:
        if not given:
            shutil.rmtree(folder, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)


def _log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's own logging set-up plus the app's loggers (``cdht.access``, ``cdht.errors``, …) on
    stderr: a spawned worker does not inherit the parent's handlers, uvicorn applies this in each."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["cdht"] = {"format": LOG_FORMAT}
    config["handlers"]["cdht"] = {
        "class": "logging.StreamHandler",
        "formatter": "cdht",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["cdht"] = {"handlers": ["cdht"], "level": "INFO", "propagate": False}
    from app.observability.logs import with_log_format

    return with_log_format(config, settings.log_format)  # CDHT_LOG_FORMAT=json: every line as JSON


def _log_to_stderr(settings: Settings | None = None) -> None:
    """Give the app's own loggers (``cdht.access``, ``cdht.errors``, …) a handler writing
    ``CDHT_LOG_FORMAT`` (text or JSON lines): uvicorn configures only its own, so without this the access
    log is silently dropped."""
    from app.observability.logs import configure_logging

    configure_logging((settings or get_settings()).log_format)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


if __name__ == "__main__":
    raise SystemExit(main())
