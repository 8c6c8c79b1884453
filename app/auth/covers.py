"""Where a subject's roles reach, for statements built once per shape with the units bound (part of the
scoping choke point, ``auth/scope.py``, whose rules these express in SQL).

A :class:`Cover` is a subject's reach for one action: its :class:`Shape` (``admin``: everywhere; ``roots``:
the subtrees of the units bound as ``scope_roots``, in as many slots as its ``width``, ``core/slots.py``;
``none``) names the statement, its ``params`` fill it. A
statement built once per shape (a load with its scope check, a list's page) takes its SQL from
:func:`covered` (a column telling whether one object's unit is reached), :func:`in_cover` (a list's
filter), :func:`in_subtree` (a list narrowed to a unit already authorised) or :func:`top_cover` and
:func:`in_top` (the caller's topmost units, where lists of units start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    bindparam,
    exists,
    false,
    select,
    true,
)

from app.auth.policy import Action, roles_for
from app.core.slots import bound, one_of, width
from app.orgs.models import OrgUnitClosure

if TYPE_CHECKING:
    from app.auth.scope import Subject


class Shape(NamedTuple):
    """What a statement built once needs to know of a :class:`Cover`: its ``kind`` (``admin``, ``roots``
    or ``none``) and, for ``roots``, the number of slots its units are bound in (``core/slots.width``)."""

    kind: str
    width: int = 0


ADMIN, NONE = Shape("admin"), Shape("none")


@dataclass(frozen=True)
class Cover:
    """Where a subject's roles for one action reach, for a check read in the statement that loads the
    object (:func:`covered`): ``shape`` is ``admin`` (everywhere), ``roots`` (the subtrees of the units
    bound as ``scope_roots`` in ``params``) or ``none``. Statements are built once per shape."""

    shape: Shape
    params: dict[str, Any]


def _roots(name: str, units: list[int]) -> Cover:
    return Cover(Shape("roots", width(len(units))), bound(name, units))


def reach_of(roots: list[int]) -> Cover:
    """The subtrees of ``roots`` (none reached without one)."""
    return _roots("scope_roots", roots) if roots else Cover(NONE, {})


def cover_of(subject: Subject, action: Action) -> Cover:
    if subject.is_admin:
        return Cover(ADMIN, {})
    return reach_of(subject.units_with(roles_for(action)))


def reach_key(subject: Subject, action: Action | None = None) -> tuple[bool, tuple[int, ...]]:
    """What a read scoped by :func:`cover_of` for ``action`` (``None``: by :func:`top_cover`, every role)
    uses of the caller: whether they are an admin, and the units where those roles sit. Callers with the
    same key see the same, so it keys what a process keeps of such a read (``orgs/pages.py``,
    ``orgs/service.get_visible_life``)."""
    if subject.is_admin:
        return True, ()
    return False, tuple(subject.units_with(None if action is None else roles_for(action)))


def _under_roots(shape: Shape) -> ColumnElement[bool]:
    """The closure rows under the roots bound as ``scope_roots``: a :class:`Cover` of kind ``roots``."""
    return one_of(OrgUnitClosure.ancestor_id, "scope_roots", shape.width)


def covered(shape: Shape, unit_id: SQLColumnExpression[int]) -> ColumnElement[bool]:
    """Whether a :class:`Cover` of ``shape`` covers ``unit_id``, as a column of the loading statement (the
    roots stay a bound parameter, so the statement is built once per shape). A row that reads false goes
    to ``scope.authorize`` (``allowed`` false), which tells 403 from 404."""
    if shape.kind == "admin":
        return true()
    if shape.kind == "none":
        return false()
    return exists().where(OrgUnitClosure.descendant_id == unit_id, _under_roots(shape))


def in_cover(shape: Shape, unit_column: SQLColumnExpression[int | None]) -> ColumnElement[bool]:
    """``scope.unit_filter`` for a list built once per :class:`Cover` shape: ``unit_column`` in the subtrees
    of the roots bound as ``scope_roots`` (the cover's ``params``)."""
    if shape.kind == "admin":
        return true()
    if shape.kind == "none":
        return false()
    return unit_column.in_(select(OrgUnitClosure.descendant_id).where(_under_roots(shape)))


def in_subtree(unit_column: SQLColumnExpression[int | None], name: str) -> ColumnElement[bool]:
    """``unit_column`` in the subtree of the unit bound as ``name`` (itself included): a list narrowed to
    a unit the caller was authorised for, in a statement built once."""
    return unit_column.in_(
        select(OrgUnitClosure.descendant_id).where(OrgUnitClosure.ancestor_id == bindparam(name))
    )


def top_cover(subject: Subject) -> Cover:
    """Where a list of the subject's topmost units starts, for a statement built once per shape
    (:func:`in_top`): ``admin`` (the roots, which the caller names) or ``roots``, the units where their
    roles sit, bound as ``top_units``."""
    if subject.is_admin:
        return Cover(ADMIN, {})
    return _roots("top_units", subject.units_with())


def in_top(shape: Shape, unit_id: SQLColumnExpression[int]) -> ColumnElement[bool]:
    """The topmost of the units bound as ``top_units`` (a :func:`top_cover` of kind ``roots``): those
    units, less those inside another of them."""
    strictly_below = select(OrgUnitClosure.descendant_id).where(
        one_of(OrgUnitClosure.ancestor_id, "top_units", shape.width), OrgUnitClosure.depth > 0
    )
    return one_of(unit_id, "top_units", shape.width) & unit_id.not_in(strictly_below.scalar_subquery())
