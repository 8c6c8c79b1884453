"""A database of its own for tests that cannot live in the rolled-back per-test transaction: real
concurrency (one connection per request), a fuzzer that drives the app from another thread's event loop,
and faults that break connections.

On PostgreSQL a throwaway database is created next to ``CDHT_TEST_DATABASE_URL``'s (never that one),
migrated with Alembic, and dropped at the end; on SQLite it is a fresh file. The data in it is committed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
from alembic import command
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.cli import alembic_config
from app.core.config import Settings
from app.core.db import make_engine
from app.criteria.loader import load_criteria
from app.main import create_app
from app.seeds import SEEDS_DIR
from tests.builders import Tree
from tests.conftest import is_postgres

SERVER_URL = os.environ.get("CDHT_TEST_DATABASE_URL", "")
ON_POSTGRES = is_postgres(SERVER_URL)
SECRET = "security-suite-secret-key-0123456789abcdefghij"


async def _on_server(url: str, *statements: str) -> None:
    maintenance = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    engine = make_engine(maintenance, pool=False)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def terminate_connections(url: str) -> None:
    """Cut every connection to ``url``'s database, as a restart or a failover would."""
    name = make_url(url).database
    await _on_server(
        url,
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
    )


async def create_database(tmp_path: Path, prefix: str = "cdht_sec") -> str:
    """A migrated, empty database of the suite's kind; its plain URL."""
    if not ON_POSTGRES:
        url = f"sqlite:///{tmp_path / f'{prefix}.db'}"
    else:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        url = make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
        await _on_server(url, f'CREATE DATABASE "{name}"')
    try:
        await anyio.to_thread.run_sync(command.upgrade, alembic_config(url), "head")
    except BaseException:
        await drop_database(url)
        raise
    return url


async def drop_database(url: str) -> None:
    if is_postgres(url):
        await terminate_connections(url)
        await _on_server(url, f'DROP DATABASE IF EXISTS "{make_url(url).database}"')


@asynccontextmanager
async def throwaway_database(tmp_path: Path, prefix: str = "cdht_sec") -> AsyncIterator[str]:
    url = await create_database(tmp_path, prefix)
    try:
        yield url
    finally:
        await drop_database(url)


def live_settings(url: str, var: Path, **overrides: object) -> Settings:
    return Settings(
        env="test",
        var_dir=var,
        database_url=url,
        secret_key=SECRET,
        evidence_dir=var / "evidence",
        **overrides,  # type: ignore[arg-type]
    )


@dataclass
class Live:
    """A served app on a real throwaway database (its own engine and pool, not the test's connection),
    a client for it, builders whose commits are real, and a system admin's headers."""

    app: FastAPI
    client: httpx.AsyncClient
    tree: Tree
    admin: dict[str, str]


@asynccontextmanager
async def live_app(tmp_path: Path, prefix: str) -> AsyncIterator[Live]:
    async with throwaway_database(tmp_path, prefix) as url:
        app = create_app(live_settings(url, tmp_path))
        async with app.state.sessionmaker() as session:
            await load_criteria(session, SEEDS_DIR / "criteria")
            await session.commit()
            tree = Tree(session, app.state.auth.codec)  # its builders commit: the data is really there
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{prefix}") as client:
                yield Live(app, client, tree, tree.auth(await tree.admin()))
        await app.state.engine.dispose()
