"""Searching text columns the way a user types: ``%`` and ``_`` are characters, not wildcards."""

from __future__ import annotations

from sqlalchemy import ColumnElement, SQLColumnExpression, bindparam, or_

ESCAPE = "\\"


def pattern(text: str) -> str:
    """The ``LIKE`` pattern of "contains ``text``", its ``%`` and ``_`` escaped."""
    escaped = text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    return f"%{escaped}%"


def contains(text: str, *columns: SQLColumnExpression[str | None]) -> ColumnElement[bool]:
    """Any of ``columns`` contains ``text``, case-insensitively (``50%`` finds "50%", not "500")."""
    return or_(*(column.ilike(pattern(text), escape=ESCAPE) for column in columns))


def contains_bound(name: str, *columns: SQLColumnExpression[str | None]) -> ColumnElement[bool]:
    """:func:`contains` for a statement built once: the :func:`pattern` is bound as ``name``."""
    return or_(*(column.ilike(bindparam(name), escape=ESCAPE) for column in columns))
