"""List pagination: ``limit`` (default 50, at most 200; larger is a 422) and ``offset`` (>= 0)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Response
from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy import Integer, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from app.core.db import rows_of
from app.core.schemas import MAX_ID

MAX_LIMIT = 200
DEFAULT_LIMIT = 50

T = TypeVar("T")


@dataclass(frozen=True)
class PageParams:
    limit: int = DEFAULT_LIMIT
    offset: int = 0


async def _page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size, at most 200.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="Rows to skip.")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


Pagination = Annotated[PageParams, Depends(_page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def page_json(items: list[dict[str, Any]], total: int, page: PageParams) -> Response:
    """A :class:`Page` written as JSON straight from ``items`` that already hold the item model's fields,
    in its order and with the values it would write (built from the database's rows, which its checks
    keep in the model's domain): no validation of each item, which cost ~12 % of a page of 50
    evaluations' CPU (README, issue #15's "A page written without validating it again"). The route keeps
    its ``response_model`` for the OpenAPI document; ``tests/api/test_page_json.py`` and
    ``tests/evaluations/test_summary_row.py`` check that the model reads the bytes back and writes the
    very same."""
    body = {"items": items, "total": total, "limit": page.limit, "offset": page.offset}
    return Response(to_json(body), media_type="application/json")


_LIMIT = bindparam("page_limit", type_=Integer)
_OFFSET = bindparam("page_offset", type_=Integer)


@dataclass(frozen=True)
class Paged:
    """What a page of a list's statement runs (:func:`paged`): the page with its count, and the count
    alone. A list read on every request builds its statement once per shape, with its values bound by
    name (``bindparam``), and keeps its ``Paged``: building a statement and its cache key cost more
    Python than running it (the changelog of issue #15 in ``README.md``)."""

    rows: Select[Any]
    count: Select[int]


def paged(stmt: Select[*tuple[Any, ...]]) -> Paged:
    """``stmt`` with its count as a last column (``page_total``) and the page's limit and offset bound
    (``page_limit``, ``page_offset``), and its count alone."""
    counting = select(func.count()).select_from(stmt.order_by(None).subquery())
    counted = stmt.add_columns(counting.scalar_subquery().label("page_total"))
    return Paged(counted.limit(_LIMIT).offset(_OFFSET), counting)


async def fetch_page(
    session: AsyncSession,
    stmt: Select[Any] | Paged,
    page: PageParams,
    params: Mapping[str, Any] | None = None,
) -> tuple[list[Any], int]:
    """One page of ``stmt``'s first column (ORM entities, through the session) and the count of all its
    rows (as :func:`fetch_page_rows`)."""

    async def run(stmt: Executable, values: dict[str, Any]) -> Sequence[Sequence[Any]]:
        return (await session.execute(stmt, values)).all()

    rows, total = await _fetch(run, stmt, page, params)
    return [row[0] for row in rows], total


async def fetch_page_rows(
    session: AsyncSession,
    stmt: Select[*tuple[Any, ...]] | Paged,
    page: PageParams,
    params: Mapping[str, Any] | None = None,
) -> tuple[list[Sequence[Any]], int]:
    """One page of ``stmt``'s rows — columns, not entities: they are read as plain rows on the session's
    connection (``db.rows_of``) — and the count of all its rows, in one statement. ``stmt`` is a
    statement, or one built once (:class:`Paged`), whose bound values are ``params``.

    The count rides along each row of the page as an uncorrelated scalar subquery (the rows carry it as a
    last column, ``page_total``), which the database runs once, with a plan of its own. Not a window
    (``count(*) OVER ()``): that makes every matching row be read and sorted before the limit, where the
    page alone reads its rows by index: 5-6 s against 0.6 s for 3 million evaluations on PostgreSQL
    (``bench/RESULTS.md``, "HTTP before and after the page with its count"). A ``DISTINCT`` statement is
    counted after it. Only a page past the end, which has no row to carry the count, asks for it apart."""
    return await _fetch(partial(rows_of, session), stmt, page, params)


async def _fetch(
    run: Callable[[Executable, dict[str, Any]], Awaitable[Sequence[Sequence[Any]]]],
    stmt: Select[Any] | Paged,
    page: PageParams,
    params: Mapping[str, Any] | None,
) -> tuple[list[Sequence[Any]], int]:
    built = stmt if isinstance(stmt, Paged) else paged(stmt)
    values = {**(params or {}), "page_limit": page.limit, "page_offset": page.offset}
    rows = await run(built.rows, values)
    if rows:
        return list(rows), int(rows[0][-1])  # page_total, the last column
    if page.offset == 0:
        return [], 0
    counted = await run(built.count, dict(params or {}))
    return [], int(counted[0][0] or 0) if counted else 0
