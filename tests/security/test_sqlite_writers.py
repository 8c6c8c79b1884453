"""Issue 14, item 8: on SQLite, concurrent writers wait for one another instead of failing.

SQLite has one writer at a time. A transaction that begins as a reader and then writes cannot wait for
the lock (``database is locked`` at once, answered 503), so the app begins every transaction that may
write with ``BEGIN IMMEDIATE`` (app/core/db.py) and the busy timeout queues the writers. These tests run
against a real SQLite file served by an app with its own engine and pool (tests/security/live.py), not the
rolled-back shared connection of the other tests. PostgreSQL has row locks and needs none of this.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from app.core.db import open_session
from app.orgs.models import OrgUnit
from app.people.models import Person
from tests.api.evaluation_flow import API, make_school, open_evaluation
from tests.builders import PASSWORD
from tests.security.live import ON_POSTGRES, Live, live_app

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(ON_POSTGRES, reason="SQLite's single writer; PostgreSQL writers wait on row locks"),
]


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with live_app(tmp_path, "cdht_writers") as served:
        yield served


def _people_csv(unit_code: str, rows: int) -> bytes:
    out = io.StringIO()
    out.write("full_name,unit_code,group\r\n")
    for n in range(rows):
        out.write(f"Người nhập {n},{unit_code},resident\r\n")
    return out.getvalue().encode()


async def _login(client: httpx.AsyncClient, username: str) -> httpx.Response:
    data = {"grant_type": "password", "username": username, "password": PASSWORD}
    return await client.post(f"{API}/auth/token", data=data)


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token}
    return await client.post(f"{API}/auth/token", data=data)


def _self_assessment(evaluation: dict[str, Any]) -> dict[str, Any]:
    scores = [{"indicator_id": s["indicator_id"], "score": 9} for s in evaluation["scores"]]
    return {"version": evaluation["version"], "scores": scores}


async def test_twenty_concurrent_writers_of_every_kind_all_succeed(live: Live) -> None:
    tree, client, admin = live.tree, live.client, live.admin
    district = await tree.unit("Huyện ghi", "district", code="WRITERS-D")
    commune = await tree.unit("Xã ghi", "commune", district, code="WRITERS-C")
    school = await make_school(tree, commune)
    evaluations = [await open_evaluation(client, tree, school) for _ in range(2)]
    members = [await tree.user(("member", commune), username=f"ghi.{n}") for n in range(9)]
    refresh_tokens = []
    for user in members[5:]:
        first = await _login(client, user.username)
        assert first.status_code == 200, first.text
        refresh_tokens.append(first.json()["refresh_token"])
    people_before = int(await tree.session.scalar(select(func.count()).select_from(Person)) or 0)
    await tree.session.commit()  # end the read: the builders' session holds no snapshot during the storm

    writers = [
        *(_login(client, user.username) for user in members[:5]),
        *(_refresh(client, token) for token in refresh_tokens),
        *(
            client.post(
                f"{API}/people",
                json={"full_name": f"Người {n}", "org_unit_id": commune.id, "group": "resident"},
                headers=admin,
            )
            for n in range(5)
        ),
        client.post(
            f"{API}/imports/people",
            params={"dry_run": "true"},
            files={"file": ("people.csv", _people_csv("WRITERS-C", 200), "text/csv")},
            headers=admin,
        ),
        *(
            client.put(
                f"{API}/evaluations/{ev['id']}/self-assessment",
                json=_self_assessment(ev),
                headers=school.admin,
            )
            for ev in evaluations
        ),
        *(
            client.post(
                f"{API}/org-units",
                json={"name": f"Thôn {n}", "kind": "village", "parent_id": commune.id},
                headers=admin,
            )
            for n in range(2)
        ),
        client.post(
            f"{API}/users",
            json={
                "username": "nguoi.moi.ghi",
                "password": "a-long-passphrase-9",
                "full_name": "Người Mới",
                "org_unit_id": commune.id,
            },
            headers=admin,
        ),
    ]
    assert len(writers) == 20
    readers = [client.get(f"{API}/org-units/{commune.id}", headers=admin) for _ in range(5)]
    responses = await asyncio.gather(*writers, *readers)

    failed = [
        (r.request.method, r.request.url.path, r.status_code, r.text[:200])
        for r in responses
        if r.status_code >= 300
    ]
    assert failed == [], failed
    dry_run = next(r for r in responses if r.request.url.path.endswith("/imports/people"))
    assert (dry_run.json()["dry_run"], dry_run.json()["created"]) == (True, 200)
    async with live.app.state.sessionmaker() as session:
        people = int(await session.scalar(select(func.count()).select_from(Person)) or 0)
        villages = await session.scalar(
            select(func.count()).select_from(OrgUnit).where(OrgUnit.parent_id == commune.id)
        )
    assert people == people_before + 5  # the dry run wrote nothing
    assert villages == 3  # the school and the two villages


async def test_a_writer_that_reads_first_waits_for_the_lock_and_a_reader_does_not(live: Live) -> None:
    """The mechanism: while one write transaction holds the lock, a second one that reads and then writes
    (the pattern that failed at once with a plain BEGIN) queues, then reads what the first committed;
    a read-only transaction is not held up at all (WAL)."""
    sessionmaker = live.app.state.sessionmaker
    unit = await live.tree.unit("Thôn", "village")
    rename = text("UPDATE org_units SET name = :name WHERE id = :id")
    holder = open_session(sessionmaker, write=True)
    await holder.execute(rename, {"name": "Thôn Một", "id": unit.id})

    async def second_writer() -> None:
        async with open_session(sessionmaker, write=True) as session:
            name = await session.scalar(select(OrgUnit.name).where(OrgUnit.id == unit.id))
            await session.execute(rename, {"name": f"{name} Hai", "id": unit.id})
            await session.commit()

    waiting = asyncio.create_task(second_writer())
    async with open_session(sessionmaker, write=False) as reader:
        assert await reader.scalar(select(OrgUnit.name).where(OrgUnit.id == unit.id)) == "Thôn"
    await asyncio.sleep(0.3)
    assert not waiting.done()  # queued behind the holder, not failed
    await holder.commit()
    await holder.close()
    await asyncio.wait_for(waiting, 10)
    async with open_session(sessionmaker, write=False) as reader:
        assert await reader.scalar(select(OrgUnit.name).where(OrgUnit.id == unit.id)) == "Thôn Một Hai"
