"""The scoping choke point: what an authenticated subject may see, and may do, where.

A role held at a unit covers that unit's whole subtree. An object the subject cannot see does not exist
for them (404, the very answer of a missing id); an object they see, without a role that the policy table
allows for the action, is 403. They see an object whose unit lies in a subtree where they hold *any* role,
and their own records (:data:`OWN_ACTIONS`: a user linked to a person is implicitly a member of themself,
with no role needed), whatever the action asked. Every repository read takes its filter from
:func:`unit_filter`; single objects are checked with :func:`authorize`. Nothing else filters by unit:
``tests/test_scope_rule.py`` fails when code outside ``app/auth/`` and the repositories reads the tree
tables or the subject's grants itself.

The documented exceptions, each with its rule here:

- **Plans are read upward** (:func:`reach_filter`, :func:`authorize_reach`): a unit reads the plans of the
  units above it (the targets it works towards), besides those of its subtree; only the plan's own unit
  (or above) changes one.
- **Import jobs are their sender's** (:func:`authorize_owner`): nobody else sees one, whatever their roles.
- **Criteria sets are read by every authenticated caller**: the national indicators are public knowledge;
  there is no rule to apply (``app/criteria/service.py`` takes none).
- **The subject's own grant units** (:func:`holds_role_at`, ``covers.top_cover``): a unit where one's
  role sits cannot be moved or deleted by oneself, and lists start from those units.

The same rules as SQL for statements built once per shape (a load with its scope check, the hot lists'
pages) are in ``auth/covers.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    bindparam,
    event,
    exists,
    false,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app.auth.covers import Shape, cover_of, covered, reach_of
from app.auth.models import Role
from app.auth.policy import Action, roles_for
from app.core.db import rows_of
from app.core.errors import Forbidden, NotFound
from app.orgs.models import OrgUnit, OrgUnitClosure

# What a user may do to their own records — their person record, their evaluation, and the evaluation of
# the household or clan they belong to — with or without a role: the member's part that POLICY cannot
# express (it maps roles held at units). Every other action on an own record is refused with 403, never
# 404: the record is visible to them.
OWN_ACTIONS = frozenset({Action.PERSON_READ, Action.EVALUATION_READ, Action.EVALUATION_EDIT})


@dataclass(frozen=True)
class Grant:
    role: Role
    org_unit_id: int
    assignment_id: int


@dataclass(frozen=True)
class Subject:
    """The authenticated caller, as resolved once per request from the access token."""

    user_id: int
    username: str
    is_admin: bool = False
    is_service: bool = False
    person_id: int | None = None
    grants: tuple[Grant, ...] = field(default_factory=tuple)
    # Seconds since this caller last changed something (None: never, or not tracked): read replicas
    # send their reads to the primary for a while after a write (app/auth/write_marks.py).
    seconds_since_write: float | None = None

    def units_with(self, roles: Iterable[Role] | None = None) -> list[int]:
        wanted = None if roles is None else set(roles)
        return sorted({g.org_unit_id for g in self.grants if wanted is None or g.role in wanted})

    def has_role_anywhere(self, roles: Iterable[Role]) -> bool:
        return self.is_admin or bool(self.units_with(roles))


AUTHORIZED = "cdht.authorized_units"  # session.info: (user, unit, action) allowed in this session → unit
AUTHORIZED_LIVES = "cdht.authorized_lives"  # the same for authorized_life → the unit's id and life


@event.listens_for(Session, "after_transaction_end")
def _forget_authorized(session: Session, transaction: SessionTransaction) -> None:
    """A grant checked in one transaction is checked again in the next (a role may have gone)."""
    if transaction.parent is None:
        session.info.pop(AUTHORIZED, None)
        session.info.pop(AUTHORIZED_LIVES, None)


def subtree_ids(unit_ids: Iterable[int]) -> Select[int]:
    """All units in the subtrees rooted at ``unit_ids`` (a subquery, one indexed closure lookup)."""
    return select(OrgUnitClosure.descendant_id).where(OrgUnitClosure.ancestor_id.in_(list(unit_ids)))


class _Filters:
    """Scope filters already built, by column and units (a subject's units change rarely; building the
    expression cost more than running it). An entry is used only for the very column object it was
    built for: a key's ``id`` is checked against the column it holds, so a column made for one call and
    freed never lends its id to another. Bounded: emptied when full."""

    LIMIT = 4096

    def __init__(self) -> None:
        self._built: dict[tuple[str, int, tuple[int, ...]], tuple[object, ColumnElement[bool]]] = {}

    def get(
        self,
        kind: str,
        column: SQLColumnExpression[Any],
        units: list[int],
        build: Callable[[], ColumnElement[bool]],
    ) -> ColumnElement[bool]:
        key = (kind, id(column), tuple(units))
        found = self._built.get(key)
        if found is not None and found[0] is column:
            return found[1]
        built = build()
        if len(self._built) >= self.LIMIT:
            self._built.clear()
        self._built[key] = (column, built)
        return built


_FILTERS = _Filters()


def unit_filter(
    subject: Subject, action: Action, unit_column: SQLColumnExpression[int | None]
) -> ColumnElement[bool]:
    """``unit_column IN (units the subject may perform action on)``: the filter of every scoped list."""
    if subject.is_admin:
        return true()
    units = subject.units_with(roles_for(action))
    if not units:
        return false()
    return _FILTERS.get("in", unit_column, units, lambda: unit_column.in_(subtree_ids(units)))


def ancestor_ids(unit_ids: Iterable[int]) -> Select[int]:
    """The units ``unit_ids`` and every unit above them (a subquery)."""
    return select(OrgUnitClosure.ancestor_id).where(OrgUnitClosure.descendant_id.in_(list(unit_ids)))


def reach_filter(
    subject: Subject, action: Action, unit_column: SQLColumnExpression[int | None]
) -> ColumnElement[bool]:
    """For what is read upward (plans): ``unit_column`` in the subject's subtrees for ``action``, or
    above one of their units."""
    if subject.is_admin:
        return true()
    units = subject.units_with(roles_for(action))
    if not units:
        return false()
    return or_(unit_column.in_(subtree_ids(units)), unit_column.in_(ancestor_ids(units)))


async def authorize_reach(
    session: AsyncSession,
    subject: Subject,
    unit_id: int,
    action: Action,
    *,
    read: Action,
    missing: str,
    above: str,
) -> None:
    """:func:`authorize` for what is read upward: an object above the subject's units (for ``read``) is
    visible to them, for ``read`` only (any other action: 403 with ``above``)."""
    if subject.is_admin:
        return
    if await can_see(session, subject, unit_id):
        await authorize(session, subject, unit_id, action, missing=missing)
        return
    units = subject.units_with(roles_for(read))
    below = select(
        exists().where(OrgUnitClosure.ancestor_id == unit_id, OrgUnitClosure.descendant_id.in_(units))
    )
    if units and await session.scalar(below):
        if action == read:
            return
        raise Forbidden(above)
    raise NotFound(missing)


def authorize_owner(subject: Subject, owner_user_id: int | None, *, missing: str) -> None:
    """For what belongs to its sender alone (import jobs): anyone else gets ``missing`` (404)."""
    if not (subject.is_admin or (owner_user_id is not None and owner_user_id == subject.user_id)):
        raise NotFound(missing)


def holds_role_at(subject: Subject, unit_id: int) -> bool:
    """Whether one of the subject's roles sits on ``unit_id`` itself (their scope's root)."""
    return not subject.is_admin and unit_id in subject.units_with()


@lru_cache(maxsize=16)
def _covers_statement(shape: Shape) -> Select[tuple[bool]]:
    """Built once per shape of the roots (``covers.reach_of``), the values bound: every check of one
    object's unit runs it."""
    return select(covered(shape, bindparam("unit_id")))


