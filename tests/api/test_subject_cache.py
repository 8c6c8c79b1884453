"""Callers kept between requests (``app/auth/subjects.py``, issue #15 item 3): a kept caller costs no
statement, and still a removed role, a deactivated user or a new grant holds on the very next request; a
change no session saw (SQL typed by hand) holds within ``CDHT_CACHE_MAX_AGE_SECONDS``."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.auth.models import RoleAssignment, User
from tests.api.test_statements import counted
from tests.builders import Tree, build_country

API = "/api/v1"


async def test_a_kept_caller_costs_no_statement(
    client: httpx.AsyncClient, tree: Tree, _test_engine: AsyncEngine, app: FastAPI
) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("viewer", c.province_a)))
    assert (await client.get(f"{API}/metrics", headers=h)).status_code == 200  # read, and kept
    with counted(_test_engine) as seen:
        assert (await client.get(f"{API}/metrics", headers=h)).status_code == 200
    assert seen == []
    app.state.auth.subjects.max_age = 0  # CDHT_CACHE_MAX_AGE_SECONDS=0: nothing kept
    for _ in range(2):
        with counted(_test_engine) as seen:
            assert (await client.get(f"{API}/metrics", headers=h)).status_code == 200
        assert len(seen) == 1, seen


async def test_a_removed_role_a_new_one_and_a_deactivated_user_hold_on_the_very_next_request(
    client: httpx.AsyncClient, tree: Tree, session: AsyncSession
) -> None:
    c = await build_country(tree)
    admin = tree.auth(await tree.admin())
    user = await tree.user(("viewer", c.province_a))
    h = tree.auth(user)
    for _ in range(2):  # the second is served from the kept caller
        assert (await client.get(f"{API}/org-units/{c.province_a.id}", headers=h)).status_code == 200
    assert (await client.get(f"{API}/org-units/{c.province_b.id}", headers=h)).status_code == 404

    granted = await client.post(
        f"{API}/users/{user.id}/roles", json={"role": "viewer", "org_unit_id": c.province_b.id}, headers=admin
    )
    assert granted.status_code == 201, granted.text
    assert (await client.get(f"{API}/org-units/{c.province_b.id}", headers=h)).status_code == 200

    first = await session.scalar(
        select(RoleAssignment.id).where(
            RoleAssignment.user_id == user.id, RoleAssignment.org_unit_id == c.province_a.id
        )
    )
    removed = await client.delete(f"{API}/users/{user.id}/roles/{first}", headers=admin)
    assert removed.status_code == 204
    assert (await client.get(f"{API}/org-units/{c.province_a.id}", headers=h)).status_code == 404

    found = await client.get(f"{API}/users/{user.id}", headers=admin)
    off = await client.patch(
        f"{API}/users/{user.id}", json={"is_active": False, "version": found.json()["version"]}, headers=admin
    )
    assert off.status_code == 200, off.text
    assert (await client.get(f"{API}/org-units/{c.province_b.id}", headers=h)).status_code == 401


async def test_a_change_no_session_saw_holds_within_the_maximum_age(
    client: httpx.AsyncClient, tree: Tree, session: AsyncSession, app: FastAPI
) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("viewer", c.province_a), username="typed.by.hand"))
    path = f"{API}/org-units/{c.province_a.id}"
    assert (await client.get(path, headers=h)).status_code == 200
    # On the connection, past the session: what an operator's SQL in psql is to the service.
    connection = await session.connection()
    await connection.execute(update(User).where(User.username == "typed.by.hand").values(is_active=False))
    await session.commit()
    app.state.auth.subjects.max_age = 0.2
    assert (await client.get(path, headers=h)).status_code == 200  # kept: nothing told this process
    await asyncio.sleep(0.3)
    assert (await client.get(path, headers=h)).status_code == 401


async def test_me_is_kept_with_its_caller_and_a_change_shows_on_the_very_next_request(
    client: httpx.AsyncClient, tree: Tree, _test_engine: AsyncEngine, app: FastAPI
) -> None:
    c = await build_country(tree)
    admin = tree.auth(await tree.admin())
    user = await tree.user(("viewer", c.province_a))
    person = await tree.person(c.school_a, user=user)
    h = tree.auth(user)
    first = await client.get(f"{API}/me", headers=h)
    assert first.status_code == 200, first.text
    with counted(_test_engine) as seen:
        again = await client.get(f"{API}/me", headers=h)
    assert seen == [] and again.content == first.content  # kept with the caller: the same bytes

    granted = await client.post(
        f"{API}/users/{user.id}/roles", json={"role": "viewer", "org_unit_id": c.province_b.id}, headers=admin
    )
    assert granted.status_code == 201, granted.text
    me = (await client.get(f"{API}/me", headers=h)).json()
    assert sorted(r["org_unit_id"] for r in me["roles"]) == sorted([c.province_a.id, c.province_b.id])

    version = (await client.get(f"{API}/people/{person.id}", headers=admin)).json()["version"]
    renamed = await client.patch(
        f"{API}/people/{person.id}", json={"full_name": "Trần Thị Mới", "version": version}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    assert (await client.get(f"{API}/me", headers=h)).json()["person"]["full_name"] == "Trần Thị Mới"

    version = (await client.get(f"{API}/users/{user.id}", headers=admin)).json()["version"]
    off = await client.patch(
        f"{API}/users/{user.id}", json={"is_active": False, "version": version}, headers=admin
    )
    assert off.status_code == 200, off.text
    assert (await client.get(f"{API}/me", headers=h)).status_code == 401

    app.state.auth.subjects.max_age = 0  # CDHT_CACHE_MAX_AGE_SECONDS=0: /me reads its caller every time
    h = tree.auth(await tree.user(("viewer", c.province_a)))
    for _ in range(2):
        with counted(_test_engine) as seen:
            assert (await client.get(f"{API}/me", headers=h)).status_code == 200
        assert len(seen) == 1, seen
