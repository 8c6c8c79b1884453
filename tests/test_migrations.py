"""The whole migration history goes up, down and up again on a database of its own (a temp SQLite file, or
a throwaway PostgreSQL database when the suite runs on PostgreSQL), and the schema it builds is the one
the models describe."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, make_url, text
from sqlalchemy.engine import Connection

import app.models  # noqa: F401  (every table on Base.metadata)
from app.cli import alembic_config
from app.core.db import Base, make_engine


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql", "postgres:"))


async def _on_server(url: str, statement: str) -> None:
    """Run a statement that cannot sit in a transaction (CREATE/DROP DATABASE) on the server's
    ``postgres`` database."""
    server = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    engine = make_engine(server, pool=False)
    try:
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def scratch_url(tmp_path: Any) -> Iterator[str]:
    test_url = os.environ.get("CDHT_TEST_DATABASE_URL", "")
    if not _is_postgres(test_url):
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"cdht_migrations_{uuid.uuid4().hex[:12]}"
    asyncio.run(_on_server(test_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(test_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_on_server(test_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _inspect(url: str) -> tuple[set[str], list[Any]]:
    """The tables present, and Alembic's list of differences between the database and the models."""

    def run(conn: Connection) -> tuple[set[str], list[Any]]:
        tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return tables, compare_metadata(context, Base.metadata)

    async def go() -> tuple[set[str], list[Any]]:
        engine = make_engine(url, pool=False)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(run)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_upgrade_downgrade_upgrade_round_trip(scratch_url: str) -> None:
    cfg = alembic_config(scratch_url)
    model_tables = set(Base.metadata.tables)

    command.upgrade(cfg, "head")
    tables, diff = _inspect(scratch_url)
    assert tables == model_tables, f"migrations and models disagree on tables: {tables ^ model_tables}"
    assert diff == [], f"the migrated schema differs from the models: {diff}"

    command.downgrade(cfg, "base")
    tables, _ = _inspect(scratch_url)
    assert tables == set(), f"downgrade to base left tables behind: {tables}"

    command.upgrade(cfg, "head")
    tables, diff = _inspect(scratch_url)
    assert tables == model_tables
    assert diff == []