async def _covers(session: AsyncSession, unit_id: int, roots: list[int]) -> bool:
    if not roots:
        return False
    reach = reach_of(roots)
    return bool(await session.scalar(_covers_statement(reach.shape), {"unit_id": unit_id, **reach.params}))


async def can_see(session: AsyncSession, subject: Subject, unit_id: int) -> bool:
    return subject.is_admin or await _covers(session, unit_id, subject.units_with())


async def allows(session: AsyncSession, subject: Subject, unit_id: int, action: Action) -> bool:
    """Whether the subject may perform ``action`` at ``unit_id`` (what :func:`authorize` lets through,
    own records aside), for rules that must not answer differently when it may not."""
    return subject.is_admin or await _covers(session, unit_id, subject.units_with(roles_for(action)))


@dataclass(frozen=True)
class ReadAlong:
    """Scalar subqueries read in the same statement as a unit's authorization (a dashboard's change
    counters), built once by their owner: ``key`` names the shape (the statement with them is built once
    per key, too), ``params`` gives the values of their bound parameters."""

    key: str
    columns: tuple[ColumnElement[Any], ...]
    params: dict[str, Any] = field(default_factory=dict)


_UNIT_STATEMENTS: dict[tuple[Shape, str, bool], Select[Any]] = {}


def _unit_statement(shape: Shape, along: ReadAlong | None, *, entity: bool) -> Select[Any]:
    """Whether the caller's roots cover the unit (:func:`covered`), the unit (as an entity, or its id and
    life as columns) and ``along``'s columns: built once per shape, the values bound."""
    key = (shape, along.key if along else "", entity)
    stmt = _UNIT_STATEMENTS.get(key)
    if stmt is None:
        lead: tuple[Any, ...] = (OrgUnit,) if entity else (OrgUnit.id, OrgUnit.valid_from, OrgUnit.valid_to)
        columns = along.columns if along else ()
        built: Select[Any] = select(covered(shape, OrgUnit.id), *lead, *columns)
        stmt = _UNIT_STATEMENTS[key] = built.where(OrgUnit.id == bindparam("scope_unit"))
    return stmt


