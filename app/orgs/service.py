"""Rules of the org tree: who may create, change, move and delete units, and what keeps the tree whole."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import date
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Date, bindparam
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.aggregates import counters
from app.auth.covers import ADMIN, Shape, cover_of, in_cover, in_top, reach_key, top_cover
from app.auth.policy import Action
from app.auth.scope import ReadAlong, Subject, UnitLife, authorized_life, authorized_unit, holds_role_at
from app.core import audit, generations
from app.core.dates import today
from app.core.errors import Conflict, Forbidden, ValidationFailed
from app.core.kept import Kept, carried_by
from app.core.pagination import Paged, PageParams
from app.core.schemas import check_version
from app.core.search import contains_bound, pattern
from app.orgs import history, past
from app.orgs import repository as repo
from app.orgs.models import OrgUnit
from app.orgs.schemas import OrgUnitCreate, OrgUnitMove, OrgUnitRead, OrgUnitUpdate

AUDITED = ("name", "kind", "code", "parent_id", "valid_from", "valid_to")
LIVES = "cdht.kept_unit_lives"  # session.info: this process's Kept of units callers may read (keep_lives_in)
MAX_LIVES = 50_000  # (unit, action, reach) keys per process; past it the table starts again


def _state(unit: OrgUnit) -> dict[str, object]:
    """What the audit keeps of a unit (who may see what follows its place in the tree)."""
    values = {name: getattr(unit, name) for name in AUDITED}
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}


async def _audit(
    session: AsyncSession,
    subject: Subject,
    unit_id: int,
    action: str,
    before: dict[str, object] | None,
    after: dict[str, object] | None,
) -> None:
    if before is not None and after is not None:  # only what changed
        changed = [k for k in after if before.get(k) != after[k]]
        before, after = {k: before[k] for k in changed}, {k: after[k] for k in changed}
    await audit.record_by(session, subject, "org_unit", unit_id, action, before, after)


def ensure_open(unit: OrgUnit, what: str, year: int | None = None) -> None:
    """409 when ``what`` would attach to a unit that has ended (for a year after its end, when a year is
    given): nothing new attaches to an ended unit."""
    if unit.valid_to is None or (year is not None and year <= unit.valid_to.year):
        return
    raise Conflict(
        f"{unit.name} ended on {unit.valid_to.isoformat()}; {what} cannot be attached to it.",
        details={"org_unit_id": unit.id, "valid_to": unit.valid_to.isoformat()},
    )


async def to_reads(
    session: AsyncSession, units: list[OrgUnit], as_of: date | None = None
) -> list[OrgUnitRead]:
    """Read models as of ``as_of`` (default today; an ended unit on its last day, if that is earlier)."""
    rows = [tuple(getattr(unit, column.key) for column in repo.UNIT_COLUMNS) for unit in units]
    return await rows_to_reads(session, rows, as_of)


async def rows_to_reads(
    session: AsyncSession, rows: Sequence[Sequence[Any]], as_of: date | None = None
) -> list[OrgUnitRead]:
    """:func:`to_reads` of rows of ``repo.UNIT_COLUMNS`` (a page's), unpacked by position: a ``Row``'s
    columns read by name cost ~0.3 µs each."""
    day = as_of or today()
    days = {row[0]: min(day, row[5]) if row[5] else day for row in rows}
    then = await past.as_of(session, days)
    reads = []
    for unit_id, name, kind, code, valid_from, valid_to, version, created_at, updated_at in rows:
        name, code = then.names.get(unit_id, (name, code))
        reads.append(
            OrgUnitRead(
                id=unit_id,
                name=name,
                kind=kind,
                parent_id=then.parents.get(unit_id),
                code=code,
                depth=then.depths[unit_id],
                valid_from=valid_from,
                valid_to=valid_to,
                predecessor_ids=then.predecessors[unit_id],
                successor_ids=then.successors[unit_id],
                version=version,
                created_at=created_at,
                updated_at=updated_at,
            )
        )
    return reads


async def to_read(session: AsyncSession, unit: OrgUnit, as_of: date | None = None) -> OrgUnitRead:
    return (await to_reads(session, [unit], as_of))[0]


async def get_visible(session: AsyncSession, subject: Subject, unit_id: int, action: Action) -> OrgUnit:
    """The unit, if the subject may perform ``action`` on it (404 outside scope, 403 without the role)."""
    return await authorized_unit(session, subject, unit_id, action, missing=_missing(unit_id))


def keep_lives_in(sessionmaker: async_sessionmaker[AsyncSession], max_age: float) -> Kept[Hashable, UnitLife]:
    """Give the app's sessions a fresh table of the units their callers may read (the app's state, once
    per process): :func:`get_visible_life`."""
    return carried_by(sessionmaker, LIVES, Kept(generations.ORGS, max_age, MAX_LIVES))


async def get_visible_life(session: AsyncSession, subject: Subject, unit_id: int, action: Action) -> UnitLife:
    """:func:`get_visible`'s check, for reads that need only the unit's id and life (read as columns): a
    list's ``org_unit_id``, a dashboard computed afresh. An answer that let the caller through is kept by
    the process (:func:`keep_lives_in`) under the ``orgs`` generation taken before the read: it depends on
    the tree alone and on where the caller's roles for ``action`` sit (``covers.reach_key``), which key
    it. A refusal (404, 403) is read again every time."""
    kept: Kept[Hashable, UnitLife] | None = session.info.get(LIVES)
    key = (unit_id, action, reach_key(subject, action))
    generation = kept.generation() if kept is not None else 0
    if kept is not None and (found := kept.get(key, generation)) is not None:
        return found[0]
    life, _ = await authorized_life(session, subject, unit_id, action, missing=_missing(unit_id))
    if kept is not None:
        kept.put(key, life, generation)
    return life


async def get_visible_with(
    session: AsyncSession, subject: Subject, unit_id: int, action: Action, along: ReadAlong
) -> tuple[Any, ...]:
    """:func:`get_visible`'s check, returning the values of ``along`` read in the same statement."""
    _, values = await authorized_life(
        session, subject, unit_id, action, missing=_missing(unit_id), along=along
    )
    return values


