"""Scope checks of a list's ``org_unit_id`` kept by the process (``orgs/service.get_visible_life``): a
unit the caller was let into, read again while the tree has not changed, costs no statement, for them and
for a colleague whose roles sit at the same units; a unit moved out of their reach is a 404 on the very
next request; a refusal is never kept; without a maximum age nothing is."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.test_statements import counted
from tests.builders import Tree, build_country

API = "/api/v1"


async def test_a_unit_let_in_is_kept_until_the_tree_changes(
    client: httpx.AsyncClient, tree: Tree, _test_engine: AsyncEngine, app: FastAPI
) -> None:
    c = await build_country(tree)
    admin = tree.auth(await tree.admin())
    assessor = tree.auth(await tree.user(("assessor", c.province_a)))
    colleague = tree.auth(await tree.user(("assessor", c.province_a)))
    outsider = await tree.user(("assessor", c.province_b))
    staff = await tree.person(c.commune_a2, "staff")
    await tree.evaluation(staff, 2025, "recognised")
    listed = {"org_unit_id": c.commune_a2.id}

    first = await client.get(f"{API}/evaluations", params=listed, headers=assessor)
    assert first.status_code == 200 and first.json()["total"] == 1, first.text
    await client.get(f"{API}/me", headers=colleague)  # their caller, kept
    for who in (assessor, colleague):
        with counted(_test_engine) as seen:
            again = await client.get(f"{API}/evaluations", params=listed, headers=who)
        assert again.content == first.content
        assert len(seen) == 1, seen  # the page with its count: no unit, no grant read
    for _ in range(2):  # refused every time, however often asked
        refused = await client.get(f"{API}/evaluations", params=listed, headers=tree.auth(outsider))
        assert refused.status_code == 404, refused.text

    version = (await client.get(f"{API}/org-units/{c.commune_a2.id}", headers=admin)).json()["version"]
    moved = await client.post(
        f"{API}/org-units/{c.commune_a2.id}/move",
        json={"parent_id": c.province_b.id, "version": version},
        headers=admin,
    )
    assert moved.status_code == 200, moved.text
    assert (await client.get(f"{API}/evaluations", params=listed, headers=assessor)).status_code == 404
    assert (await client.get(f"{API}/evaluations", params=listed, headers=tree.auth(outsider))).json()[
        "total"
    ] == 1

    app.state.unit_lives.max_age = 0  # CDHT_CACHE_MAX_AGE_SECONDS=0: read every time
    for _ in range(2):
        with counted(_test_engine) as seen:
            assert (
                await client.get(f"{API}/evaluations", params=listed, headers=tree.auth(outsider))
            ).status_code == 200
        assert len(seen) == 2, seen
