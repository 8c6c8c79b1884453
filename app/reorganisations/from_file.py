"""A reorganisation from a CSV/XLSX file (``POST /imports/reorganisation``), turned into steps.

Columns ``old_code, new_code, new_name, new_kind, new_parent_code`` (Vietnamese headings accepted, see
``app/imports/columns.py``), one row per old unit:

- rows sharing a ``new_code`` merge into it: the unit of that code if it exists (renamed to ``new_name``
  and moved under ``new_parent_code`` when they differ), else a unit created with that code, name, kind
  and parent (a parent may itself be created by the file);
- a row whose ``old_code`` is its ``new_code`` keeps that unit (it absorbs the others);
- an empty ``new_code`` keeps the unit and only moves it under ``new_parent_code``;
- an empty ``old_code`` only creates (or renames/moves) the ``new_code`` unit.

The steps are ordered creates (parents first), renames and moves of kept units, merges, plain moves, and
applied by ``service.apply`` all or nothing. Row problems — and a step that cannot be applied — answer 422
with ``details.errors`` as ``[{"row", "column", "message"}]``; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import anyio
from fastapi import UploadFile
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Action
from app.auth.scope import Subject, require_any_role, unit_filter
from app.core.config import Settings
from app.core.errors import ValidationFailed
from app.core.schemas import Code
from app.imports import parsing
from app.imports.columns import KINDS, REORGANISATION, choices, fold
from app.imports.repository import unit_ids_by_code
from app.imports.schemas import Problems
from app.orgs.models import OrgKind, OrgUnit
from app.reorganisations import service
from app.reorganisations.schemas import (
    CreateStep,
    MergeStep,
    MoveStep,
    RenameStep,
    ReorganisationCreate,
    ReorganisationRead,
    Step,
    Target,
)

_code = TypeAdapter(Code)
MAX_ROWS = 20000


@dataclass
class Line:
    number: int
    old_code: str | None
    new_code: str | None
    new_name: str | None
    new_kind: str | None
    new_parent_code: str | None


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    rows: list[list[int]] = field(default_factory=list)  # the file rows behind each step

    def add(self, step: Step, rows: list[int]) -> None:
        self.steps.append(step)
        self.rows.append(rows)


def _read(row: parsing.Row, problems: Problems) -> Line | None:
    values = {k: (v.strip() or None) for k, v in row.values.items()}  # a blank cell is no value
    ok = True
    for column in ("old_code", "new_code", "new_parent_code"):
        if values.get(column) is not None:
            try:
                values[column] = _code.validate_python(values[column])
            except ValidationError:
                problems.add(row.number, column, "Not a valid code.")
                ok = False
    kind = values.get("new_kind")
    if kind is not None:
        values["new_kind"] = KINDS.get(fold(kind))
        if values["new_kind"] is None:
            problems.add(row.number, "new_kind", f"Unknown kind {kind!r}; use one of: {choices(KINDS)}.")
            ok = False
    if values.get("old_code") is None and values.get("new_code") is None:
        problems.add(row.number, None, "A row needs old_code, new_code or both.")
        ok = False
    if values.get("new_code") is None and values.get("new_parent_code") is None:
        problems.add(
            row.number, "new_parent_code", "Without new_code, a row moves old_code: name its new parent."
        )
        ok = False
    if not ok:
        return None
    return Line(
        row.number,
        values.get("old_code"),
        values.get("new_code"),
        values.get("new_name"),
        values.get("new_kind"),
        values.get("new_parent_code"),
    )


async def _plan(session: AsyncSession, subject: Subject, lines: list[Line], problems: Problems) -> Plan:
    named = {c for line in lines for c in (line.old_code, line.new_code, line.new_parent_code) if c}
    # Only units the caller may reorganise are found: a code elsewhere reads exactly as an unknown one.
    ids = await unit_ids_by_code(session, named, unit_filter(subject, Action.UNIT_WRITE, OrgUnit.id))
    groups: dict[str, list[Line]] = {}
    for line in lines:
        if line.new_code is not None:
            groups.setdefault(line.new_code, []).append(line)
    created = {code for code in groups if code not in ids}

    def target(code: str, line: Line, column: str) -> Target | None:
        if code in created:
            return code  # a ref: created by this file
        if code in ids:
            return ids[code]
        problems.add(line.number, column, f"Unknown unit code {code!r}.")
        return None

    def first(group: list[Line], attr: str) -> str | None:
        return next((getattr(x, attr) for x in group if getattr(x, attr)), None)

    plan = Plan()
    # Creates, parents first: a parent created by the file comes before its children.
    done: set[str] = set()

    def create(code: str, trail: tuple[str, ...] = ()) -> None:
        if code in done:
            return
        group = groups[code]
        rows = [x.number for x in group]
        name, kind, parent = (
            first(group, "new_name"),
            first(group, "new_kind"),
            first(group, "new_parent_code"),
        )
        if not (name and kind and parent):
            problems.add(rows[0], None, f"New unit {code!r} needs new_name, new_kind and new_parent_code.")
            done.add(code)
            return
        if parent in created:
            if parent in trail:
                problems.add(rows[0], "new_parent_code", "The new parents go round in a circle.")
                done.add(code)
                return
            create(parent, (*trail, code))
        done.add(code)
        ref = target(parent, group[0], "new_parent_code")
        if ref is not None:
            step = CreateStep(op="create", ref=code, name=name, kind=OrgKind(kind), code=code, parent=ref)
            plan.add(step, rows)

    for code in sorted(created):
        create(code)
    for code, group in sorted(groups.items()):
        if code in created:
            continue
        rows = [x.number for x in group]
        name, parent = first(group, "new_name"), first(group, "new_parent_code")
        if name:
            plan.add(RenameStep(op="rename", unit=ids[code], name=name), rows)
        if parent:
            new_parent = target(parent, group[0], "new_parent_code")
            if new_parent is not None:
                plan.add(MoveStep(op="move", unit=ids[code], parent=new_parent), rows)
    for code, group in sorted(groups.items()):
        merging = [x for x in group if x.old_code and x.old_code != code]
        units = [t for x in merging if (t := target(x.old_code or "", x, "old_code")) is not None]
        into = code if code in created else ids.get(code)
        if units and into is not None:
            plan.add(MergeStep(op="merge", units=units, into=into), [x.number for x in merging])
    for line in lines:
        if line.new_code is None and line.old_code and line.new_parent_code:
            unit = target(line.old_code, line, "old_code")
            new_parent = target(line.new_parent_code, line, "new_parent_code")
            if unit is not None and new_parent is not None:
                plan.add(MoveStep(op="move", unit=unit, parent=new_parent), [line.number])
    return plan


def _refuse(problems: Problems) -> ValidationFailed:
    return ValidationFailed(
        f"The file has {problems.count} problem(s); nothing was changed.",
        details={"errors": [e.model_dump() for e in problems.items]},
    )


async def apply_file(
    session: AsyncSession,
    subject: Subject,
    upload: UploadFile,
    settings: Settings,
    *,
    effective_on: date,
    dry_run: bool,
    title: str | None,
    document_no: str | None,
) -> ReorganisationRead:
    require_any_role(subject, Action.UNIT_WRITE)
    spooled = await anyio.to_thread.run_sync(parsing.spool, upload, settings.max_import_bytes)
    try:
        problems = Problems()
        table = await anyio.to_thread.run_sync(parsing.open_table, spooled, REORGANISATION, problems)
        rows = await anyio.to_thread.run_sync(list, table.rows) if table is not None else []
        filename = spooled.filename
    finally:
        spooled.close()
    if len(rows) > MAX_ROWS:
        problems.add(None, None, f"At most {MAX_ROWS} rows in one reorganisation.")
    lines = [line for row in rows if (line := _read(row, problems)) is not None]
    if not lines and not problems:
        problems.add(None, None, "The file has no rows.")
    if problems:
        raise _refuse(problems)
    plan = await _plan(session, subject, lines, problems)
    if problems:
        raise _refuse(problems)
    data = ReorganisationCreate(
        effective_on=effective_on,
        title=title or f"Sắp xếp theo tệp {filename}"[:255],
        document_no=document_no,
        dry_run=dry_run,
        steps=plan.steps,
    )
    try:
        return await service.apply(session, subject, data)
    except service.StepFailed as exc:
        index = exc.details["step"] if isinstance(exc.details, dict) else None
        for number in plan.rows[index] if isinstance(index, int) else [None]:
            problems.add(number, None, exc.message)
        raise _refuse(problems) from exc