def _missing(unit_id: int) -> str:
    return f"Org unit {unit_id} not found."


async def _ensure_code_free(session: AsyncSession, code: str | None, unit_id: int | None = None) -> None:
    if code is None:
        return
    existing = await repo.get_by_code(session, code)
    if existing is not None and existing.id != unit_id:
        raise Conflict(f"Code {code!r} is already used by another unit.", details={"field": "code"})


async def create(session: AsyncSession, subject: Subject, data: OrgUnitCreate) -> OrgUnit:
    if data.parent_id is None:
        if not subject.is_admin:
            raise Forbidden("Only a system administrator may create a root unit.")
        parent = None
    else:
        parent = await get_visible(session, subject, data.parent_id, Action.UNIT_WRITE)
        ensure_open(parent, "a new unit")
    await _ensure_code_free(session, data.code)
    if data.valid_from is not None:
        if data.valid_from > today():
            raise ValidationFailed("valid_from cannot be in the future.", details={"field": "valid_from"})
        if parent is not None and parent.valid_from is not None and data.valid_from < parent.valid_from:
            raise Conflict(
                f"{parent.name} exists from {parent.valid_from.isoformat()}; a unit under it cannot begin "
                "earlier.",
                details={"field": "valid_from", "parent_valid_from": parent.valid_from.isoformat()},
            )
    unit = OrgUnit(
        name=data.name,
        kind=data.kind.value,
        code=data.code,
        parent_id=parent.id if parent else None,
        depth=parent.depth + 1 if parent else 0,
        valid_from=data.valid_from,
    )
    session.add(unit)
    await session.flush()
    await history.link_new_unit(session, unit)
    await _audit(session, subject, unit.id, "created", None, _state(unit))
    return unit


async def update(
    session: AsyncSession, subject: Subject, unit_id: int, data: OrgUnitUpdate, if_match: int | None
) -> OrgUnit:
    unit = await get_visible(session, subject, unit_id, Action.UNIT_WRITE)
    check_version(unit.version, data.version, if_match)
    before = _state(unit)
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    for required in ("name", "kind"):
        if required in changes and changes[required] is None:
            raise ValidationFailed(f"{required} cannot be empty.", details={"field": required})
    if "code" in changes:
        await _ensure_code_free(session, changes["code"], unit.id)
    if "name" in changes or "code" in changes:
        # A new name from today: the tree as of an earlier day keeps the old one.
        name, code = changes.pop("name", unit.name), changes.pop("code", unit.code)
        await history.renamed(session, unit, name, code, today())
    kind = changes.get("kind")
    # A village, school, agency or enterprise counts as a subject of the collective titles: recounted
    # around a change of kind.
    recount = kind is not None and kind.value != unit.kind
    if recount:
        await counters.units_counted(session, [unit.id], -1)
    for field, value in changes.items():
        setattr(unit, field, value.value if hasattr(value, "value") else value)
    await session.flush()
    if recount:
        await counters.units_counted(session, [unit.id], +1)
    await _audit(session, subject, unit.id, "updated", before, _state(unit))
    return unit


def check_movable(subject: Subject, unit: OrgUnit) -> None:
    """403 for a non-admin moving a root, or the unit their own role sits on (their scope would move)."""
    if unit.parent_id is None and not subject.is_admin:
        raise Forbidden("Only a system administrator may move a root unit.")
    if holds_role_at(subject, unit.id):
        raise Forbidden("You cannot move the unit where your own role is held.")


async def move(
    session: AsyncSession, subject: Subject, unit_id: int, data: OrgUnitMove, if_match: int | None
) -> OrgUnit:
    unit = await get_visible(session, subject, unit_id, Action.UNIT_WRITE)
    new_parent = await get_visible(session, subject, data.parent_id, Action.UNIT_WRITE)
    check_version(unit.version, data.version, if_match)
    check_movable(subject, unit)
    ensure_open(unit, "a move")
    ensure_open(new_parent, "a unit")
    if await repo.is_in_subtree(session, unit.id, new_parent.id):
        raise Conflict("A unit cannot be moved into its own subtree.")
    if unit.parent_id == new_parent.id:
        return unit
    # Effective today: past years keep counting the unit where it was.
    before = _state(unit)
    await history.move(session, unit, new_parent, today())
    await session.flush()
    await _audit(session, subject, unit.id, "moved", before, _state(unit))
    return unit


