"""Every query of the imports: look-ups by code and citizen id in chunks, bulk inserts, the record."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Action
from app.auth.scope import Subject, unit_filter
from app.imports import jobs
from app.imports.models import ImportJob
from app.orgs.models import OrgUnit
from app.people.models import Person

LOOKUP_CHUNK = 500
T = TypeVar("T")


def chunked(items: Sequence[T], size: int = LOOKUP_CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def units_by_code(session: AsyncSession, codes: Iterable[str]) -> dict[str, OrgUnit]:
    found: dict[str, OrgUnit] = {}
    for part in chunked(sorted(set(codes))):
        for unit in (await session.scalars(select(OrgUnit).where(OrgUnit.code.in_(part)))).all():
            found[unit.code or ""] = unit
    return found


async def unit_ids_by_code(
    session: AsyncSession, codes: Iterable[str], within: ColumnElement[bool] | None = None
) -> dict[str, int]:
    """The units of ``codes`` (of those matching ``within`` only, e.g. the caller's scope)."""
    found: dict[str, int] = {}
    for part in chunked(sorted(set(codes))):
        stmt = select(OrgUnit.code, OrgUnit.id).where(OrgUnit.code.in_(part))
        rows = await session.execute(stmt if within is None else stmt.where(within))
        # Never NULL (``code IN (…)`` matched): the test only narrows the nullable column's type.
        found.update({code: unit_id for code, unit_id in rows.all() if code is not None})
    return found


async def ended_units(session: AsyncSession, unit_ids: Iterable[int]) -> dict[int, date]:
    """Of ``unit_ids``, those that have ended, with their last day (nothing new attaches to them)."""
    found: dict[int, date] = {}
    for part in chunked(sorted(set(unit_ids))):
        rows = await session.execute(
            select(OrgUnit.id, OrgUnit.valid_to).where(OrgUnit.id.in_(part), OrgUnit.valid_to.is_not(None))
        )
        found.update({unit_id: valid_to for unit_id, valid_to in rows.all() if valid_to is not None})
    return found


async def writable(session: AsyncSession, subject: Subject, unit_ids: Iterable[int]) -> set[int]:
    """Of ``unit_ids``, those where the subject may import (scope.unit_filter with IMPORT_WRITE)."""
    allowed: set[int] = set()
    rule = unit_filter(subject, Action.IMPORT_WRITE, OrgUnit.id)
    for part in chunked(sorted(set(unit_ids))):
        allowed.update((await session.scalars(select(OrgUnit.id).where(OrgUnit.id.in_(part), rule))).all())
    return allowed


async def people_claiming(session: AsyncSession, citizen_ids: Iterable[str]) -> dict[str, list[Person]]:
    """The records claiming each of ``citizen_ids`` (``people.claims``), oldest first."""
    found: dict[str, list[Person]] = {}
    for part in chunked(sorted(set(citizen_ids))):
        stmt = select(Person).where(Person.claimed_citizen_id.in_(part)).order_by(Person.id)
        for person in (await session.scalars(stmt)).all():
            found.setdefault(person.claimed_citizen_id or "", []).append(person)
    return found


async def people_by_citizen_id(session: AsyncSession, citizen_ids: Iterable[str]) -> dict[str, Person]:
    found: dict[str, Person] = {}
    for part in chunked(sorted(set(citizen_ids))):
        for person in (await session.scalars(select(Person).where(Person.citizen_id.in_(part)))).all():
            found[person.citizen_id or ""] = person
    return found


async def max_person_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(Person.id))) or 0)


async def insert_people(session: AsyncSession, rows: list[dict[str, Any]], *, want_ids: bool) -> list[int]:
    """One multi-row INSERT (executemany) for the chunk; the new ids only when asked (the audit keeps a
    capped list)."""
    if not rows:
        return []
    if want_ids:
        result = await session.scalars(
            insert(Person).returning(Person.id, sort_by_parameter_order=True), rows
        )
        return list(result.all())
    await session.execute(insert(Person), rows)
    return []


# --- import jobs (the runner's queue) ---------------------------------------------------------------------


async def claim_job(session: AsyncSession, now: datetime, lease: timedelta) -> ImportJob | None:
    """Take the oldest queued job (or a running one whose lease ran out) by a conditional UPDATE: among
    processes racing for it, one wins."""
    claimable = or_(
        ImportJob.status == jobs.QUEUED,
        and_(ImportJob.status == jobs.RUNNING, ImportJob.lease_expires_at < now),
    )
    candidates = await session.scalars(select(ImportJob.id).where(claimable).order_by(ImportJob.id))
    for job_id in candidates.all():
        claimed = await session.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id, claimable)
            .values(
                status=jobs.RUNNING,
                attempts=ImportJob.attempts + 1,
                started_at=now,
                lease_expires_at=now + lease,
            )
        )
        # A DELETE's or UPDATE's Result is a CursorResult; AsyncSession.execute types it as Result.
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            return await session.get(ImportJob, job_id, populate_existing=True)
    return None


async def finish_job(session: AsyncSession, job_id: int, status: str, now: datetime, **values: Any) -> None:
    await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == jobs.RUNNING)
        .values(status=status, finished_at=now, lease_expires_at=None, **values)
    )


async def requeue_job(session: AsyncSession, job_id: int) -> None:
    """A running job back in the queue (its process is shutting down): the attempt does not count."""
    await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == jobs.RUNNING)
        .values(status=jobs.QUEUED, attempts=ImportJob.attempts - 1, lease_expires_at=None)
    )


async def waiting_job_files(session: AsyncSession) -> set[str]:
    rows = await session.scalars(select(ImportJob.stored_name).where(ImportJob.status.in_(jobs.WAITING)))
    return set(rows.all())


async def queued_jobs(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many jobs wait for a runner, and when the oldest of them was sent (``GET /metrics``'s queue)."""
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(ImportJob.submitted_at)).where(ImportJob.status == jobs.QUEUED)
        )
    ).one()
    return int(count), oldest
