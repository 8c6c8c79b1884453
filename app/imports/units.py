"""Importing org units keyed by ``code``: ``code, name, kind, parent_code``.

Rules (the same as ``POST /org-units`` and ``PATCH /org-units/{id}``, row by row):

- A code already in the database updates that unit's ``name`` and ``kind`` (``updated``), or leaves it as it
  is (``unchanged``). Its parent is not changed by an import: a ``parent_code`` naming another parent is a
  row error (moving a subtree is ``POST /org-units/{id}/move``, one decision at a time); an empty
  ``parent_code`` leaves the unit where it is.
- A new code creates a unit under ``parent_code``, found in the database or anywhere in the file (earlier
  or later). An empty ``parent_code`` makes a root, which only a system administrator may do.
- Scope: the caller needs ``import:write`` (org_admin or integration) on every unit a row updates and on
  the database unit under which a new unit (or a chain of new units) hangs. A code outside that scope
  is answered exactly like an unknown code.
- In the file: a code twice is an error on the later row; parents that lead round in a circle are an
  error on each row of the circle.

The whole file is read before anything is resolved (a parent may come later); org unit files are small
(the national tree is about 70,000 units). Units are inserted parents first, a level at a time, and each
gets its closure rows (today's and dated) from ``orgs.history.link_new_unit``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.scope import Subject
from app.core.errors import validation_message
from app.core.i18n import N_, _
from app.core.schemas import Code, Name
from app.imports import repository as repo
from app.imports.columns import KINDS, choices, fold
from app.imports.parsing import Row
from app.imports.schemas import AUDIT_ID_CAP, Problems, Tally
from app.orgs import history
from app.orgs.models import OrgUnit

_code = TypeAdapter(Code)
_name = TypeAdapter(Name)


@dataclass
class UnitRow:
    number: int
    code: str
    name: str
    kind: str
    parent_code: str | None


# Row problems every import file may have (people.py and households.py say them too).
FORMULA = N_("The cell holds a formula; paste values only.")
NOT_A_CODE = N_("Not a valid code: {reason}.")
NOT_A_NAME = N_("Not a valid name: {reason}.")
NOT_A_CITIZEN_ID = N_("A citizen id is 9 to 12 digits.")
UNIT_ENDED = N_("Unit '{code}' ended on {date}.")


def not_valid(msgid: str, exc: ValidationError) -> str:
    """``msgid`` with the first of ``exc``'s problems as its ``reason`` (in the request's language)."""
    return _(msgid, reason=validation_message(dict(exc.errors()[0])).rstrip("."))


def validate(row: Row, problems: Problems) -> UnitRow | None:
    ok = True
    for column in sorted(row.formulas):
        problems.add(row.number, column, _(FORMULA))
        ok = False
    if not ok:
        return None
    values = row.values
    try:
        code = _code.validate_python(values.get("code", ""))
    except ValidationError as exc:
        problems.add(row.number, "code", not_valid(NOT_A_CODE, exc))
        ok = False
    try:
        name = _name.validate_python(values.get("name", ""))
    except ValidationError as exc:
        problems.add(row.number, "name", not_valid(NOT_A_NAME, exc))
        ok = False
    kind = KINDS.get(fold(values.get("kind", "")))
    if kind is None:
        problems.add(row.number, "kind", _("Unknown kind; one of: {choices}.", choices=choices(KINDS)))
        ok = False
    parent_code = values.get("parent_code", "") or None  # blank: no parent named
    if parent_code is not None:
        try:
            parent_code = _code.validate_python(parent_code)
        except ValidationError as exc:
            problems.add(row.number, "parent_code", not_valid(NOT_A_CODE, exc))
            ok = False
    if not ok:
        return None
    return UnitRow(row.number, code, name, kind or "", parent_code)


def unknown(code: str) -> str:
    # The very message for a code that does not exist and one outside the caller's scope.
    return _("Unknown unit code '{code}'.", code=code)


async def run(
    session: AsyncSession, subject: Subject, rows: Iterable[Row], problems: Problems, *, write: bool
) -> Tally:
    tally = Tally()
    by_code: dict[str, UnitRow] = {}
    bad_codes: dict[str, int] = {}
    for row in rows:
        unit_row = validate(row, problems)
        if unit_row is None:
            bad_codes.setdefault(row.values.get("code", ""), row.number)
        elif unit_row.code in by_code or unit_row.code in bad_codes:
            code = unit_row.code
            first = by_code[code].number if code in by_code else bad_codes[code]
            problems.add(
                row.number,
                "code",
                _("Code '{code}' appears again (first on row {row}).", code=code, row=first),
            )
        else:
            by_code[unit_row.code] = unit_row
    named = set(by_code) | {r.parent_code for r in by_code.values() if r.parent_code}
    existing = await repo.units_by_code(session, named)
    allowed = await repo.writable(session, subject, [u.id for u in existing.values()])

    new: dict[str, UnitRow] = {}
    for code, unit_row in by_code.items():
        unit = existing.get(code)
        if unit is None:
            new[code] = unit_row
        elif unit.id not in allowed:
            problems.add(
                unit_row.number, "code", _("Code '{code}' is already used by another unit.", code=code)
            )
        else:
            _update(unit, unit_row, existing, by_code, problems, tally, write=write)

    depth = _resolve(new, existing, allowed, bad_codes, subject, problems)
    if write and not problems:
        await _create(session, new, depth, existing, tally)
    else:
        tally.created += sum(1 for code in new if code in depth)
    return tally


def _update(
    unit: OrgUnit,
    row: UnitRow,
    existing: dict[str, OrgUnit],
    by_code: dict[str, UnitRow],
    problems: Problems,
    tally: Tally,
    *,
    write: bool,
) -> None:
    if row.parent_code is not None:
        parent = existing.get(row.parent_code)
        if parent is None or parent.id != unit.parent_id:
            message = _(
                "Unit '{code}' exists under another parent; an import does not move units (use {endpoint}).",
                code=row.code,
                endpoint="POST /api/v1/org-units/{id}/move",
            )
            problems.add(row.number, "parent_code", message)
            return
    if unit.name == row.name and unit.kind == row.kind:
        tally.unchanged += 1
        return
    tally.updated += 1
    if write:
        unit.name, unit.kind = row.name, row.kind
        if len(tally.updated_ids) < AUDIT_ID_CAP:
            tally.updated_ids.append(unit.id)


def _resolve(
    new: dict[str, UnitRow],
    existing: dict[str, OrgUnit],
    allowed: set[int],
    bad_codes: dict[str, int],
    subject: Subject,
    problems: Problems,
) -> dict[str, int]:
    """The depth of each new unit that can be created (parents resolved, in scope, no circle); a row
    error for each that cannot."""
    depth: dict[str, int] = {}
    failed: set[str] = set()
    for start in new:
        path: list[str] = []
        code: str | None = start
        while code is not None and code in new and code not in depth and code not in failed:
            if code in path:
                cycle = path[path.index(code) :]
                text = " → ".join([*cycle, code])
                for member in cycle:
                    problems.add(
                        new[member].number,
                        "parent_code",
                        _("The parents go round in a circle: {circle}.", circle=text),
                    )
                failed.update(cycle)
                path = path[: path.index(code)]
                break
            path.append(code)
            code = new[code].parent_code
        if not path:
            continue
        base, reported = _anchor(path[-1], code, new, depth, existing, allowed, bad_codes, subject, problems)
        for member in reversed(path):
            row = new[member]
            if base is None:
                if not reported and row.parent_code is not None:
                    parent_row = new[row.parent_code].number if row.parent_code in new else None
                    problems.add(
                        row.number,
                        "parent_code",
                        _(
                            "The parent '{code}' (row {row}) cannot be created.",
                            code=row.parent_code,
                            row=parent_row,
                        ),
                    )
                reported = False
                failed.add(member)
            else:
                base += 1
                depth[member] = base
    return depth


def _anchor(
    last: str,
    code: str | None,
    new: dict[str, UnitRow],
    depth: dict[str, int],
    existing: dict[str, OrgUnit],
    allowed: set[int],
    bad_codes: dict[str, int],
    subject: Subject,
    problems: Problems,
) -> tuple[int | None, bool]:
    """The depth of the parent of the new unit ``last`` (−1 for a new root) — or None when it cannot be
    created, and whether the reason was reported on ``last``'s row."""
    row = new[last]
    if row.parent_code is None:
        if subject.is_admin:
            return -1, False
        problems.add(row.number, "parent_code", _("Only a system administrator may create a root unit."))
        return None, True
    if code in depth:
        return depth[code], False
    if code in new:  # a parent that failed (a circle, or its own parent is missing)
        return None, False
    parent = existing.get(row.parent_code)
    if parent is not None and parent.id in allowed and parent.valid_to is not None:
        ended = parent.valid_to.isoformat()
        problems.add(row.number, "parent_code", _(UNIT_ENDED, code=row.parent_code, date=ended))
        return None, True
    if parent is not None and parent.id in allowed:
        return parent.depth, False
    message: str
    if row.parent_code in bad_codes:
        message = _("The parent's own row (row {row}) has errors.", row=bad_codes[row.parent_code])
    else:
        message = unknown(row.parent_code)
    problems.add(row.number, "parent_code", message)
    return None, True


async def _create(
    session: AsyncSession,
    new: dict[str, UnitRow],
    depth: dict[str, int],
    existing: dict[str, OrgUnit],
    tally: Tally,
) -> None:
    ids = {code: unit.id for code, unit in existing.items()}
    for level in sorted(set(depth.values())):
        batch = [
            OrgUnit(
                name=row.name,
                kind=row.kind,
                code=row.code,
                parent_id=ids[row.parent_code] if row.parent_code else None,
                depth=level,
            )
            for code, row in new.items()
            if depth.get(code) == level
        ]
        session.add_all(batch)
        await session.flush()
        for unit in batch:
            ids[unit.code or ""] = unit.id
            await history.link_new_unit(session, unit)
            if len(tally.created_ids) < AUDIT_ID_CAP:
                tally.created_ids.append(unit.id)
        tally.created += len(batch)
    await session.flush()
