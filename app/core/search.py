"""Searching text columns the way a user types: ``%`` and ``_`` are characters, not wildcards."""

from __future__ import annotations

from sqlalchemy import ColumnElement, SQLColumnExpression, or_

ESCAPE = "\\"


def contains(text: str, *columns: SQLColumnExpression[str | None]) -> ColumnElement[bool]:
    """Any of ``columns`` contains ``text``, case-insensitively (``50%`` finds "50%", not "500")."""
    escaped = text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    pattern = f"%{escaped}%"
    return or_(*(column.ilike(pattern, escape=ESCAPE) for column in columns))
