"""The hot lists' statements are built once per shape with their values bound (``core/pagination.Paged``):
the same SQL runs for other values, and answers for those values, never for the ones the statement was
first built with."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.test_statements import counted
from tests.builders import Tree, build_country


def _page_of(seen: list[str], table: str) -> str:
    """The page statement of ``table`` among the statements a request ran."""
    return next(s for s in seen if s.startswith("SELECT") and f"FROM {table}" in s and "page_total" in s)


async def test_org_units_children_of_two_parents_run_one_statement(
    client: httpx.AsyncClient, tree: Tree, _test_engine: AsyncEngine
) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.nation)))
    answers, pages = {}, []
    for parent in (c.district_a, c.province_b):
        with counted(_test_engine) as seen:
            r = await client.get("/api/v1/org-units", params={"parent_id": parent.id}, headers=h)
        assert r.status_code == 200, r.text
        answers[parent.id] = [u["name"] for u in r.json()["items"]]
        pages.append(_page_of(seen, "org_units"))
    assert answers == {c.district_a.id: ["Xã A", "Xã A2"], c.province_b.id: ["Xã B"]}
    assert pages[0] == pages[1]


async def test_top_units_follow_each_callers_roles(client: httpx.AsyncClient, tree: Tree) -> None:
    """The caller's topmost units are bound, not built in: two callers of one shape see their own."""
    c = await build_country(tree)
    one = tree.auth(await tree.user(("viewer", c.commune_a), ("viewer", c.school_a)))
    two = tree.auth(await tree.user(("viewer", c.province_b), ("org_admin", c.commune_a2)))
    names = {}
    for who, h in (("one", one), ("two", two)):
        r = await client.get("/api/v1/org-units", headers=h)
        assert r.status_code == 200, r.text
        names[who] = sorted(u["name"] for u in r.json()["items"])
    assert names == {"one": ["Xã A"], "two": ["Tỉnh B", "Xã A2"]}


async def test_evaluations_of_two_units_and_years_run_one_statement(
    client: httpx.AsyncClient, tree: Tree, _test_engine: AsyncEngine
) -> None:
    c = await build_country(tree)
    a = await tree.evaluation(await tree.person(c.school_a), 2025)
    b = await tree.evaluation(await tree.person(c.school_b), 2024)
    await tree.evaluation(await tree.person(c.school_b), 2025)
    h = tree.auth(await tree.user(("org_admin", c.nation)))
    found, pages = {}, []
    for unit, year in ((c.province_a, 2025), (c.province_b, 2024)):
        with counted(_test_engine) as seen:
            r = await client.get(
                "/api/v1/evaluations", params={"org_unit_id": unit.id, "year": year}, headers=h
            )
        assert r.status_code == 200, r.text
        found[unit.id] = [e["id"] for e in r.json()["items"]]
        pages.append(_page_of(seen, "evaluations"))
    assert found == {c.province_a.id: [a.id], c.province_b.id: [b.id]}
    assert pages[0] == pages[1]


async def test_own_evaluations_and_scope_are_bound_per_caller(client: httpx.AsyncClient, tree: Tree) -> None:
    """Without a unit: the caller's scope and their own evaluations, whoever asked first."""
    c = await build_country(tree)
    in_a = await tree.evaluation(await tree.person(c.school_a))
    member = await tree.user(("assessor", c.school_b))
    mine = await tree.evaluation(await tree.person(c.commune_a2, user=member))
    in_b = await tree.evaluation(await tree.person(c.school_b))
    other = await tree.user(("assessor", c.school_a))
    await tree.person(c.school_a, user=other)
    seen = {}
    for who, user in (("member", member), ("other", other)):
        r = await client.get("/api/v1/evaluations", headers=tree.auth(user))
        assert r.status_code == 200, r.text
        seen[who] = sorted(e["id"] for e in r.json()["items"])
    assert seen == {"member": sorted([mine.id, in_b.id]), "other": [in_a.id]}


async def test_roots_of_any_number_reach_their_subtrees_alone(client: httpx.AsyncClient, tree: Tree) -> None:
    """A caller's roots are bound in slots (``core/slots.py``: 3 roots in 4, the last repeated): each
    root's subtree is in scope, and the padding reaches nothing more, in lists, loads and top units."""
    c = await build_country(tree)
    in_dept = await tree.evaluation(await tree.person(c.dept_a))
    in_a2 = await tree.evaluation(await tree.person(c.commune_a2))
    in_b = await tree.evaluation(await tree.person(c.school_b))
    outside = await tree.evaluation(await tree.person(c.commune_a))
    roles = (("assessor", c.school_a), ("assessor", c.commune_a2), ("assessor", c.commune_b))
    three = tree.auth(await tree.user(*roles))
    r = await client.get("/api/v1/evaluations", headers=three)
    assert r.status_code == 200, r.text
    assert sorted(e["id"] for e in r.json()["items"]) == sorted([in_dept.id, in_a2.id, in_b.id])
    r = await client.get("/api/v1/org-units", headers=three)
    assert sorted(u["name"] for u in r.json()["items"]) == ["Trường A", "Xã A2", "Xã B"]
    for seen in (in_dept, in_a2, in_b):
        assert (await client.get(f"/api/v1/evaluations/{seen.id}", headers=three)).status_code == 200
    assert (await client.get(f"/api/v1/evaluations/{outside.id}", headers=three)).status_code == 404
    assert (await client.get(f"/api/v1/org-units/{c.commune_a.id}", headers=three)).status_code == 404