async def delete(session: AsyncSession, subject: Subject, unit_id: int, if_match: int | None) -> None:
    unit = await get_visible(session, subject, unit_id, Action.UNIT_WRITE)
    check_version(unit.version, if_match)
    if holds_role_at(subject, unit.id):
        raise Forbidden("You cannot delete the unit where your own role is held.")
    if await repo.count_children(session, unit.id):
        raise Conflict("The unit still has child units; move or delete them first.")
    preds, succs = await history.successions(session, [unit.id])
    if unit.valid_to is not None or preds[unit.id] or succs[unit.id]:
        raise Conflict("The unit is part of a reorganisation's history; it cannot be deleted.")
    before = _state(unit)
    try:
        async with session.begin_nested():
            await counters.units_counted(session, [unit.id], -1)
            await repo.delete_unit(session, unit)
    except IntegrityError as exc:
        raise Conflict(
            "The unit still has people, users, roles or records attached; move or remove them first."
        ) from exc
    await _audit(session, subject, unit_id, "deleted", before, None)


# The lists' statements are built once per shape, their values bound (``core/pagination.Paged``): the day
# (today, or ``as_of``), the caller's cover (``auth/covers.py``) and each filter asked.
_DAY = bindparam("day", type_=Date())


@lru_cache(maxsize=256)
def _units_statement(cover: Shape, start: Shape | str, kind: bool, code: bool, q: bool) -> Paged:
    """:func:`list_units`' statement for a cover shape and a ``start``: ``parent`` (the children of the
    unit bound as ``parent_id``), a top shape (``covers.top_cover``: the roots for an admin, else the
    caller's topmost units, bound as ``top_units``) or ``search`` (anything in scope)."""
    where = [in_cover(cover, OrgUnit.id), history.alive_on(_DAY)]
    if start == "parent":
        where.append(history.children_on(bindparam("parent_id"), _DAY))
    elif isinstance(start, Shape):
        where.append(OrgUnit.parent_id.is_(None) if start == ADMIN else in_top(start, OrgUnit.id))
    if kind:
        where.append(OrgUnit.kind == bindparam("kind"))
    if code:
        where.append(OrgUnit.code == bindparam("code"))
    if q:
        where.append(contains_bound("q", OrgUnit.name, OrgUnit.code))
    return repo.paged_units(where, history.depth_on(_DAY))


class UnitQuery(NamedTuple):
    """What ``GET /org-units`` asks besides its page (hashable: a kept page is keyed by it, ``pages.py``)."""

    parent_id: int | None = None
    kind: str | None = None
    q: str | None = None
    code: str | None = None
    as_of: date | None = None


async def list_units(
    session: AsyncSession, subject: Subject, params: PageParams, query: UnitQuery
) -> tuple[list[OrgUnitRead], int]:
    """Children of ``parent_id``; without it, the caller's top units (the roots for an admin; otherwise
    the units where their roles sit, less those nested in another), or with a filter, a search of
    everything in scope."""
    parent_id, kind, q, code, as_of = query
    day = as_of or today()
    cover = cover_of(subject, Action.UNIT_READ)
    values: dict[str, Any] = {"day": day, **cover.params, "kind": kind, "code": code}
    start: Shape | str
    if parent_id is not None:
        await get_visible(session, subject, parent_id, Action.UNIT_READ)
        start, values["parent_id"] = "parent", parent_id
    elif not (kind or q or code):
        top = top_cover(subject)
        start = top.shape
        values.update(top.params)
    else:
        start = "search"
    if q:
        values["q"] = pattern(q)
    stmt = _units_statement(cover.shape, start, bool(kind), bool(code), bool(q))
    rows, total = await repo.page(session, stmt, values, params)
    return await rows_to_reads(session, rows, day), total


@lru_cache(maxsize=64)
def _descendants_statement(cover: Shape, kind: bool) -> Paged:
    where = [history.descendants_on(bindparam("unit_id"), _DAY), in_cover(cover, OrgUnit.id)]
    if kind:
        where.append(OrgUnit.kind == bindparam("kind"))
    return repo.paged_units(where, history.depth_on(_DAY))


async def list_descendants(
    session: AsyncSession,
    subject: Subject,
    unit_id: int,
    params: PageParams,
    kind: str | None,
    as_of: date | None = None,
) -> tuple[list[OrgUnitRead], int]:
    await get_visible(session, subject, unit_id, Action.UNIT_READ)
    day = as_of or today()
    cover = cover_of(subject, Action.UNIT_READ)
    values: dict[str, Any] = {"day": day, "unit_id": unit_id, "kind": kind, **cover.params}
    rows, total = await repo.page(session, _descendants_statement(cover.shape, bool(kind)), values, params)
    return await rows_to_reads(session, rows, day), total
