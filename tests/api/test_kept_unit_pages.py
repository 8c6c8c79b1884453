"""Pages of org units kept by the process (``app/orgs/pages.py``): a page read again while the tree has
not changed costs no statement, for the caller and for a colleague with the same roles; a unit created,
renamed or moved, a role granted, another day or another page reads the tree again; a caller with other
roles never gets a page that is not theirs, and a parent outside their scope is still a 404. Without an
age or a byte budget nothing is kept."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.dates import today
from app.core.pagination import Page
from app.orgs import pages
from app.orgs.schemas import OrgUnitRead
from tests.api.test_statements import counted
from tests.builders import Tree, build_country

API = "/api/v1"


def names(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return [unit["name"] for unit in page.json()["items"]]


async def test_a_page_of_an_unchanged_tree_reads_nothing_and_a_change_shows_on_the_very_next_read(
    client: httpx.AsyncClient, tree: Tree, _test_engine: AsyncEngine
) -> None:
    c = await build_country(tree)
    admin = tree.auth(await tree.admin())
    viewer = tree.auth(await tree.user(("viewer", c.province_a)))
    colleague = tree.auth(await tree.user(("viewer", c.province_a)))
    children = {"parent_id": c.district_a.id}

    first = await client.get(f"{API}/org-units", params=children, headers=viewer)
    assert names(first) == ["Xã A", "Xã A2"]
    adapter = Page[OrgUnitRead]  # the bytes FastAPI writes for the route's response model
    assert adapter.model_validate_json(first.content).model_dump_json(by_alias=True).encode() == first.content
    await client.get(f"{API}/org-units", params=children, headers=colleague)  # their caller, now kept
    for who in (viewer, colleague):
        with counted(_test_engine) as seen:
            again = await client.get(f"{API}/org-units", params=children, headers=who)
        assert again.content == first.content and again.headers["content-type"] == "application/json"
        assert seen == []

    new = {
        "name": "Xã A3",
        "kind": "commune",
        "parent_id": c.district_a.id,
        "valid_from": today().isoformat(),
    }
    created = await client.post(f"{API}/org-units", json=new, headers=admin)
    assert created.status_code == 201, created.text
    assert names(await client.get(f"{API}/org-units", params=children, headers=viewer)) == [
        "Xã A",
        "Xã A2",
        "Xã A3",
    ]
    # Another day, another page: yesterday the new unit did not exist.
    yesterday = {**children, "as_of": (today() - timedelta(days=1)).isoformat()}
    assert names(await client.get(f"{API}/org-units", params=yesterday, headers=viewer)) == ["Xã A", "Xã A2"]

    unit = created.json()
    renamed = await client.patch(
        f"{API}/org-units/{unit['id']}", json={"name": "Xã A Mới", "version": unit["version"]}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    assert "Xã A Mới" in names(await client.get(f"{API}/org-units", params=children, headers=viewer))

    version = renamed.json()["version"]
    moved = await client.post(
        f"{API}/org-units/{unit['id']}/move",
        json={"parent_id": c.province_b.id, "version": version},
        headers=admin,
    )
    assert moved.status_code == 200, moved.text
    assert names(await client.get(f"{API}/org-units", params=children, headers=viewer)) == ["Xã A", "Xã A2"]

    # Another page: read, not served from the first.
    one = await client.get(f"{API}/org-units", params={**children, "limit": 1}, headers=viewer)
    assert names(one) == ["Xã A"]


async def test_nothing_is_kept_without_an_age_or_a_budget(
    client: httpx.AsyncClient, tree: Tree, _test_engine: AsyncEngine, app: FastAPI
) -> None:
    c = await build_country(tree)
    viewer = tree.auth(await tree.user(("viewer", c.province_a)))
    assert names(await client.get(f"{API}/org-units", headers=viewer)) == ["Tỉnh A"]  # the caller, kept
    for setting in ("max_age", "max_bytes"):  # CDHT_CACHE_MAX_AGE_SECONDS=0, CDHT_KEPT_BODIES_MB=0
        was = getattr(app.state.bodies, setting)
        setattr(app.state.bodies, setting, 0)
        try:
            for _ in range(2):
                with counted(_test_engine) as seen:
                    assert names(await client.get(f"{API}/org-units", headers=viewer)) == ["Tỉnh A"]
                assert len(seen) == 2, seen  # the page with its count; the units' links, names, successions
        finally:
            setattr(app.state.bodies, setting, was)


async def test_a_kept_page_is_only_ever_its_own_callers(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    admin = tree.auth(await tree.admin())
    a = await tree.user(("viewer", c.province_a))
    b = tree.auth(await tree.user(("viewer", c.province_b)))
    assert names(await client.get(f"{API}/org-units", headers=tree.auth(a))) == ["Tỉnh A"]  # their top units
    assert names(await client.get(f"{API}/org-units", headers=b)) == ["Tỉnh B"]
    inside_a = {"parent_id": c.district_a.id}
    assert names(await client.get(f"{API}/org-units", params=inside_a, headers=tree.auth(a)))
    assert (await client.get(f"{API}/org-units", params=inside_a, headers=b)).status_code == 404

    granted = await client.post(
        f"{API}/users/{a.id}/roles", json={"role": "viewer", "org_unit_id": c.province_b.id}, headers=admin
    )
    assert granted.status_code == 201, granted.text
    assert names(await client.get(f"{API}/org-units", headers=tree.auth(a))) == ["Tỉnh A", "Tỉnh B"]
    assert names(await client.get(f"{API}/org-units", headers=b)) == ["Tỉnh B"]


async def test_a_page_kept_today_is_read_again_tomorrow(
    client: httpx.AsyncClient, tree: Tree, _test_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = await build_country(tree)
    viewer = tree.auth(await tree.user(("viewer", c.province_a)))
    for _ in range(2):  # read, then kept (the caller too)
        assert names(await client.get(f"{API}/org-units", headers=viewer)) == ["Tỉnh A"]
    monkeypatch.setattr(pages, "today", lambda: today() + timedelta(days=1))  # midnight has passed
    with counted(_test_engine) as seen:
        assert names(await client.get(f"{API}/org-units", headers=viewer)) == ["Tỉnh A"]
    assert len(seen) == 2, seen  # today's page is not tomorrow's
