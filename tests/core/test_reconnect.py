"""No ping before each checkout (issue #15): a pooled connection the server closed — a restart, an idle
timeout, an operator's ``pg_terminate_backend`` — is found dead by the request's first statement, and the
request reads its subject again on a fresh connection instead of failing. Requests whose caller is kept by
the process (no subject read: ``auth/subjects.py``), reads and writes, do not fail either once the server
has closed the connections: the pool replaces them at checkout (``core/db._refuse_closed``).
PostgreSQL only: SQLite has no server to lose."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import commands
from app.cli import migrate
from app.core.config import Settings
from app.core.db import make_engine
from app.main import create_app
from tests.conftest import is_postgres


@pytest.fixture
async def own_database(database_url: str) -> AsyncIterator[str]:
    """A database of this test's own: the served app commits, the suite's database only rolls back."""
    if not is_postgres(database_url):
        pytest.skip("PostgreSQL only: SQLite has no server connection to lose")
    name = f"cdht_reconnect_{secrets.token_hex(4)}"
    server = make_engine(database_url, pool=False).execution_options(isolation_level="AUTOCOMMIT")
    async with server.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with server.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await server.dispose()


async def test_a_connection_the_server_closed_costs_no_failed_request(
    own_database: str, tmp_path: pytest.TempPathFactory
) -> None:
    settings = Settings(
        env="test",
        database_url=own_database,
        secret_key=secrets.token_urlsafe(40),
        var_dir=tmp_path,  # type: ignore[arg-type]
        import_worker=False,
        webhook_worker=False,
    )
    await asyncio.to_thread(migrate, settings)  # alembic runs its own event loop
    await commands.create_admin(settings, "admin", "a-long-passphrase", "Admin")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        login = await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "admin", "password": "a-long-passphrase"},
        )
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

        async def kill_the_pool(*, until_gone: bool = False) -> None:
            others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            # Autocommit: pg_stat_activity is read afresh by each statement, not once per transaction.
            killer = make_engine(own_database, pool=False).execution_options(isolation_level="AUTOCOMMIT")
            async with killer.connect() as conn:
                killed = await conn.scalar(text(f"SELECT count(pg_terminate_backend(pid)) {others}"))
                # A server that has closed them (not one closing them this very moment): its backends gone.
                for _ in range(500 if until_gone else 0):
                    if not await conn.scalar(
                        text(f"SELECT count(*) {others} AND backend_type = 'client backend'")
                    ):
                        break
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)  # the app's loop reads the server's goodbye
            await killer.dispose()
            assert killed and killed >= 1  # the pooled connections of the app

        await kill_the_pool()  # the sign-in's connection
        assert (await client.get("/api/v1/me", headers=auth)).status_code == 200  # its caller read again
        assert (await client.get("/readyz")).status_code == 200

        # The caller is kept now: no subject read to retry (a list still reads its page; /me and a page
        # of units read nothing at all once kept).
        assert (await client.get("/api/v1/evaluations", headers=auth)).status_code == 200
        await kill_the_pool(until_gone=True)
        assert (await client.get("/api/v1/evaluations", headers=auth)).status_code == 200
        await kill_the_pool(until_gone=True)
        unit = {"name": "Tỉnh Thử", "kind": "province"}
        assert (await client.post("/api/v1/org-units", json=unit, headers=auth)).status_code == 201
    await app.state.engine.dispose()
