"""Dates of the calendar the programme counts in, in Python and in SQL (SQLite and PostgreSQL alike).

A year of the programme is counted on its 31 December (API.md "Counting through time"); "today" is the
service's UTC date, and nothing may be dated after it, so the current year's counts are those of today.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Integer, and_, case, cast, extract, insert, literal, or_, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

ONE_DAY = timedelta(days=1)


def today() -> date:
    return datetime.now(UTC).date()


def year_end(year: int) -> date:
    return date(year, 12, 31)


class dec31(FunctionElement[date]):
    """31 December of an integer year expression, as a date."""

    type = Date()
    inherit_cache = True


@compiles(dec31, "postgresql")
def _dec31_pg(element: dec31, compiler: Any, **kw: Any) -> str:
    return f"make_date(CAST({compiler.process(element.clauses, **kw)} AS INTEGER), 12, 31)"


@compiles(dec31, "sqlite")
def _dec31_sqlite(element: dec31, compiler: Any, **kw: Any) -> str:
    # SQLite keeps dates as ISO text, which compares in date order.
    return f"printf('%04d-12-31', {compiler.process(element.clauses, **kw)})"


def year_of(column: Any) -> ColumnElement[int]:
    return cast(extract("year", column), Integer)


def is_year_end(column: Any) -> ColumnElement[bool]:
    return and_(extract("month", column) == 12, extract("day", column) == 31)


def covers(valid_from: Any, valid_to: Any, day: Any) -> ColumnElement[bool]:
    """``day`` lies in the period [valid_from, valid_to] (None: open on that side)."""
    return and_(or_(valid_from.is_(None), valid_from <= day), or_(valid_to.is_(None), valid_to >= day))


def later_of(a: Any, b: Any) -> ColumnElement[date]:
    """The later of two start dates (None: since always)."""
    return case((a.is_(None), b), (b.is_(None), a), (a > b, a), else_=b)


def earlier_of(a: Any, b: Any) -> ColumnElement[date]:
    """The earlier of two end dates (None: still open)."""
    return case((a.is_(None), b), (b.is_(None), a), (a < b, a), else_=b)


async def move_dated(session: Any, model: Any, unit_id: int, into_id: int, on: date, *kept: Any) -> None:
    """Dated placements (``model`` with ``org_unit_id``, ``valid_from``, ``valid_to``) in ``unit_id`` from
    ``on`` on are placed in ``into_id`` instead: periods that begin on or after ``on`` move whole, those
    that span it are split there (the part from ``on`` copies the columns ``kept``)."""
    later = and_(model.org_unit_id == unit_id, model.valid_from >= on)
    await session.execute(update(model).where(later).values(org_unit_id=into_id))
    spanning = and_(
        model.org_unit_id == unit_id,
        or_(model.valid_from.is_(None), model.valid_from < on),
        or_(model.valid_to.is_(None), model.valid_to >= on),
    )
    copied = select(*kept, literal(into_id), literal(on, model.valid_from.type), model.valid_to)
    await session.execute(
        insert(model).from_select(
            [*(c.expression.name for c in kept), "org_unit_id", "valid_from", "valid_to"],
            copied.where(spanning),
        )
    )
    await session.execute(update(model).where(spanning).values(valid_to=on - ONE_DAY))


class utc_date(FunctionElement[date]):
    """The UTC calendar day of a timestamp column (stored in UTC), as a date."""

    type = Date()
    inherit_cache = True


@compiles(utc_date, "postgresql")
def _utc_date_pg(element: utc_date, compiler: Any, **kw: Any) -> str:
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


@compiles(utc_date, "sqlite")
def _utc_date_sqlite(element: utc_date, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"
