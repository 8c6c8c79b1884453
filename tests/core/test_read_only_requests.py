"""Safe requests only read (issue #15, "reads without an explicit transaction where safe"): a GET's session
refuses to write, on every database, and on PostgreSQL its statements run without a transaction of their
own (no BEGIN and COMMIT round trips); unsafe methods keep their one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.core.audit import AuditEntry
from app.core.config import Settings
from app.core.db import DbSession
from app.main import create_app
from tests.conftest import is_postgres

pytestmark = pytest.mark.anyio


async def test_a_get_that_tries_to_write_fails_and_writes_nothing(
    app: FastAPI, session: AsyncSession
) -> None:
    async def add_row(session: DbSession) -> dict[str, str]:
        session.add(AuditEntry(actor_user_id=None, entity_type="test", entity_id=1, action="written"))
        await session.flush()
        return {"written": "yes"}

    async def update_rows(session: DbSession) -> dict[str, str]:
        await session.execute(update(User).values(full_name="changed by a GET"))
        return {"written": "yes"}

    app.add_api_route("/_test/add", add_row, methods=["GET"])
    app.add_api_route("/_test/update", update_rows, methods=["GET"])
    app.add_api_route("/_test/add", add_row, methods=["POST"])
    rows = select(func.count()).select_from(AuditEntry).where(AuditEntry.entity_type == "test")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in ("/_test/add", "/_test/update"):
            r = await client.get(path)
            assert r.status_code == 500, (path, r.text)
            assert r.json()["error"]["code"] == "internal_error"
        assert await session.scalar(rows) == 0
        changed = select(func.count()).select_from(User).where(User.full_name == "changed by a GET")
        assert await session.scalar(changed) == 0

        r = await client.post("/_test/add")  # the same write in an unsafe method is the ordinary case
        assert r.status_code == 200, r.text
    assert await session.scalar(rows) == 1


@pytest.fixture
async def engine_bound_app(settings: Settings, database_url: str) -> AsyncIterator[FastAPI]:
    """The app on its own engine and pool (as served), not on the test's rolled-back connection."""
    if not is_postgres(database_url):
        pytest.skip("PostgreSQL only: on SQLite a GET keeps its read transaction (one WAL snapshot)")
    app = create_app(settings)
    try:
        yield app
    finally:
        await app.state.engine.dispose()


async def test_on_postgresql_a_get_reads_outside_a_transaction_and_a_post_inside_one(
    engine_bound_app: FastAPI,
) -> None:
    async def in_transaction(session: DbSession) -> dict[str, bool]:
        await session.execute(text("SELECT 1"))
        raw = await (await session.connection()).get_raw_connection()
        return {"in_transaction": raw.driver_connection.is_in_transaction()}

    engine_bound_app.add_api_route("/_test/tx", in_transaction, methods=["GET", "POST"])
    transport = httpx.ASGITransport(app=engine_bound_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/_test/tx")).json() == {"in_transaction": False}
        assert (await client.post("/_test/tx")).json() == {"in_transaction": True}
        assert (await client.get("/_test/tx")).json() == {"in_transaction": False}  # same pool, no leak


async def test_a_get_gives_its_connection_back_whatever_it_ran(settings: Settings) -> None:
    """A GET's session is closed, not committed (``core/db._reading``): after no statement, a statement,
    an error and a refused write alike, the pool has every connection back."""
    app = create_app(settings)

    async def nothing(session: DbSession) -> dict[str, int]:
        return {"ran": 0}

    async def one(session: DbSession) -> dict[str, int]:
        return {"ran": int(await session.scalar(text("SELECT 1")) or 0)}

    async def fails(session: DbSession) -> dict[str, int]:
        await session.execute(text("SELECT 1"))
        raise RuntimeError("the endpoint failed")

    async def writes(session: DbSession) -> dict[str, int]:
        await session.execute(update(User).values(full_name="changed by a GET"))
        return {"ran": 1}

    for path, endpoint in (("nothing", nothing), ("one", one), ("fails", fails), ("writes", writes)):
        app.add_api_route(f"/_test/{path}", endpoint, methods=["GET"])
    pool = app.state.engine.sync_engine.pool
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for path, status in (("nothing", 200), ("one", 200), ("fails", 500), ("writes", 500)) * 3:
                assert (await client.get(f"/_test/{path}")).status_code == status, path
                assert pool.checkedout() == 0, path
    finally:
        await app.state.engine.dispose()