@dataclass(frozen=True, slots=True)
class UnitLife:
    """What :func:`authorized_life` reads of a unit: its id and life (a ``through_time.Lifetime``)."""

    id: int
    valid_from: date | None
    valid_to: date | None


async def authorized_unit(
    session: AsyncSession, subject: Subject, unit_id: int, action: Action, *, missing: str
) -> OrgUnit:
    """The unit ``unit_id`` if the subject may perform ``action`` on it, else what :func:`authorize`
    raises (404 / 403). A unit allowed once stays allowed for the rest of the transaction: a second look
    at it costs nothing."""
    allowed_before: dict[tuple[int, int, str], OrgUnit] = session.info.setdefault(AUTHORIZED, {})
    key = (subject.user_id, unit_id, action.value)
    if key not in allowed_before:
        unit, *_ = await _checked(session, subject, unit_id, action, missing, None, entity=True)
        allowed_before[key] = unit
    return allowed_before[key]


async def authorized_life(
    session: AsyncSession,
    subject: Subject,
    unit_id: int,
    action: Action,
    *,
    missing: str,
    along: ReadAlong | None = None,
) -> tuple[UnitLife, tuple[Any, ...]]:
    """:func:`authorized_unit` for reads that need no more of the unit than its id and life (a list's
    scope check, a dashboard's), with the values of ``along`` (what the caller needs next, read in the
    same statement: a dashboard's change counters): the same check and answers, but the unit read as
    plain columns (``db.rows_of``, straight on the driver on PostgreSQL) rather than loaded as an entity
    through the ORM, ~200 µs less a request (README, issue #15's "Reads straight on the driver")."""
    seen_before: dict[tuple[int, int, str], UnitLife] = session.info.setdefault(AUTHORIZED_LIVES, {})
    key = (subject.user_id, unit_id, action.value)
    if along is None and (known := seen_before.get(key) or session.info.get(AUTHORIZED, {}).get(key)):
        return UnitLife(known.id, known.valid_from, known.valid_to), ()
    id_, valid_from, valid_to, *values = await _checked(
        session, subject, unit_id, action, missing, along, entity=False
    )
    life = seen_before[key] = UnitLife(id_, valid_from, valid_to)
    return life, tuple(values)


