"""Applying a reorganisation: the steps in order, in one transaction, all or nothing.

Rules (API.md "The tree through time"):
- effective today or in the past (a future date is a 422); a step that names a unit which has ended, did
  not exist yet on ``effective_on``, or changed place after it (a dated change cannot be slipped in before
  a later one) is a 422 naming the step's index, and nothing is written;
- every unit a step names (parents and targets included) must be writable by the caller: 404 outside
  their scope, 403 without ``org_admin`` there; creating a root or moving a root needs an admin;
- ``merge``/``dissolve``: the units end the day before ``effective_on``; their alive children, their people
  (with their memberships from that day on), users and role assignments go to ``into``, which lists them
  as predecessors; each ended unit's counters are recounted, so its last year stands as on its last day;
- a dry run does everything inside a savepoint, answers what it did, and rolls it back.
"""

from __future__ import annotations

from datetime import date
from typing import Any, NoReturn

from sqlalchemy import delete, exists, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.aggregates import counters
from app.auth.models import RoleAssignment, User
from app.auth.policy import Action
from app.auth.scope import Subject, require_any_role, unit_filter
from app.collectives import places
from app.core import audit
from app.core.dates import today
from app.core.errors import Forbidden, NotFound, ValidationFailed
from app.core.pagination import PageParams, fetch_page
from app.orgs import history
from app.orgs import repository as orgs_repo
from app.orgs import service as orgs
from app.orgs.models import OrgUnit
from app.people import repository as people_repo
from app.reorganisations.models import Reorganisation, ReorganisationUnit
from app.reorganisations.schemas import (
    CreateStep,
    DissolveStep,
    MergeStep,
    MoveStep,
    RenameStep,
    ReorganisationCreate,
    ReorganisationRead,
    Step,
    Summary,
    Target,
)


class StepFailed(ValidationFailed):
    """A step cannot be applied: 422 naming its index (and, from a file, its row)."""


