"""Importing people: ``full_name, unit_code, group, birth_year, citizen_id, gender``, streamed in chunks.

Rules (those of ``POST /people`` and ``PATCH /people/{id}``, row by row):

- A row with a ``citizen_id`` already in the database updates that person (``updated``: name, unit, group,
  and birth year / gender when the file gives them; an empty cell leaves the stored value) or changes
  nothing (``unchanged``). A row without a citizen id always creates a person, so only files with
  citizen ids can be re-run without creating duplicates.
- ``unit_code`` must name a unit where the caller holds ``import:write`` (org_admin or integration);
  an out-of-scope code gets the very message of an unknown one. Updating someone needs the same right
  over their current unit. A citizen id held by a record the caller may not update is answered as a new
  one: the row creates a record claiming it (or updates the caller's record that already claims it), and
  nothing says that the id exists elsewhere (``people.claims``).
- A citizen id twice in the file is an error on the later row. A 12-digit CCCD typed into Excel as a
  number loses its leading zeros: numeric cells are read back as 12 digits.

The file is read 1,000 rows at a time: each chunk's unit codes and citizen ids are looked up in a few
``IN`` queries, and its new people inserted with one multi-row ``INSERT``. Memory holds one chunk, the
codes seen and the citizen ids seen (for duplicates), never the file. Once any row has an error nothing
more is written, and the caller rolls back what was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import counters
from app.auth.scope import Subject
from app.core.dates import today
from app.core.i18n import _
from app.core.schemas import Name
from app.imports import repository as repo
from app.imports.columns import GENDERS, GROUPS, choices, fold
from app.imports.parsing import Row
from app.imports.schemas import AUDIT_ID_CAP, Problems, Tally
from app.imports.units import FORMULA, NOT_A_CITIZEN_ID, NOT_A_NAME, UNIT_ENDED, not_valid, unknown
from app.people import repository as people_repo
from app.people import transfers
from app.people.models import Person
from app.people.schemas import BirthYear, CitizenId

CHUNK_ROWS = 1000
CCCD_DIGITS = 12

_name = TypeAdapter(Name)
_citizen_id = TypeAdapter(CitizenId)
_birth_year = TypeAdapter(BirthYear)


@dataclass(frozen=True)
class PersonRow:
    number: int
    full_name: str
    unit_code: str
    group: str
    birth_year: int | None
    gender: str | None
    citizen_id: str | None


def validate(row: Row, problems: Problems) -> PersonRow | None:
    if row.formulas:
        for column in sorted(row.formulas):
            problems.add(row.number, column, _(FORMULA))
        return None
    values, ok = row.values, True
    try:
        full_name = _name.validate_python(values.get("full_name", ""))
    except ValidationError as exc:
        problems.add(row.number, "full_name", not_valid(NOT_A_NAME, exc))
        ok = False
    unit_code = values.get("unit_code", "")
    if not unit_code:
        problems.add(row.number, "unit_code", _("The unit code is empty."))
        ok = False
    group = GROUPS.get(fold(values.get("group", "")))
    if group is None:
        problems.add(row.number, "group", _("Unknown group; one of: {choices}.", choices=choices(GROUPS)))
        ok = False
    birth_year = gender = citizen_id = None
    if raw := values.get("birth_year", ""):
        try:
            birth_year = _birth_year.validate_python(int(raw) if raw.isdigit() else raw)
        except ValidationError:
            problems.add(row.number, "birth_year", _("The birth year must be a year from 1900 to 2100."))
            ok = False
    if raw := values.get("gender", ""):
        gender = GENDERS.get(fold(raw))
        if gender is None:
            problems.add(
                row.number, "gender", _("Unknown gender; one of: {choices}.", choices=choices(GENDERS))
            )
            ok = False
    if raw := values.get("citizen_id", ""):
        if "citizen_id" in row.numeric and raw.isdigit():
            raw = raw.zfill(CCCD_DIGITS)
        try:
            citizen_id = _citizen_id.validate_python(raw)
        except ValidationError:
            problems.add(row.number, "citizen_id", _(NOT_A_CITIZEN_ID))
            ok = False
    if not ok or group is None:
        return None
    return PersonRow(row.number, full_name, unit_code, group, birth_year, gender, citizen_id)


class PeopleImport:
    """One import's state across chunks: caches of resolved codes and scope, the citizen ids seen."""

    def __init__(self, session: AsyncSession, subject: Subject, problems: Problems, *, write: bool) -> None:
        self.session, self.subject, self.problems, self.write = session, subject, problems, write
        self.tally = Tally()
        self.units: dict[str, int | None] = {}  # code → unit id when importable there, else None
        self.writable: dict[int, bool] = {}  # an existing person's current unit → importable there
        self.seen: dict[str, int] = {}  # citizen id → first row
        self.ended: dict[str, date] = {}  # code → last day, for units that have ended
        self.first_new_id: int | None = None  # people inserted by this import have greater ids
        # (person, new unit, new group) of updates that move someone: transfers effective today
        self.moved: list[tuple[Person, int, str]] = []
        self.reborn: list[tuple[Person, int]] = []

    @property
    def writing(self) -> bool:
        return self.write and not self.problems

    async def chunk(self, rows: list[Row]) -> None:
        valid = [p for p in (validate(r, self.problems) for r in rows) if p is not None]
        valid = [p for p in valid if self._first_sighting(p)]
        await self._resolve_units({p.unit_code for p in valid} - self.units.keys())
        existing = await repo.people_by_citizen_id(
            self.session, [p.citizen_id for p in valid if p.citizen_id]
        )
        await self._resolve_scope({p.org_unit_id for p in existing.values()} - self.writable.keys())
        # Ids held by records the caller may not edit are answered as new ones (``people.claims``): a row
        # updates the caller's own record claiming the id, or creates one.
        foreign = {cid for cid, person in existing.items() if not self.writable[person.org_unit_id]}
        claimants = await repo.people_claiming(self.session, foreign)
        claiming = {c.org_unit_id for cs in claimants.values() for c in cs}
        await self._resolve_scope(claiming - self.writable.keys())
        inserts: list[dict[str, Any]] = []
        for p in valid:
            unit_id = self.units.get(p.unit_code)
            if p.unit_code in self.ended:
                ended = self.ended[p.unit_code].isoformat()
                self.problems.add(p.number, "unit_code", _(UNIT_ENDED, code=p.unit_code, date=ended))
                continue
            if unit_id is None:
                self.problems.add(p.number, "unit_code", unknown(p.unit_code))
                continue
            person = existing.get(p.citizen_id or "")
            claimed = None
            if person is not None and p.citizen_id in foreign:
                claimed = p.citizen_id
                person = next((c for c in claimants.get(claimed, []) if self.writable[c.org_unit_id]), None)
            if person is None:
                self.tally.created += 1
                inserts.append(
                    {
                        "full_name": p.full_name,
                        "org_unit_id": unit_id,
                        "group": p.group,
                        "birth_year": p.birth_year,
                        "gender": p.gender,
                        "citizen_id": None if claimed else p.citizen_id,
                        "claimed_citizen_id": claimed,
                    }
                )
            else:
                self._update(person, p, unit_id)
        if self.writing:
            if self.first_new_id is None:
                self.first_new_id = await repo.max_person_id(self.session)
            want_ids = len(self.tally.created_ids) < AUDIT_ID_CAP
            ids = await repo.insert_people(self.session, inserts, want_ids=want_ids)
            self.tally.created_ids.extend(ids[: AUDIT_ID_CAP - len(self.tally.created_ids)])
            await self.session.flush()

    def _first_sighting(self, p: PersonRow) -> bool:
        if p.citizen_id is None:
            return True
        first = self.seen.setdefault(p.citizen_id, p.number)
        if first != p.number:
            self.problems.add(
                p.number, "citizen_id", _("This citizen id appears again (first on row {row}).", row=first)
            )
            return False
        return True

    async def _resolve_units(self, codes: set[str]) -> None:
        if not codes:
            return
        ids = await repo.unit_ids_by_code(self.session, codes)
        allowed = await repo.writable(self.session, self.subject, ids.values())
        ended = await repo.ended_units(self.session, ids.values())
        self.ended.update({code: ended[ids[code]] for code in codes if ids.get(code) in ended})
        for code in codes:
            unit_id = ids.get(code)
            self.units[code] = unit_id if unit_id in allowed else None
            if unit_id is not None:
                self.writable[unit_id] = unit_id in allowed

    async def _resolve_scope(self, unit_ids: set[int]) -> None:
        if unit_ids:
            allowed = await repo.writable(self.session, self.subject, unit_ids)
            self.writable.update({u: u in allowed for u in unit_ids})

    def _update(self, person: Person, p: PersonRow, unit_id: int) -> None:
        changes: dict[str, Any] = {"full_name": p.full_name, "org_unit_id": unit_id, "group": p.group}
        if p.birth_year is not None:
            changes["birth_year"] = p.birth_year
        if p.gender is not None:
            changes["gender"] = p.gender
        changes = {k: v for k, v in changes.items() if getattr(person, k) != v}
        if not changes:
            self.tally.unchanged += 1
            return
        self.tally.updated += 1
        if not self.writing:
            return
        moves = {k: changes.pop(k) for k in ("org_unit_id", "group") if k in changes}
        if "birth_year" in changes:
            # Who counts as an adult depends on it: set in ``finish``, recounted around the change.
            self.reborn.append((person, changes.pop("birth_year")))
        if moves:
            self.moved.append(
                (person, moves.get("org_unit_id", person.org_unit_id), moves.get("group", person.group))
            )
        for key, value in changes.items():
            setattr(person, key, value)
        if len(self.tally.updated_ids) < AUDIT_ID_CAP:
            self.tally.updated_ids.append(person.id)

    async def finish(self) -> None:
        """Bring history and the counters along: new people get an open membership and are counted
        where they belong; a moved or regrouped person is transferred as of today (past years keep
        them where they were)."""
        if not self.writing:
            return
        await self.session.flush()
        on = today()
        if self.reborn:
            ids = [person.id for person, _ in self.reborn]
            await counters.people_counted(self.session, ids, -1)
            for person, birth_year in self.reborn:
                person.birth_year = birth_year
            await counters.people_counted(self.session, ids, +1)
        for person, unit_id, group in self.moved:
            await transfers.move(self.session, person, on, unit_id, group, actor_user_id=self.subject.user_id)
        if self.first_new_id is not None:
            after = await people_repo.max_membership_id(self.session)
            # Registered by this import: counted from 1 January of this year, as POST /people does.
            await people_repo.add_memberships_for_new_people(
                self.session, self.first_new_id, date(on.year, 1, 1)
            )
            await counters.memberships_added(self.session, after)
