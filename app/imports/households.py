"""Importing households: ``household_code, household_name, unit_code, member_citizen_id``, one row per
member (``POST /imports/households``).

Rules (those of ``POST /households`` and ``PUT /households/{id}/members``, household by household):

- Households are keyed by ``household_code``; a household's rows may be anywhere in the file. Its name
  and unit are given on at least one of its rows (a new household needs both); two of its rows giving
  different ones is an error on the later row. An empty ``member_citizen_id`` lists no member.
- A new code creates the household at its unit, placed — with its members — from 1 January of this year
  (as ``POST /households`` without a date). A code already in the database updates that household:
  its name; its unit (a move effective today); and its members, those listed who are not members yet
  joining today. An import never removes a member (``PUT /households/{id}/members`` does).
- Scope: the caller needs ``import:write`` (org_admin or integration, as for people) at the unit of each
  household written and at each unit named; a unit code outside that scope reads exactly as an unknown
  one, and so does a citizen id of a person the caller cannot read. A household code used outside the
  caller's scope is refused as a taken code.
- A person belongs to one household at a time: one in another household (on or after the day they would
  join) is a row error, and so is a person listed for two households of the file (or twice for one).
- ``created``/``updated``/``unchanged`` count households. All or nothing: with any error nothing is
  written (422 with the summary, unless a dry run). Each household written gets its audit entry.

Files are read in chunks in a worker thread, under the size limit of every import; what is kept per row
is its household code, citizen id and row number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from typing import Any

import anyio
from fastapi import UploadFile
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import counters
from app.auth.policy import Action
from app.auth.scope import Subject, require_any_role, unit_filter
from app.collectives import periods
from app.collectives import repository as collectives_repo
from app.collectives.models import Collective, CollectivePlace, HouseholdMember
from app.collectives.repository import MEMBERS
from app.collectives.service import HOUSEHOLD
from app.core.audit import record, user_id_of
from app.core.config import Settings
from app.core.dates import today
from app.core.db import utcnow
from app.core.i18n import N_, _
from app.core.schemas import Code, Name
from app.imports import parsing
from app.imports import repository as repo
from app.imports.columns import Column, Spec
from app.imports.people import CCCD_DIGITS, CHUNK_ROWS
from app.imports.schemas import ErrorBody, Problems, RowError
from app.imports.units import (
    FORMULA,
    NOT_A_CITIZEN_ID,
    NOT_A_CODE,
    NOT_A_NAME,
    UNIT_ENDED,
    not_valid,
    unknown,
)
from app.orgs.models import OrgUnit
from app.people.schemas import CitizenId

HOUSEHOLDS = Spec(
    "households",
    (
        Column("household_code", True, ("Mã hộ", "Mã hộ gia đình")),
        Column("household_name", True, ("Tên hộ", "Tên hộ gia đình")),
        Column("unit_code", True, ("Mã đơn vị",)),
        Column(
            "member_citizen_id",
            True,
            ("Số định danh thành viên", "Số CCCD thành viên", "CCCD thành viên", "Mã định danh thành viên"),
        ),
    ),
)
NO_PERSON = N_("No person with this citizen id was found.")

_code = TypeAdapter(Code)
_name = TypeAdapter(Name)
_citizen_id = TypeAdapter(CitizenId)


class HouseholdImportSummary(BaseModel):
    """``created``/``updated``/``unchanged`` count households (would be, on a dry run); with any error
    nothing is written. ``errors`` lists at most 1000 problems; ``error_count`` counts all."""

    dry_run: bool
    created: int
    updated: int
    unchanged: int
    errors: list[RowError]
    error_count: int
    sha256: str


ANSWERS: dict[int | str, dict[str, object]] = {
    422: {
        "model": HouseholdImportSummary | ErrorBody,
        "description": "Rows with errors (the summary; nothing was written), or a malformed request.",
    },
    413: {"description": "The file is larger than CDHT_MAX_IMPORT_BYTES."},
    415: {"description": "Neither CSV nor XLSX."},
}


@dataclass
class Entry:
    """One household code of the file: where it was first seen, its name and unit (with the row that
    gave them), its members' citizen ids (with their rows)."""

    row: int
    name: tuple[str, int] | None = None
    unit_code: tuple[str, int] | None = None
    members: dict[str, int] = field(default_factory=dict)


@dataclass
class Plan:
    """What the file does to one household, once resolved."""

    code: str
    entry: Entry
    household: Collective | None  # None: new
    unit: OrgUnit
    on: date  # the day the members join (and a new household is placed)
    name: str
    joining: list[int]  # person ids

    def changes(self) -> bool:
        h = self.household
        return h is None or bool(self.joining) or h.name != self.name or h.org_unit_id != self.unit.id