class Applier:
    """One reorganisation's state while its steps run."""

    def __init__(self, session: AsyncSession, subject: Subject, on: date, record: Reorganisation) -> None:
        self.session, self.subject, self.on, self.record = session, subject, on, record
        self.refs: dict[str, OrgUnit] = {}
        self.named: set[int] = set()
        self.summary = Summary()
        self.index = 0
        self.op = ""

    def fail(self, reason: str, **details: Any) -> NoReturn:
        raise StepFailed(
            f"Step {self.index} ({self.op}): {reason}",
            details={"step": self.index, "op": self.op, "reason": reason, **details},
        )

    async def unit(self, target: Target) -> OrgUnit:
        """A unit named by id (scope-checked: 404/403) or by a ref created earlier in the request."""
        if isinstance(target, str):
            if target not in self.refs:
                self.fail(f"no earlier create step has ref {target!r}.")
            return self.refs[target]
        unit = await orgs.get_visible(self.session, self.subject, target, Action.UNIT_WRITE)
        self.named.add(unit.id)
        return unit

    def open(self, unit: OrgUnit) -> None:
        if unit.valid_to is not None:
            self.fail(f"{unit.name} ended on {unit.valid_to.isoformat()}.", org_unit_id=unit.id)
        if unit.valid_from is not None and unit.valid_from > self.on:
            self.fail(
                f"{unit.name} began on {unit.valid_from.isoformat()}, after {self.on.isoformat()}.",
                org_unit_id=unit.id,
            )

    async def settled(self, unit: OrgUnit) -> None:
        """The unit has not changed place after ``effective_on`` (history only goes forward)."""
        last = await history.last_change(self.session, unit.id)
        if last is not None and last > self.on:
            self.fail(
                f"{unit.name} changed place on {last.isoformat()}, after {self.on.isoformat()}.",
                org_unit_id=unit.id,
            )

    async def apply(self, index: int, step: Step) -> None:
        self.index, self.op = index, step.op
        if isinstance(step, CreateStep):
            await self.create(step)
        elif isinstance(step, MoveStep):
            await self.move(step)
        elif isinstance(step, MergeStep):
            await self.merge([await self.unit(u) for u in step.units], await self.unit(step.into))
        elif isinstance(step, DissolveStep):
            await self.merge([await self.unit(step.unit)], await self.unit(step.into))
        else:
            await self.rename(step)

    async def create(self, step: CreateStep) -> None:
        if step.ref in self.refs:
            self.fail(f"ref {step.ref!r} is used twice.")
        parent = await self.unit(step.parent)
        self.open(parent)
        await self.code_free(step.code)
        unit = OrgUnit(
            name=step.name,
            kind=step.kind.value,
            code=step.code,
            parent_id=parent.id,
            depth=parent.depth + 1,
            valid_from=self.on,
        )
        self.session.add(unit)
        await self.session.flush()
        await history.link_new_unit(self.session, unit)
        self.refs[step.ref] = unit
        self.summary.units_created += 1
        await self.log(unit, "created", after={"name": unit.name, "parent_id": parent.id})

    async def move(self, step: MoveStep) -> None:
        unit, parent = await self.unit(step.unit), await self.unit(step.parent)
        orgs.check_movable(self.subject, unit)
        self.open(unit)
        self.open(parent)
        if await orgs_repo.is_in_subtree(self.session, unit.id, parent.id):
            self.fail("a unit cannot be moved into its own subtree.", org_unit_id=unit.id)
        if unit.parent_id == parent.id:
            return
        await self.settled(unit)
        before = unit.parent_id
        await history.move(self.session, unit, parent, self.on)
        self.summary.units_moved += 1
        await self.log(unit, "moved", before={"parent_id": before}, after={"parent_id": parent.id})

    async def merge(self, units: list[OrgUnit], into: OrgUnit) -> None:
        self.open(into)
        if len({u.id for u in units}) != len(units):
            self.fail("a unit is listed twice.")
        for unit in units:
            self.open(unit)
            if unit.id == into.id:
                self.fail(f"{unit.name} cannot be merged into itself.", org_unit_id=unit.id)
            if await orgs_repo.is_in_subtree(self.session, unit.id, into.id):
                self.fail(f"{unit.name} cannot be merged into its own descendant.", org_unit_id=unit.id)
            if unit.parent_id is None and not self.subject.is_admin:
                raise Forbidden("Only a system administrator may end a root unit.")
            await self.settled(unit)
        for unit in units:
            await self.end(unit, into)

    async def end(self, unit: OrgUnit, into: OrgUnit) -> None:
        """``unit`` ends the day before ``effective_on``; what it held goes to ``into``."""
        for child in await history.alive_children(self.session, unit.id):
            await self.settled(child)
            await history.move(self.session, child, into, self.on)
            self.summary.units_moved += 1
        people = await people_repo.people_placed_in(self.session, unit.id, self.on)
        await counters.people_counted(self.session, people, -1)
        self.summary.people_moved += await people_repo.move_memberships(
            self.session, unit.id, into.id, self.on, self.record.id
        )
        await counters.people_counted(self.session, people, +1)
        placed = await places.placed_in(self.session, unit.id, self.on)
        await counters.collectives_counted(self.session, placed, -1)
        await places.move_places(self.session, unit.id, into.id, self.on)
        await counters.collectives_counted(self.session, placed, +1)
        self.summary.roles_moved += await _move_roles(self.session, unit.id, into.id)
        await self.session.execute(
            update(User).where(User.org_unit_id == unit.id).values(org_unit_id=into.id)
        )
        last_day = await history.end(self.session, unit, into, self.on, self.record.id)
        self.summary.units_ended += 1
        await self.log(unit, "ended", after={"successor_id": into.id, "valid_to": last_day.isoformat()})

    async def rename(self, step: RenameStep) -> None:
        unit = await self.unit(step.unit)
        if step.name is None and step.code is None:
            self.fail("a rename needs a name or a code.")
        if step.code is not None and step.code != unit.code:
            await self.code_free(step.code)
        before = {"name": unit.name, "code": unit.code}
        name, code = step.name or unit.name, step.code if step.code is not None else unit.code
        await history.renamed(self.session, unit, name, code, self.on)
        await self.session.flush()
        await self.log(unit, "renamed", before=before, after={"name": unit.name, "code": unit.code})

    async def code_free(self, code: str | None) -> None:
        if code is not None and await orgs_repo.get_by_code(self.session, code) is not None:
            self.fail(f"code {code!r} is already used by another unit.", field="code")

    async def log(self, unit: OrgUnit, action: str, **change: Any) -> None:
        after = {
            **change.pop("after", {}),
            "reorganisation_id": self.record.id,
            "effective_on": self.on.isoformat(),
        }
        await audit.record(
            self.session,
            actor_user_id=audit.user_id_of(self.subject),
            entity_type="org_unit",
            entity_id=unit.id,
            action=action,
            after=after,
            **change,
        )


async def _move_roles(session: AsyncSession, unit_id: int, into_id: int) -> int:
    """Role assignments at ``unit_id`` go to ``into_id`` (one the user already holds there is merged)."""
    same = aliased(RoleAssignment)
    held = exists().where(
        same.user_id == RoleAssignment.user_id, same.role == RoleAssignment.role, same.org_unit_id == into_id
    )
    dropped = await session.execute(delete(RoleAssignment).where(RoleAssignment.org_unit_id == unit_id, held))
    moved = await session.execute(
        update(RoleAssignment).where(RoleAssignment.org_unit_id == unit_id).values(org_unit_id=into_id)
    )
    # A DELETE's or UPDATE's Result is a CursorResult; AsyncSession.execute types it as Result.
    return int(dropped.rowcount or 0) + int(moved.rowcount or 0)  # type: ignore[attr-defined]


