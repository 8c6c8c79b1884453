"""``core/pagination.fetch_page``: a page and the count of every row in one statement (the count as a
scalar subquery the database runs once, never a window, which would read and sort every matching row
before the limit), the count apart only for a page past the end."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.db import ReadOnlySession, open_session, rows_of
from app.core.pagination import PageParams, fetch_page, fetch_page_rows
from app.orgs.models import OrgUnit
from tests.api.test_statements import counted
from tests.builders import Tree


async def test_every_page_counts_every_row_in_one_statement(
    tree: Tree, session: AsyncSession, _test_engine: AsyncEngine
) -> None:
    root = await tree.unit("Root", kind="province")
    for i in range(7):
        await tree.unit(f"Child {i}", parent=root)
    under = select(OrgUnit).where(OrgUnit.parent_id == root.id).order_by(OrgUnit.name)
    names = [f"Child {i}" for i in range(7)]
    engine = _test_engine
    for offset, limit in ((0, 3), (3, 3), (6, 3), (0, 200)):
        with counted(engine) as statements:
            units, total = await fetch_page(session, under, PageParams(limit=limit, offset=offset))
        assert [u.name for u in units] == names[offset : offset + limit]
        assert total == 7
        assert len(statements) == 1, statements
        assert " OVER " not in statements[0].upper(), statements

    # Past the end there is no row to carry the count: it is asked apart, and still right.
    with counted(engine) as statements:
        assert await fetch_page(session, under, PageParams(limit=3, offset=9)) == ([], 7)
    assert len(statements) == 2
    # Nothing at all: one statement, no count needed.
    nothing = under.where(OrgUnit.name == "nobody")
    with counted(engine) as statements:
        assert await fetch_page(session, nothing, PageParams()) == ([], 0)
    assert len(statements) == 1


async def test_rows_keep_their_columns_and_distinct_is_counted_after_it(
    tree: Tree, session: AsyncSession
) -> None:
    root = await tree.unit("Root", kind="province")
    for i in range(4):
        await tree.unit(f"School {i}", kind="school", parent=root)
        await tree.unit(f"Agency {i}", kind="agency", parent=root)
    columns = select(OrgUnit.name, OrgUnit.kind).where(OrgUnit.parent_id == root.id).order_by(OrgUnit.name)
    rows, total = await fetch_page_rows(session, columns, PageParams(limit=2, offset=1))
    # Each row carries the count last.
    assert [tuple(r) for r in rows] == [("Agency 1", "agency", 8), ("Agency 2", "agency", 8)]
    assert total == 8

    kinds = select(OrgUnit.kind).where(OrgUnit.parent_id == root.id).distinct().order_by(OrgUnit.kind)
    assert await fetch_page(session, kinds, PageParams(limit=1)) == (["agency"], 2)
    assert await fetch_page(session, kinds, PageParams(limit=1, offset=1)) == (["school"], 2)
    plain = await session.scalar(select(func.count()).select_from(kinds.subquery()))
    assert plain == 2


async def test_rows_are_read_past_the_orm_and_see_what_the_session_holds(
    tree: Tree, session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """``db.rows_of`` (which ``fetch_page_rows`` reads with): plain rows on the session's connection, not
    through the ORM's execution (no ``do_orm_execute``), after flushing what the session holds unwritten,
    as the session's own execute would; a read-only session has nothing to flush and is not asked to."""
    root = await tree.unit("Root", kind="province")
    orm_executions: list[object] = []
    listen = (session.sync_session, "do_orm_execute", orm_executions.append)
    event.listen(*listen)
    try:
        session.add(OrgUnit(name="Pending", kind="school", parent_id=root.id, depth=root.depth + 1))
        names = select(OrgUnit.name).where(OrgUnit.parent_id == root.id)
        assert [tuple(r) for r in await rows_of(session, names)] == [("Pending",)]
        rows, total = await fetch_page_rows(session, names, PageParams(limit=1, offset=5))
        assert (rows, total) == ([], 1)  # the count asked apart, on the connection too
        assert orm_executions == []
        await session.scalar(names)
        assert len(orm_executions) == 1  # the listener does see the ORM's path
    finally:
        event.remove(*listen)

    reading = open_session(sessionmaker, write=False, read_only=True)
    try:
        reading.add(OrgUnit(name="Never", kind="school", parent_id=root.id, depth=root.depth + 1))
        assert (await rows_of(reading, select(func.count()).select_from(OrgUnit)))[0][0] is not None
        assert reading.new  # not flushed: a read-only session does not write
        with pytest.raises(ReadOnlySession):  # nor runs a write past the ORM
            await rows_of(reading, update(OrgUnit).where(OrgUnit.id == root.id).values(name="Renamed"))
    finally:
        reading.expunge_all()
        await reading.close()