async def _checked(
    session: AsyncSession,
    subject: Subject,
    unit_id: int,
    action: Action,
    missing: str,
    along: ReadAlong | None,
    *,
    entity: bool,
) -> list[Any]:
    """The row of :func:`_unit_statement` for ``unit_id``, less its coverage, once :func:`authorize` has
    let the subject through (404 / 403 otherwise). The unit and the usual answer (allowed) come in one
    statement; the rare refusal asks again to tell 403 from 404."""
    cover = cover_of(subject, action)
    params = {"scope_unit": unit_id, **cover.params, **(along.params if along else {})}
    stmt = _unit_statement(cover.shape, along, entity=entity)
    if entity:  # the unit as an entity: through the ORM
        row: Sequence[Any] | None = (await session.execute(stmt, params)).first()
    else:
        row = next(iter(await rows_of(session, stmt, params)), None)
    if row is None:
        raise NotFound(missing)
    allowed, *rest = row
    await authorize(session, subject, unit_id, action, missing=missing, allowed=bool(allowed))
    return rest


async def authorize(
    session: AsyncSession,
    subject: Subject,
    unit_id: int,
    action: Action,
    *,
    own: bool = False,
    missing: str = "Not found.",
    allowed: bool = False,
) -> None:
    """Raise 404 when the subject cannot see the object (``unit_id`` outside every subtree where they hold
    a role, and not their own record), 403 when they see it but lack a role allowed for ``action`` there.
    ``own`` marks the subject's own record (see :data:`OWN_ACTIONS`): always visible to them, and theirs
    to perform the actions listed there. ``missing`` must be the very message the caller gives for an
    object that does not exist, so the two answers cannot be told apart. ``allowed``: the object was loaded
    with its :func:`covered` column for this subject and action, and it read true (the usual answer costs
    nothing more; a false one is asked again here)."""
    if allowed or subject.is_admin:
        return
    if await _covers(session, unit_id, subject.units_with(roles_for(action))):
        return
    if own and action in OWN_ACTIONS:
        return
    if own or await _covers(session, unit_id, subject.units_with()):
        raise Forbidden(f"Your roles do not allow {action.value} here.")
    raise NotFound(missing)


async def authorize_above(
    session: AsyncSession,
    subject: Subject,
    unit_id: int,
    action: Action,
    message: str = "A unit's title is reviewed and recognised by the level above it, not by the unit.",
) -> None:
    """For what the level above does to a unit (reviewing or recognising a learning community or unit,
    accepting its report): 403 unless a role allowed for ``action`` is held at a unit strictly above
    ``unit_id``. Call after :func:`authorize` (the unit is known to be in scope)."""
    if subject.is_admin:
        return
    roots = subject.units_with(roles_for(action))
    above = select(
        exists().where(
            OrgUnitClosure.descendant_id == unit_id,
            OrgUnitClosure.ancestor_id.in_(roots),
            OrgUnitClosure.depth > 0,
        )
    )
    if not roots or not await session.scalar(above):
        raise Forbidden(message)


def require_any_role(subject: Subject, action: Action) -> None:
    """For unit-less actions (lists without a unit): 403 when no grant allows ``action`` anywhere."""
    if not subject.has_role_anywhere(roles_for(action)):
        raise Forbidden(f"Your roles do not allow {action.value}.")


def own_or(clause: ColumnElement[bool], own: ColumnElement[bool] | None) -> ColumnElement[bool]:
    return clause if own is None else or_(clause, own)