async def apply(session: AsyncSession, subject: Subject, data: ReorganisationCreate) -> ReorganisationRead:
    if data.effective_on > today():
        raise ValidationFailed(
            "effective_on must be today or in the past.", details={"field": "effective_on"}
        )
    require_any_role(subject, Action.UNIT_WRITE)
    savepoint = await session.begin_nested() if data.dry_run else None
    record = Reorganisation(
        effective_on=data.effective_on,
        title=data.title,
        document_no=data.document_no,
        steps=[step.model_dump(mode="json") for step in data.steps],
        summary={},
        created={},
        created_by=audit.user_id_of(subject),
    )
    session.add(record)
    await session.flush()
    applier = Applier(session, subject, data.effective_on, record)
    try:
        for index, step in enumerate(data.steps):
            await applier.apply(index, step)
        touched = applier.named | {u.id for u in applier.refs.values()}
        record.org_unit_id = await orgs_repo.covering_unit(session, touched) if touched else None
        session.add_all(
            ReorganisationUnit(reorganisation_id=record.id, org_unit_id=u) for u in sorted(touched)
        )
        record.summary = applier.summary.model_dump()
        record.created = {ref: unit.id for ref, unit in applier.refs.items()}
        await session.flush()
        read = _read(record, dry_run=data.dry_run)
    except BaseException:
        if savepoint is not None:
            await savepoint.rollback()
        raise
    if savepoint is not None:
        await savepoint.rollback()
        return read.model_copy(
            update={
                "id": None,
                "created": dict.fromkeys(read.created),
                "created_by": None,
                "created_at": None,
            }
        )
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="reorganisation",
        entity_id=record.id,
        action="applied",
        after={"effective_on": data.effective_on.isoformat(), "summary": record.summary},
    )
    return read


def _read(record: Reorganisation, *, dry_run: bool = False) -> ReorganisationRead:
    return ReorganisationRead(
        id=record.id,
        effective_on=record.effective_on,
        title=record.title,
        document_no=record.document_no,
        dry_run=dry_run,
        org_unit_id=record.org_unit_id,
        summary=Summary(**record.summary),
        created=dict(record.created),
        created_by=record.created_by,
        created_at=record.created_at,
    )


def _visible(subject: Subject) -> Any:
    """Records that named or created a unit the caller may read (admins: all): a province reads the
    reform that made it, though the record covers the nation."""
    if subject.is_admin:
        return true()
    return exists().where(
        ReorganisationUnit.reorganisation_id == Reorganisation.id,
        unit_filter(subject, Action.UNIT_READ, ReorganisationUnit.org_unit_id),
    )


async def get(session: AsyncSession, subject: Subject, reorganisation_id: int) -> ReorganisationRead:
    record = await session.scalar(
        select(Reorganisation).where(Reorganisation.id == reorganisation_id, _visible(subject))
    )
    if record is None:
        raise NotFound(f"Reorganisation {reorganisation_id} not found.")
    return (await _redacted(session, subject, [record]))[0]


async def list_reorganisations(
    session: AsyncSession, subject: Subject, params: PageParams
) -> tuple[list[ReorganisationRead], int]:
    stmt = (
        select(Reorganisation)
        .where(_visible(subject))
        .order_by(Reorganisation.effective_on.desc(), Reorganisation.id.desc())
    )
    records, total = await fetch_page(session, stmt, params)
    return await _redacted(session, subject, records), total


async def _redacted(
    session: AsyncSession, subject: Subject, records: list[Reorganisation]
) -> list[ReorganisationRead]:
    """The records as the caller may see them: a unit id outside their scope (a created unit, the
    covering unit) reads as absent, as if it did not exist."""
    reads = [_read(r) for r in records]
    if subject.is_admin:
        return reads
    ids = {i for r in reads for i in [r.org_unit_id, *r.created.values()] if i is not None}
    seen = set(
        (
            await session.scalars(
                select(OrgUnit.id).where(
                    OrgUnit.id.in_(sorted(ids)), unit_filter(subject, Action.UNIT_READ, OrgUnit.id)
                )
            )
        ).all()
    )
    return [
        r.model_copy(
            update={
                "org_unit_id": r.org_unit_id if r.org_unit_id in seen else None,
                "created": {ref: unit for ref, unit in r.created.items() if unit in seen},
            }
        )
        for r in reads
    ]
