"""A page of units is read as rows of ``orgs/repository.UNIT_COLUMNS``, unpacked by position
(``orgs/service.rows_to_reads``): each field must come from the column of its name, and a list's item must
read exactly as the unit read alone (an ORM entity, ``to_read``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.orgs import past, service
from app.orgs import repository as repo
from tests.builders import Tree, build_country


async def test_each_field_comes_from_its_own_column(monkeypatch: pytest.MonkeyPatch) -> None:
    values: dict[str, Any] = {
        "id": 7,
        "name": "Xã Mới",
        "kind": "commune",
        "code": "C7",
        "valid_from": date(2020, 1, 1),
        "valid_to": date(2030, 1, 2),
        "version": 3,
        "created_at": datetime(2025, 1, 1, tzinfo=UTC),
        "updated_at": datetime(2025, 7, 1, tzinfo=UTC),
    }
    assert {column.key for column in repo.UNIT_COLUMNS} == set(values)

    async def as_of(session: AsyncSession, days: dict[int, date]) -> past.AsOf:
        assert days == {7: date(2025, 3, 1)}
        return past.AsOf(parents={7: 5}, depths={7: 2}, predecessors={7: [1, 2]}, successors={7: []})

    monkeypatch.setattr(past, "as_of", as_of)
    row = tuple(values[column.key] for column in repo.UNIT_COLUMNS)
    [read] = await service.rows_to_reads(None, [row], date(2025, 3, 1))  # type: ignore[arg-type]
    assert read.model_dump() == {
        **values,
        "parent_id": 5,
        "depth": 2,
        "predecessor_ids": [1, 2],
        "successor_ids": [],
    }


async def test_a_listed_unit_reads_as_the_unit_alone(
    client: httpx.AsyncClient, tree: Tree, session: AsyncSession
) -> None:
    c = await build_country(tree)
    c.commune_a.valid_from = date(2020, 1, 1)  # distinct dates: a swap of two columns would show
    await session.commit()
    h = tree.auth(await tree.user(("org_admin", c.nation)))
    version = (await client.get(f"/api/v1/org-units/{c.commune_a.id}", headers=h)).json()["version"]
    r = await client.patch(
        f"/api/v1/org-units/{c.commune_a.id}", json={"name": "Xã A mới", "version": version}, headers=h
    )
    assert r.status_code == 200, r.text
    lists = [
        await client.get("/api/v1/org-units", params={"parent_id": c.district_a.id}, headers=h),
        await client.get(f"/api/v1/org-units/{c.nation.id}/descendants", headers=h),
        await client.get("/api/v1/org-units", params={"q": "Xã"}, headers=h),
    ]
    seen = 0
    for listed in lists:
        assert listed.status_code == 200, listed.text
        for item in listed.json()["items"]:
            alone = await client.get(f"/api/v1/org-units/{item['id']}", headers=h)
            assert item == alone.json()
            seen += 1
    assert seen == 2 + 9 + 3
    renamed = next(i for i in lists[0].json()["items"] if i["id"] == c.commune_a.id)
    assert renamed["name"] == "Xã A mới" and renamed["valid_from"] == "2020-01-01"
    assert renamed["version"] == version + 1 and renamed["updated_at"] != renamed["created_at"]
