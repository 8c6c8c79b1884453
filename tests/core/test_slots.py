"""``core/slots.py``: a list bound in a fixed number of scalar parameters (the next power of two, padded
with its last value) selects exactly what ``IN`` the list selects, runs the same SQL for every length of
one width, and falls back to an expanding parameter past ``MAX_SLOTS``."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core import slots
from app.core.slots import bound, one_of, width
from app.orgs.models import OrgUnit
from tests.api.test_statements import counted
from tests.builders import Tree


def test_width_is_the_next_power_of_two_up_to_the_limit() -> None:
    assert [width(n) for n in (0, 1, 2, 3, 4, 5, 8, 9, 50, 64, 65)] == [1, 1, 2, 4, 4, 8, 8, 16, 64, 64, 128]
    assert width(slots.MAX_SLOTS) == slots.MAX_SLOTS
    assert width(slots.MAX_SLOTS + 1) == 0  # the expanding parameter


def test_slots_past_the_list_repeat_its_last_value() -> None:
    assert bound("ids", [7, 3, 5]) == {"ids_0": 7, "ids_1": 3, "ids_2": 5, "ids_3": 5}
    assert bound("ids", [9]) == {"ids_0": 9}
    assert bound("ids", []) == {"ids_0": None}


async def test_any_length_selects_the_listed_rows_with_one_statement_per_width(
    tree: Tree, session: AsyncSession, _test_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = await tree.unit("Root", kind="province")
    ids = [(await tree.unit(f"Unit {i}", parent=root)).id for i in range(9)]
    sql_by_width: dict[int, set[str]] = {}
    monkeypatch.setattr(slots, "MAX_SLOTS", 8)  # 9 values: the expanding parameter
    for n in range(1, 10):
        listed = ids[:n][::-1]  # the padding repeats the last value, whatever it is
        stmt = select(OrgUnit.id).where(one_of(OrgUnit.id, "ids", width(n))).order_by(OrgUnit.id)
        with counted(_test_engine) as seen:
            found = (await session.scalars(stmt, bound("ids", listed))).all()
        assert found == sorted(listed), n
        sql_by_width.setdefault(width(n), set()).update(seen)
    assert sorted(sql_by_width) == [0, 1, 2, 4, 8]
    # Lengths 5 to 8 run the very same SQL: SQLAlchemy compiles it once and rewrites nothing.
    assert all(len(sql) == 1 for sql in sql_by_width.values()), sql_by_width
    assert "POSTCOMPILE" not in next(iter(sql_by_width[8]))
