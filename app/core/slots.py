"""Lists of values bound as a fixed number of scalar parameters: ``column IN (:name_0, :name_1, …)``.

Why (issue #15): with SQLAlchemy's expanding parameter (``column.in_(bindparam(name, expanding=True))``)
the number of values is known only at execution, so SQLAlchemy rewrites the statement's SQL in Python at
every execution, one placeholder per value: ~13 % of the CPU of ``/org-units`` in a py-spy profile
(``SQLCompiler._process_parameters_for_postcompile``). A PostgreSQL array (``column = ANY($1)``) avoids
that but doubled the database's CPU: a prepared statement's generic plan cannot know an array's length
(``bench/RESULTS.md``, "3d0d366 against 8b5ebd8").

How: a list of ``n`` values fills :func:`width` ``(n)`` slots, the next power of two, each a plain scalar
parameter; the slots past the list repeat its last value, which changes nothing for ``IN``. A statement
built once per shape (``lru_cache``) takes the width as part of its shape: at most 11 variants (1, 2, 4, …,
1024), each compiled once and cached by SQLAlchemy like any other statement, and PostgreSQL plans scalar
parameters as before. A list longer than :data:`MAX_SLOTS` goes back to the expanding parameter (width 0),
so no length is refused.

Only for ``IN`` and lists of at least one value: an empty list's single slot holds NULL, and
``x IN (NULL)`` is NULL, not false (no row passes a WHERE, but a selected column reads None).

A list known when the statement is built (a dashboard's kinds of counters) takes :func:`one_of_fixed`:
its values are written into the statement as plain parameters, one per value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, String, bindparam, literal

MAX_SLOTS = 1024


def width(count: int) -> int:
    """How many slots a list of ``count`` values takes: the next power of two (1 for 0 or 1), or 0
    (an expanding parameter) past :data:`MAX_SLOTS`."""
    if count > MAX_SLOTS:
        return 0
    return 1 << max(count - 1, 0).bit_length()


def one_of(column: SQLColumnExpression[Any], name: str, slots: int) -> ColumnElement[bool]:
    """``column IN`` the list bound as ``name`` (:func:`bound`) in ``slots`` slots (a :func:`width`)."""
    if slots == 0:
        return column.in_(bindparam(name, expanding=True))
    of_column = getattr(column, "type", None)  # typed slots: PostgreSQL's casts, SQLite's dates
    return column.in_([bindparam(f"{name}_{i}", type_=of_column) for i in range(slots)])


def bound(name: str, values: Sequence[Any]) -> dict[str, Any]:
    """The parameters that bind ``values`` to :func:`one_of` ``(…, name, width(len(values)))``."""
    slots = width(len(values))
    if slots == 0:
        return {name: list(values)}
    last = values[-1] if values else None
    return {f"{name}_{i}": values[i] if i < len(values) else last for i in range(slots)}


def one_of_fixed(column: SQLColumnExpression[str], values: Sequence[str]) -> ColumnElement[bool]:
    """``column IN`` a list of strings fixed when the statement is built (it is built once per list):
    one plain parameter per value, bound in the statement, no SQL rewritten at execution."""
    return column.in_([literal(value, String()) for value in values])
