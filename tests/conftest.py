"""Test harness: the schema is built by the migrations once per run; every test runs inside a
transaction that is rolled back, and the app under test shares that transaction.

``CDHT_TEST_DATABASE_URL`` picks the database (default: a fresh SQLite file); ``.ci/run`` runs the suite
once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cli import alembic_config
from app.core.config import Settings
from app.core.db import make_engine
from app.main import create_app
from tests.builders import Tree

pytest_plugins = ["anyio"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if inspect.iscoroutinefunction(getattr(item, "function", None)):
            item.add_marker(pytest.mark.anyio)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql", "postgres:"))


def reset_database(url: str) -> None:
    """Start from an empty database so the run exercises every migration from the first one."""
    if is_postgres(url):
        asyncio.run(_reset_postgres(url))
        return
    path = Path(url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def _reset_postgres(url: str) -> None:
    engine = make_engine(url, pool=False)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("CDHT_TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    reset_database(url)
    from alembic import command

    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Settings:
    var = tmp_path_factory.mktemp("var")
    return Settings(
        env="test",
        var_dir=var,
        database_url=database_url,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        evidence_dir=var / "evidence",
    )


@pytest.fixture
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions bound to one connection whose outer transaction is rolled back after the test; each
    session's commit only releases a savepoint."""
    engine = make_engine(database_url, pool=False)
    async with engine.connect() as conn:
        outer = await conn.begin()
        yield async_sessionmaker(
            bind=conn, expire_on_commit=False, autoflush=False, join_transaction_mode="create_savepoint"
        )
        await outer.rollback()
    await engine.dispose()


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as s:
        yield s


@pytest.fixture
def app(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]):  # type: ignore[no-untyped-def]
    return create_app(settings, sessionmaker=sessionmaker)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def tree(session: AsyncSession, app) -> Tree:  # type: ignore[no-untyped-def]
    """Builders for units, users with roles, people and tokens (see tests/builders.py)."""
    return Tree(session, app.state.auth.codec)


@pytest.fixture
async def criteria(session: AsyncSession) -> dict[str | None, int]:
    """The national criteria sets from criteria_seeds/, loaded into this test's transaction:
    group → set id (None → the framework set)."""
    from app.criteria import repository as criteria_repo
    from app.criteria.loader import load_criteria
    from app.seeds import SEEDS_DIR

    await load_criteria(session, SEEDS_DIR / "criteria")
    await session.commit()
    sets = {}
    for code in ("KHVN-324-I", "KHVN-324-II", "KHVN-324-III", "KHVN-324-IV", "KHVN-324-V"):
        found = await criteria_repo.get_by_code(session, code)
        assert found is not None
        sets[found.group] = found.id
    return sets
