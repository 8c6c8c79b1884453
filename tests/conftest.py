"""Test harness: the schema is built by the migrations once per run; every test runs inside a
transaction that is rolled back, and the app under test shares that transaction.

``CDHT_TEST_DATABASE_URL`` picks the database (default: a fresh SQLite file); ``.ci/run`` runs the suite
once on SQLite and once on PostgreSQL.

Set-up is paid once per process, and ``make test`` runs one process per core (pytest-xdist):
- each worker has a database of its own: on SQLite a file in the worker's temporary directory, on
  PostgreSQL the database named after ``CDHT_TEST_DATABASE_URL``'s with the worker's id appended
  (``test_gw0``, …), created on the server if missing and emptied at the start (without xdist,
  ``-n 0``, the URL's own database, as before);
- the app is built once per worker (building one costs about a second: FastAPI analyses every route);
  each test installs a fresh state on it (``app.main.install_state``: settings, login throttle, workers,
  the sessionmaker bound to the test's transaction). A test that changes the app itself (adds a route,
  a dependency override) gets it rebuilt for the next test;
- seed files are parsed once per process (``app/core/seedfiles.py``).
Tests that share something outside their process (tests/clients, tests/dashboard: one server each) run on one
worker (``--dist loadgroup``, scheduled by folder: :func:`pytest_xdist_make_scheduler`).
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cli import alembic_config
from app.core.config import Settings
from app.core.db import make_engine, make_sessionmaker
from app.main import create_app, install_state
from tests.builders import Tree

pytest_plugins = ["anyio"]

TESTS = Path(__file__).resolve().parent
# Tests that share state outside their process (a folder's, or a file's): the same worker runs each group,
# one after another.
XDIST_GROUPS = {
    TESTS / "clients": "clients",  # one `cdht serve`, one npm install under .cache/
    TESTS / "dashboard": "dashboard",  # one demo server, one browser (Playwright's sync loop)
    TESTS / "operations" / "test_replicas.py": "replicas",  # one streaming replica on 127.0.0.1:5433
}


# The longest tests and groups, queued first under xdist so that no worker starts one of them last while
# the others have run out of work (measured with --durations: the dashboard's demo load alone is ~45 s).
LONGEST_FIRST = (
    "tests/dashboard/",
    "tests/clients/",
    "tests/security/test_fuzz.py",
    "tests/api/test_collectives_property.py",
    "tests/api/test_history_property.py",
    "tests/api/test_aggregates_property.py",
    "tests/security/test_scope_property.py",
    "tests/test_cli.py",
    "tests/operations/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if inspect.iscoroutinefunction(getattr(item, "function", None)):
            item.add_marker(pytest.mark.anyio)
    items.sort(key=lambda item: not item.nodeid.startswith(LONGEST_FIRST))  # stable: the rest keep order


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` by folder: every test of a folder in :data:`XDIST_GROUPS` goes to one worker,
    the rest are balanced one by one. (xdist's own loadgroup groups by an ``@group`` node id suffix that,
    with pytest 9.2 and xdist 3.8, never appears: its groups were silently split across workers.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    prefixes = {
        path.relative_to(TESTS.parent).as_posix() + ("::" if path.suffix == ".py" else "/"): group
        for path, group in XDIST_GROUPS.items()
    }

    class FolderGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return next((g for prefix, g in prefixes.items() if nodeid.startswith(prefix)), nodeid)

    return FolderGroups(config, log)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql", "postgres:"))


def worker_database_url(url: str) -> str:
    """The database of this xdist worker: on PostgreSQL ``<name>_<worker>`` on the same server; the URL
    itself outside xdist (and on SQLite, whose file is already in the worker's own directory)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not is_postgres(url):
        return url
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


def reset_database(url: str) -> None:
    """Start from an empty database so the run exercises every migration from the first one."""
    if is_postgres(url):
        asyncio.run(_reset_postgres(url))
        return
    path = Path(url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def _reset_postgres(url: str) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # The worker's own database (worker_database_url): dropped and made again, whatever a killed run
        # left in it or connected to it.
        name = make_url(url).database
        maintenance = make_url(url).set(database="postgres").render_as_string(hide_password=False)
        server = make_engine(maintenance, pool=False)
        try:
            async with server.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await server.dispose()
        return
    engine = make_engine(url, pool=False)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("CDHT_TEST_DATABASE_URL")
    url = (
        worker_database_url(configured)
        if configured
        else f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    )
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


@pytest.fixture(scope="session")
def _test_engine(database_url: str) -> Iterator[AsyncEngine]:
    """One engine per process for the tests' connections (its compiled-statement cache is reused). No
    pool: each test opens its own connection in its own event loop."""
    engine = make_engine(database_url, pool=False)
    yield engine
    asyncio.run(engine.dispose())


@pytest.fixture
async def sessionmaker(_test_engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions bound to one connection whose outer transaction is rolled back after the test; each
    session's commit only releases a savepoint."""
    async with _test_engine.connect() as conn:
        outer = await conn.begin()
        yield async_sessionmaker(
            bind=conn, expire_on_commit=False, autoflush=False, join_transaction_mode="create_savepoint"
        )
        await outer.rollback()


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as s:
        yield s


class AppPerProcess:
    """The app of this process, built on first use and again after a test changed it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: FastAPI | None = None
        self.built: tuple[object, ...] = ()

    @staticmethod
    def _shape(app: FastAPI) -> tuple[object, ...]:
        """What a test may change on the app beyond its state: routes, overrides, handlers, middleware."""
        return (
            tuple(app.router.routes),
            tuple(app.dependency_overrides.items()),
            tuple(app.exception_handlers.items()),
            tuple(app.user_middleware),
        )

    def get(self) -> FastAPI:
        if self.app is None or self._shape(self.app) != self.built:
            # The engine of /readyz; no pool, as each test runs in an event loop of its own.
            engine = make_engine(self.settings.effective_database_url, settings=self.settings, pool=False)
            self.app = create_app(self.settings, engine=engine, sessionmaker=make_sessionmaker(engine))
            self.built = self._shape(self.app)
        return self.app


@pytest.fixture(scope="session")
def _app_per_process(settings: Settings) -> AppPerProcess:
    return AppPerProcess(settings)


@pytest.fixture
def app(
    _app_per_process: AppPerProcess, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> FastAPI:
    """The app under test, with a fresh state whose sessions share the test's transaction."""
    app = _app_per_process.get()
    install_state(app, settings, app.state.engine, sessionmaker)
    return app


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
