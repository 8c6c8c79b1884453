"""List pagination: ``limit`` (default 50, at most 200; larger is a 422) and ``offset`` (>= 0)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

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


async def fetch_page(session: AsyncSession, stmt: Select[Any], page: PageParams) -> tuple[list[Any], int]:
    """Run ``stmt`` for one page (ORM entities) and count all its rows."""
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = (await session.scalars(stmt.limit(page.limit).offset(page.offset))).all()
    return list(rows), int(total or 0)