class Reader:
    """The rows, folded into one :class:`Entry` per household code (problems reported as they come)."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.entries: dict[str, Entry] = {}
        self.seen: dict[str, tuple[str, int]] = {}  # citizen id → (household code, row)

    def add(self, row: parsing.Row) -> None:
        problems, values = self.problems, row.values
        if row.formulas:
            for column in sorted(row.formulas):
                problems.add(row.number, column, _(FORMULA))
            return
        try:
            code = _code.validate_python(values.get("household_code", ""))
        except ValidationError as exc:
            problems.add(row.number, "household_code", not_valid(NOT_A_CODE, exc))
            return
        entry = self.entries.setdefault(code, Entry(row.number))
        if raw := values.get("household_name", ""):
            try:
                self._same(entry, "name", _name.validate_python(raw), row.number, "household_name")
            except ValidationError as exc:
                problems.add(row.number, "household_name", not_valid(NOT_A_NAME, exc))
        if raw := values.get("unit_code", ""):
            try:
                self._same(entry, "unit_code", _code.validate_python(raw), row.number, "unit_code")
            except ValidationError as exc:
                problems.add(row.number, "unit_code", not_valid(NOT_A_CODE, exc))
        if raw := values.get("member_citizen_id", ""):
            if "member_citizen_id" in row.numeric and raw.isdigit():
                raw = raw.zfill(CCCD_DIGITS)  # a CCCD typed into Excel as a number lost its leading zeros
            try:
                citizen_id = _citizen_id.validate_python(raw)
            except ValidationError:
                problems.add(row.number, "member_citizen_id", _(NOT_A_CITIZEN_ID))
                return
            first = self.seen.setdefault(citizen_id, (code, row.number))
            if first[1] != row.number:
                if first[0] == code:
                    message = _(
                        "This person is already listed for this household (row {row}); a person belongs "
                        "to one household at a time.",
                        row=first[1],
                    )
                else:
                    message = _(
                        "This person is already listed for household '{code}' (row {row}); a person "
                        "belongs to one household at a time.",
                        code=first[0],
                        row=first[1],
                    )
                problems.add(row.number, "member_citizen_id", message)
                return
            entry.members[citizen_id] = row.number

    def _same(self, entry: Entry, attr: str, value: str, number: int, column: str) -> None:
        given = getattr(entry, attr)
        if given is None:
            setattr(entry, attr, (value, number))
        elif given[0] != value:
            message = _("Row {row} gives this household another {column}.", row=given[1], column=column)
            self.problems.add(number, column, message)


async def run(
    session: AsyncSession, subject: Subject, upload: UploadFile, settings: Settings, *, dry_run: bool
) -> HouseholdImportSummary:
    require_any_role(subject, Action.IMPORT_WRITE)
    problems = Problems()
    spooled = await anyio.to_thread.run_sync(parsing.spool, upload, settings.max_import_bytes)
    try:
        reader = Reader(problems)
        table = await anyio.to_thread.run_sync(parsing.open_table, spooled, HOUSEHOLDS, problems)
        rows: Iterator[parsing.Row] = table.rows if table is not None else iter(())
        while chunk := await anyio.to_thread.run_sync(lambda: list(islice(rows, CHUNK_ROWS))):
            for row in chunk:
                reader.add(row)
        sha256 = spooled.sha256
    finally:
        spooled.close()
    if table is not None and not reader.entries and not problems:
        problems.add(None, None, _("The file has no rows."))
    plans = await _resolve(session, subject, reader.entries, problems)
    created = sum(1 for p in plans if p.household is None)
    updated = sum(1 for p in plans if p.household is not None and p.changes())
    if not dry_run and not problems:
        async with session.begin_nested():
            await _write(session, subject, [p for p in plans if p.changes()], sha256)
    return HouseholdImportSummary(
        dry_run=dry_run,
        created=created,
        updated=updated,
        unchanged=len(plans) - created - updated,
        errors=problems.items,
        error_count=problems.count,
        sha256=sha256,
    )


async def _resolve(
    session: AsyncSession, subject: Subject, entries: dict[str, Entry], problems: Problems
) -> list[Plan]:
    """Each household's plan, or row errors: codes, units, people and scope resolved in a few queries."""
    existing = await collectives_repo.by_codes(session, HOUSEHOLD, entries)
    importable = unit_filter(subject, Action.IMPORT_WRITE, OrgUnit.id)
    homes = await collectives_repo.units_by_id(session, {h.org_unit_id for h in existing.values()})
    writable = await collectives_repo.units_matching(session, homes, importable)
    named = {e.unit_code[0] for e in entries.values() if e.unit_code}
    units = await repo.units_by_code(session, named)
    in_scope = await collectives_repo.units_matching(session, {u.id for u in units.values()}, importable)
    units = {code: u for code, u in units.items() if u.id in in_scope}
    people = await repo.people_by_citizen_id(session, {c for e in entries.values() for c in e.members})
    readable = await collectives_repo.units_matching(
        session,
        {p.org_unit_id for p in people.values()},
        unit_filter(subject, Action.PERSON_READ, OrgUnit.id),
    )
    person_ids = {cid: p.id for cid, p in people.items() if p.org_unit_id in readable}
    household_of = await collectives_repo.open_owner_of(session, MEMBERS, sorted(person_ids.values()))
    first_new_day = date(today().year, 1, 1)
    later: dict[int, list[HouseholdMember]] = {}
    for period in await collectives_repo.belonging_from(
        session, MEMBERS, sorted(person_ids.values()), first_new_day, besides=None
    ):
        later.setdefault(period.person_id, []).append(period)

    plans: list[Plan] = []
    for code, entry in entries.items():
        household = existing.get(code)
        if household is not None and household.org_unit_id not in writable:
            message = _("Code '{code}' is already used by another household.", code=code)
            problems.add(entry.row, "household_code", message)
            continue
        unit = _unit(entry, household, units, homes, problems)
        name = entry.name[0] if entry.name else household.name if household else None
        if name is None:
            problems.add(entry.row, "household_name", _("A new household needs a name."))
        if unit is None or name is None:
            continue
        on = today() if household is not None else periods.default_start(unit)
        own = household.id if household is not None else None
        joining: list[int] = []
        for citizen_id, number in entry.members.items():
            person_id = person_ids.get(citizen_id)
            if person_id is None:
                problems.add(number, "member_citizen_id", _(NO_PERSON))
                continue
            current = household_of.get(person_id)
            if own is not None and current == own:
                continue
            clash = next(
                (
                    r
                    for r in later.get(person_id, [])
                    if r.household_id != own and (r.valid_to is None or r.valid_to >= on)
                ),
                None,
            )
            if clash is not None:
                if clash.valid_to is None:
                    message = _("This person belongs to household {id}.", id=clash.household_id)
                else:
                    message = _(
                        "This person belongs to household {id} until {date}.",
                        id=clash.household_id,
                        date=clash.valid_to.isoformat(),
                    )
                problems.add(number, "member_citizen_id", message)
                continue
            joining.append(person_id)
        plans.append(Plan(code, entry, household, unit, on, name, joining))
    return plans


