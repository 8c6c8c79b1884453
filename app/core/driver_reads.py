"""Reads straight on the driver (issue #15): a select's rows fetched by asyncpg itself, with the SQL,
parameters and row values SQLAlchemy would have used, worked out once per statement shape.

Why. On an open connection, SQLAlchemy Core spends ~110 µs of CPU a statement above asyncpg's own fetch
(an execution context, the DBAPI cursor adapter and its greenlet switches, the result objects): a
quarter of a list's or a dashboard's CPU (README, issue #15's "Reads straight on the driver").

What stays SQLAlchemy's:

- the SQL: the dialect's compilation, keyed by the statement's cache key, as SQLAlchemy's compiled cache
  keys it (the values bound in the statement are read from the key each time, so a shape is compiled
  once whatever its values);
- the parameters: ``construct_params`` with those values and the caller's, the bind processors, the
  compiled positional order;
- the values read: each column's result processor, for the type the server describes (asyncpg's codecs,
  which SQLAlchemy's dialect set up on the connection, decode the rest);
- the ``before_cursor_execute`` and ``after_cursor_execute`` events (the statement counters of
  ``observability/metrics`` and the tests), called as SQLAlchemy calls them, without a cursor or context.

- the errors: one the server answers is translated by SQLAlchemy's asyncpg adapter and wrapped as
  SQLAlchemy wraps it (an ``OperationalError`` or ``DBAPIError`` with its SQLSTATE, which
  ``core/errors`` answers: a timeout is a 503); when the connection itself failed, the statement runs
  again through SQLAlchemy, which invalidates the connection and raises as it does (a select, so a
  second run changes nothing).

Taken only where it is the same statement in the same transaction: PostgreSQL through asyncpg; a
``SELECT`` or a ``UNION`` without expanding or literal-execute parameters, schema translation or
execution options of its own; on a connection where SQLAlchemy's adapter would send no ``BEGIN`` first:
in ``AUTOCOMMIT`` (a GET's session, ``db.open_session``) or inside the transaction it has begun (a
request that wrote already, a test's savepoint). Anything else goes through SQLAlchemy as before
(:func:`rows`, which ``db.rows_of`` calls).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from weakref import WeakKeyDictionary

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import Executable
from sqlalchemy.sql.cache_key import CacheKey
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import CompoundSelect, Select

Row = Sequence[Any]
Processor = Callable[[Any], Any]

SHAPES_KEPT = 500  # compiled shapes kept per dialect; the oldest is dropped past it


@dataclass(slots=True)
class _Shape:
    """A compiled statement shape: what SQLAlchemy would send and how it would read the rows."""

    compiled: SQLCompiler
    sql: str
    binds: tuple[tuple[str, Processor | None], ...]
    # The columns that have a result processor, by position, with it: known once the server has described
    # the columns (the first fetch), since a numeric column's depends on the type the server gives it.
    results: tuple[tuple[int, Processor], ...] | None = None
    usable: bool = True  # False: its columns came back otherwise than selected (SQLAlchemy's to match)


_shapes: WeakKeyDictionary[Dialect, dict[Any, _Shape | None]] = WeakKeyDictionary()


async def rows(conn: AsyncConnection, stmt: Executable, params: Mapping[str, Any] | None) -> list[Row]:
    """``stmt``'s rows on ``conn``: straight on asyncpg where this module's rules allow, else through
    SQLAlchemy. Each row is a sequence of the columns' values, in the select's order."""
    found = _shape_of(conn, stmt)
    pooled = _pooled(conn) if found is not None else None
    if found is not None and pooled is not None and _joins_transaction(pooled):
        fetched = await _fetch(conn, pooled, *found, params)
        if fetched is not None:
            return fetched
    return list((await conn.execute(stmt, dict(params) if params else None)).all())


def _shape_of(conn: AsyncConnection, stmt: Executable) -> tuple[_Shape, CacheKey] | None:
    """``stmt``'s compiled shape with its cache key (whose values the shape's parameters take), or None
    where this path is not taken."""
    dialect = conn.dialect
    if dialect.driver != "asyncpg" or not isinstance(stmt, Select | CompoundSelect):
        return None
    if stmt._execution_options or _sync(conn).get_execution_options().get("schema_translate_map"):
        return None
    key = stmt._generate_cache_key()
    if key is None:  # a construct that cannot be cached: SQLAlchemy compiles it each time too
        return None
    shapes = _shapes.setdefault(dialect, {})
    if key.key in shapes:
        shape = shapes[key.key]
    else:
        shape = shapes[key.key] = _compile(dialect, stmt, key)
        if len(shapes) > SHAPES_KEPT:
            del shapes[next(iter(shapes))]
    return None if shape is None or not shape.usable else (shape, key)


def _compile(dialect: Dialect, stmt: Select[Any] | CompoundSelect[Any], key: CacheKey) -> _Shape | None:
    compiled = stmt._compiler(dialect, cache_key=key, column_keys=None)
    if (
        compiled.positiontup is None
        or compiled.post_compile_params
        or compiled.literal_execute_params
        or compiled.schema_translate_map
        or not compiled._ordered_columns
        or compiled._textual_ordered_columns
        or compiled._loose_column_name_matching
    ):
        return None
    # One processor per name here: a list of them is an expanding parameter's, refused above.
    processors = cast(Mapping[str, Processor], compiled._bind_processors)
    return _Shape(compiled, compiled.string, tuple((n, processors.get(n)) for n in compiled.positiontup))


def _pooled(conn: AsyncConnection) -> PoolProxiedConnection | None:
    """The pool's connection under ``conn``, read without the greenlet ``get_raw_connection`` costs
    (~10 µs): only while it holds one, which reading it then does not touch (an invalidated connection
    would reconnect: SQLAlchemy's to do)."""
    sync = _sync(conn)
    return None if sync.closed or sync.invalidated else sync.connection


def _joins_transaction(pooled: PoolProxiedConnection) -> bool:
    """Whether a statement sent on the driver runs where SQLAlchemy's would: the asyncpg adapter sends no
    ``BEGIN`` first (``_start_transaction``: it is in ``AUTOCOMMIT``, or in the transaction it began
    lazily at its first statement)."""
    adapted = pooled.dbapi_connection
    return bool(getattr(adapted, "autocommit", False)) or getattr(adapted, "_transaction", None) is not None


def _sync(conn: AsyncConnection) -> Connection:
    return cast(Connection, conn.sync_connection)  # set while the connection is open, as it is here


async def _fetch(
    conn: AsyncConnection,
    pooled: PoolProxiedConnection,
    shape: _Shape,
    key: CacheKey,
    params: Mapping[str, Any] | None,
) -> list[Row] | None:
    values = shape.compiled.construct_params(
        dict(params) if params else None, extracted_parameters=key.bindparams, escape_names=False
    )
    args: list[Any] = [proc(values[name]) if proc else values[name] for name, proc in shape.binds]
    sync = _sync(conn)
    sql = shape.sql
    for before in sync.dispatch.before_cursor_execute:
        sql, args = before(sync, None, sql, args, None, False)
    driver: Any = pooled.driver_connection  # asyncpg's Connection
    try:
        if shape.results is None:
            prepared = await driver.prepare(sql)
            records = await prepared.fetch(*args)
            attributes = prepared.get_attributes()
            if len(attributes) != len(shape.compiled._result_columns):  # not expected of a select
                shape.usable = False
                return None
            shape.results = _result_processors(conn.dialect, shape.compiled, attributes)
        else:
            records = await driver.fetch(sql, *args)
    except asyncpg.PostgresError as error:  # the server refused it: the error SQLAlchemy would raise
        if driver.is_closed():
            return None
        raise _as_sqlalchemy(sync, error, sql, args) from error
    except Exception:  # the connection failed: SQLAlchemy runs it again, invalidates it, raises
        return None
    for after in sync.dispatch.after_cursor_execute:
        after(sync, None, sql, args, None, False)
    if not shape.results:
        return cast(list[Row], records)
    found: list[Row] = []
    for record in records:
        row = list(record)
        for i, process in shape.results:
            row[i] = process(row[i])
        found.append(row)
    return found


def _as_sqlalchemy(sync: Connection, error: Exception, sql: str, args: list[Any]) -> DBAPIError:
    """``error`` as SQLAlchemy raises it: translated by its asyncpg adapter (a DBAPI error carrying the
    SQLSTATE), then wrapped as the matching ``sqlalchemy.exc`` error (``core/errors`` answers those)."""
    try:
        sync.connection.dbapi_connection._handle_exception(error)  # type: ignore[union-attr]
    except Exception as translated:
        dialect = sync.dialect
        wrapped = DBAPIError.instance(sql, args, translated, dialect.loaded_dbapi.Error, dialect=dialect)
        return cast(DBAPIError, wrapped)
    raise AssertionError("the adapter always raises")  # pragma: no cover


def _result_processors(
    dialect: Dialect, compiled: SQLCompiler, attributes: Sequence[Any]
) -> tuple[tuple[int, Processor], ...]:
    """The columns' processors, as SQLAlchemy's ``CursorResult`` picks them (the column's type and the
    server's type of it), for the columns that have one."""
    found = (
        column.type._cached_result_processor(dialect, attribute.type.oid)
        for column, attribute in zip(compiled._result_columns, attributes, strict=True)
    )
    return tuple((i, process) for i, process in enumerate(found) if process is not None)
