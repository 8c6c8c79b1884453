"""What the ``cdht`` sub-commands do, against the database (no HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository as auth_repo
from app.auth.models import Role, RoleAssignment, User
from app.auth.schemas import Password, Username
from app.core.config import Settings
from app.core.db import make_engine, make_sessionmaker
from app.core.db import unit_of_work as db_unit_of_work
from app.core.security import hash_password


class CommandError(Exception):
    """A command could not do what was asked; the message says why."""


@asynccontextmanager
async def unit_of_work(settings: Settings) -> AsyncIterator[AsyncSession]:
    engine = make_engine(settings.effective_database_url, pool=False)
    try:
        async with db_unit_of_work(make_sessionmaker(engine)) as session:
            yield session
    finally:
        await engine.dispose()


async def create_admin(settings: Settings, username: str, password: str, full_name: str) -> None:
    from pydantic import TypeAdapter

    try:
        TypeAdapter(Username).validate_python(username)
        TypeAdapter(Password).validate_python(password)
    except ValidationError as exc:
        hint = "username: 3–64 of A-Z a-z 0-9 . _ @ -; password: 12–128 characters, not a common one"
        raise CommandError(f"{exc.errors()[0]['msg']} ({hint})") from None
    async with unit_of_work(settings) as session:
        if await auth_repo.get_user_by_username(session, username) is not None:
            raise CommandError(f"user {username!r} already exists")
        user = User(username=username, password_hash=await hash_password(password), full_name=full_name)
        session.add(user)
        await session.flush()
        session.add(RoleAssignment(user_id=user.id, role=Role.ADMIN.value, org_unit_id=None))


async def seed(settings: Settings) -> list[str]:
    from app.core.seedfiles import SeedError
    from app.seeds import load_seeds

    try:
        async with unit_of_work(settings) as session:
            return await load_seeds(session)
    except SeedError as exc:
        raise CommandError(f"{exc}\nNothing was loaded.") from exc


async def demo(settings: Settings) -> list[str]:
    from app.demo import load_demo
    from app.evaluations.storage import EvidenceStore
    from app.plans.loader import SeedError, load_plans
    from app.seeds import SEEDS_DIR

    # The reference plans hang on the demo's units: skipped by the first seed, loaded once they exist.
    lines = [line for line in await seed(settings) if not line.startswith("plan ")]
    try:
        async with unit_of_work(settings) as session:
            lines += await load_demo(session, EvidenceStore(settings.effective_evidence_dir), settings)
            return lines + await load_plans(session, SEEDS_DIR / "plans")
    except SeedError as exc:
        raise CommandError(f"{exc}\nThe demo was not loaded.") from exc


async def cleanup_evidence(settings: Settings, *, dry_run: bool, grace_minutes: int) -> list[str]:
    """Find evidence files no row names (older than the grace period) and remove them unless dry_run."""
    from datetime import timedelta

    from app.evaluations.cleanup import find_orphans, remove
    from app.evaluations.storage import EvidenceStore

    if grace_minutes < 0:
        raise CommandError("--grace-minutes must not be negative")
    store = EvidenceStore(settings.effective_evidence_dir)
    async with unit_of_work(settings) as session:
        orphans = await find_orphans(session, store, timedelta(minutes=grace_minutes))
    lines = [f"orphan {o.path} ({o.size} bytes)" for o in orphans]
    total = sum(o.size for o in orphans)
    if dry_run:
        return [*lines, f"{len(orphans)} orphaned file(s), {total} bytes; dry run: nothing removed."]
    removed = remove(orphans)
    return [*lines, f"{removed} orphaned file(s) removed, {total} bytes freed."]


async def rebuild_aggregates(settings: Settings) -> list[str]:
    """Recount ``aggregate_counts`` from the tables, in one transaction (readers see the old counts until
    it commits)."""
    from sqlalchemy import func, select

    from app.aggregates.counters import rebuild
    from app.aggregates.models import AggregateCount

    async with unit_of_work(settings) as session:
        await rebuild(session)
        rows = await session.scalar(select(func.count()).select_from(AggregateCount))
    return [f"Aggregate counters rebuilt: {rows} rows."]


async def counters_current(settings: Settings) -> bool:
    """Recount the aggregate counters if they were built with another definition (after an upgrade)."""
    from app.aggregates.counters import ensure_current

    async with unit_of_work(settings) as session:
        return await ensure_current(session)


async def backup(settings: Settings, to: Path) -> list[str]:
    """The database and the evidence files its rows name, into the new folder ``to`` (app/operations)."""
    from app.operations import BackupError
    from app.operations.backup import backup as write_backup

    try:
        return await write_backup(settings, to)
    except BackupError as exc:
        raise CommandError(str(exc)) from None


async def restore(settings: Settings, source: Path, *, force: bool) -> list[str]:
    """A backup, verified first, into the configured database and evidence folder (migrations after)."""
    from app.operations import BackupError
    from app.operations.backup import restore as restore_backup

    try:
        return await restore_backup(settings, source, force=force)
    except BackupError as exc:
        raise CommandError(str(exc)) from None


async def import_worker(settings: Settings, *, once: bool) -> list[str]:
    """Run queued import jobs: those waiting now (``once``), or until stopped."""
    from app.imports.runner import ImportJobRunner

    engine = make_engine(settings.effective_database_url, settings=settings)
    try:
        runner = ImportJobRunner(settings, make_sessionmaker(engine))
        if not once:
            await runner.run_forever()
        return [f"{await runner.run_pending()} import job(s) run."]
    finally:
        await engine.dispose()


async def worker(settings: Settings, *, once: bool) -> list[str]:
    """Import jobs, webhook deliveries and the alert scan: those waiting now (``once``), or until stopped."""
    from app.webhooks.worker import run_worker

    engine = make_engine(settings.effective_database_url, settings=settings)
    try:
        return await run_worker(settings, make_sessionmaker(engine), once=once)
    finally:
        await engine.dispose()