def _unit(
    entry: Entry,
    household: Collective | None,
    units: dict[str, OrgUnit],
    homes: dict[int, OrgUnit],
    problems: Problems,
) -> OrgUnit | None:
    """The unit the household is placed at after the import (None, with a row error, when unusable)."""
    if entry.unit_code is None:
        if household is None:
            problems.add(entry.row, "unit_code", _("A new household needs its unit code."))
            return None
        return homes[household.org_unit_id]  # it stays where it is
    code, number = entry.unit_code
    unit = units.get(code)
    if unit is None:
        problems.add(number, "unit_code", unknown(code))
        return None
    if unit.valid_to is not None and (household is None or household.org_unit_id != unit.id):
        problems.add(number, "unit_code", _(UNIT_ENDED, code=code, date=unit.valid_to.isoformat()))
        return None
    return unit


async def _write(session: AsyncSession, subject: Subject, plans: list[Plan], sha256: str) -> None:
    """Apply the plans: the people who join counted out, households created or changed, members added,
    the people counted in again; each household's collective cells around its placement."""
    joining = sorted({pid for p in plans for pid in p.joining})
    moved = [p for p in plans if p.household is not None and p.household.org_unit_id != p.unit.id]
    moving = {p.code for p in moved}
    await counters.people_counted(session, joining, -1)
    await counters.collectives_counted(session, [p.household.id for p in moved if p.household], -1)
    before: dict[str, dict[str, Any]] = {}
    for p in plans:
        if p.household is None:
            p.household = Collective(
                kind=HOUSEHOLD,
                code=p.code,
                name=p.name,
                org_unit_id=p.unit.id,
                valid_from=p.on,
                created_by=user_id_of(subject),
            )
            session.add(p.household)
            continue
        h = p.household
        before[p.code] = {"name": h.name, "org_unit_id": h.org_unit_id}
        if p.code in moving:
            await periods.place(session, h, p.unit, p.on)
        h.name = p.name
        h.updated_at = utcnow()  # a new version, even when only members join
    await session.flush()
    new = [p.household.id for p in plans if p.household is not None and p.code not in before]
    session.add_all(
        CollectivePlace(collective_id=p.household.id, org_unit_id=p.unit.id, valid_from=p.on)
        for p in plans
        if p.household is not None and p.code not in before
    )
    session.add_all(
        HouseholdMember(household_id=p.household.id, person_id=pid, valid_from=p.on)
        for p in plans
        if p.household is not None
        for pid in p.joining
    )
    await session.flush()
    await counters.collectives_counted(session, [*new, *(p.household.id for p in moved if p.household)], +1)
    await counters.people_counted(session, joining, +1)
    for p in plans:
        assert p.household is not None
        await record(
            session,
            actor_user_id=user_id_of(subject),
            entity_type=HOUSEHOLD,
            entity_id=p.household.id,
            action="imported",
            before=before.get(p.code),
            after={
                "name": p.name,
                "org_unit_id": p.unit.id,
                "joined": p.joining,
                "effective_on": p.on.isoformat(),
                "file_sha256": sha256,
            },
        )
