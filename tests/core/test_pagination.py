"""``core/pagination.fetch_page``: a page and the count of every row in one statement (the count as a
scalar subquery the database runs once, never a window, which would read and sort every matching row
before the limit), the count apart only for a page past the end."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

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
    assert [(r.name, r.kind) for r in rows] == [("Agency 1", "agency"), ("Agency 2", "agency")]
    assert total == 8

    kinds = select(OrgUnit.kind).where(OrgUnit.parent_id == root.id).distinct().order_by(OrgUnit.kind)
    assert await fetch_page(session, kinds, PageParams(limit=1)) == (["agency"], 2)
    assert await fetch_page(session, kinds, PageParams(limit=1, offset=1)) == (["school"], 2)
    plain = await session.scalar(select(func.count()).select_from(kinds.subquery()))
    assert plain == 2
