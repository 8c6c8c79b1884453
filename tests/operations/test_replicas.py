"""Read replicas, for real (``app/core/replicas.py``): a streaming replica of the suite's PostgreSQL cluster
is made with ``pg_basebackup -R`` and started on 127.0.0.1:5433 (another free port if that one is taken);
the app is built against a database of its own (``cdht_replica_test``: what a replica sees must be
committed, which the suite's rolled-back transactions never are) and checked for where its reads go, for
read-your-writes while replay is paused, for the fallback when the replica lags and when it dies.

On SQLite these tests skip (SQLite has no replicas); without the PostgreSQL server binaries they skip with
a message, except in CI (``CI`` set), where they fail. The cluster must accept replication connections from
127.0.0.1 (``.ci/run`` adds the pg_hba.conf line). The write-mark tests at the end run on both databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import delete, event, make_url, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import write_marks
from app.auth.models import RoleAssignment, User
from app.cli import alembic_config
from app.core.config import Settings
from app.core.db import make_engine
from app.main import create_app
from app.orgs.models import OrgUnit
from tests.builders import Tree, build_country

TEST_URL = os.environ.get("CDHT_TEST_DATABASE_URL", "")
ON_POSTGRES = TEST_URL.startswith(("postgresql", "postgres:"))
DATABASE = "cdht_replica_test"
SECRET = "replica-test-secret-key-that-is-long-enough-0123"
YEAR = date.today().year
on_postgres = pytest.mark.skipif(
    not ON_POSTGRES, reason="read replicas need PostgreSQL: set CDHT_TEST_DATABASE_URL to run these"
)


def _postgres_bin(name: str) -> Path | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]) if found else (Path(p) if (p := shutil.which(name)) else None)


def _free_port(preferred: int) -> int:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _server_url(url: str, *, port: int | None = None, database: str) -> str:
    parsed = make_url(url).set(database=database)
    if port is not None:
        parsed = parsed.set(port=port)
    return parsed.render_as_string(hide_password=False)


async def _autocommit(url: str, statement: str) -> list[Any]:
    """One statement outside a transaction (CREATE DATABASE, pg_wal_replay_pause()); its rows, if any."""
    engine = make_engine(url, pool=False)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            result = await conn.execute(text(statement))
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


@dataclass
class Cluster:
    """The replica: a base backup of the suite's cluster, run by the ``postgres`` user on its own port."""

    root: Path
    port: int
    bindir: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *argv: str | Path) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *map(str, argv)], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
        self._run(
            self.bindir / "pg_ctl", "-D", self.data, "-l", self.root / "log", "-o", options, "-w", "start"
        )

    def stop(self) -> None:
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, database: str) -> str:
        return _server_url(TEST_URL, port=self.port, database=database)

    async def replay(self, paused: bool) -> None:
        await _autocommit(self.url("postgres"), f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()")

    async def caught_up(self, within: float = 60.0) -> None:
        """Until the replica streams from the primary and has replayed everything it has written so far,
        a commit included: a replica that has replayed no commit since it started cannot tell its lag
        while WAL without commits streams in (the suite's other workers creating databases), and rightly
        sends reads to the primary, which is not what the tests that wait here are about."""
        primary = _server_url(TEST_URL, database="postgres")
        await _autocommit(primary, "SELECT pg_current_xact_id()")  # a transaction id: a commit record
        [[target]] = await _autocommit(primary, "SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                [[done]] = await _autocommit(
                    self.url("postgres"),
                    f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn AND EXISTS "
                    "(SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')",
                )
                if done:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError("the replica did not catch up")


SLOT = "cdht_replica_test"


async def _drop_slot(maintenance: str) -> None:
    await _autocommit(
        maintenance,
        f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        f"WHERE slot_name = '{SLOT}' AND NOT active",
    )


def _make_replica(root: Path, bindir: Path) -> Cluster:
    cluster = Cluster(root, _free_port(5433), bindir)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    root.chmod(0o700)
    primary = make_url(TEST_URL)
    cluster._run(
        bindir / "pg_basebackup", "-h", primary.host or "127.0.0.1", "-p", str(primary.port or 5432),
        "-U", primary.username or "postgres", "-D", cluster.data, "-R", "-X", "stream", "-c", "fast",
        "-C", "-S", SLOT,
    )  # fmt: skip
    # The slot keeps the primary's WAL until the replica has it: while it is stopped (the death test),
    # the suite's other workers write enough WAL that without a slot the primary would recycle what the
    # replica still needs, and it could never catch up again.
    # A hot standby needs these at least as high as the primary's; the rest are defaults.
    names = "max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions"
    rows = asyncio.run(
        _autocommit(
            _server_url(TEST_URL, database="postgres"),
            "SELECT name, setting FROM pg_settings WHERE name IN ({})".format(
                ", ".join(f"'{n}'" for n in names)
            ),
        )
    )
    settings = "".join(f"{name} = {value}\n" for name, value in rows) + "hot_standby = on\n"
    (cluster.data / "postgresql.conf").write_text(settings)
    (cluster.data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    (cluster.data / "pg_ident.conf").write_text("")
    for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
        if os.geteuid() == 0:
            shutil.chown(cluster.data / name, "postgres")
    cluster.start()
    return cluster


@dataclass
class World:
    """What the tests read and write, committed on the primary (and so streamed to the replica)."""

    cluster: Cluster
    primary_url: str
    replica_url: str
    nation: int
    school: int
    district: int
    reader: int  # a viewer at the nation who never writes
    exporter: int  # an org_admin at the nation who never writes
    writers: list[int]  # org_admins of district A, one per test that writes


async def _populate(primary_url: str) -> dict[str, Any]:
    app = create_app(_settings(primary_url, ""))
    engine = make_engine(primary_url, pool=False)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            tree = Tree(session, app.state.auth.codec)
            c = await build_country(tree)
            reader = await tree.user(("viewer", c.nation))
            exporter = await tree.user(("org_admin", c.nation))
            writers = [await tree.user(("org_admin", c.district_a)) for _ in range(4)]
            await session.commit()
            return {
                "nation": c.nation.id,
                "school": c.school_a.id,
                "district": c.district_a.id,
                "reader": reader.id,
                "exporter": exporter.id,
                "writers": [w.id for w in writers],
            }
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not ON_POSTGRES:
        pytest.skip("read replicas need PostgreSQL: set CDHT_TEST_DATABASE_URL to run these")
    basebackup = _postgres_bin("pg_basebackup")
    if basebackup is None or _postgres_bin("pg_ctl") is None:
        message = "the PostgreSQL server binaries (pg_basebackup, pg_ctl) are not installed"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the replica tests: {message}")
        pytest.skip(message)
    primary_url = _server_url(TEST_URL, database=DATABASE)
    maintenance = _server_url(TEST_URL, database="postgres")
    asyncio.run(_autocommit(maintenance, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
    asyncio.run(_autocommit(maintenance, f'CREATE DATABASE "{DATABASE}"'))
    root = Path(tempfile.mkdtemp(prefix="cdht-replica-"))
    cluster: Cluster | None = None
    asyncio.run(_drop_slot(maintenance))  # one an interrupted run left would keep WAL forever
    try:
        from alembic import command

        command.upgrade(alembic_config(primary_url), "head")
        ids = asyncio.run(_populate(primary_url))
        cluster = _make_replica(root, basebackup.parent)
        asyncio.run(cluster.caught_up())
        yield World(cluster, primary_url, cluster.url(DATABASE), **ids)
    finally:
        if cluster is not None and cluster.running():
            cluster.stop()
        asyncio.run(_drop_slot(maintenance))
        shutil.rmtree(root, ignore_errors=True)
        asyncio.run(_autocommit(maintenance, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))


def _settings(primary_url: str, replica_url: str, **overrides: Any) -> Settings:
    var = Path(tempfile.gettempdir()) / "cdht-replica-test-var"
    values: dict[str, Any] = {
        "env": "test",
        "var_dir": var,
        "database_url": primary_url,
        "read_database_url": replica_url,
        "secret_key": SECRET,
        "import_worker": False,
        "webhook_worker": False,
        "replica_max_lag_seconds": 1.0,
        "replica_poll_seconds": 0.2,
        "replica_retry_seconds": 0.5,
        "read_your_writes_seconds": 1.5,
    }
    return Settings(**(values | overrides))


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    statements: dict[str, list[str]]  # "primary" / "replica": the SQL each served since the last reset

    def auth(self, user_id: int) -> dict[str, str]:
        token, _ = self.app.state.auth.codec.issue_access(str(user_id))
        return {"Authorization": f"Bearer {token}"}

    def reset(self) -> None:
        for seen in self.statements.values():
            seen.clear()

    async def get(self, path: str, user_id: int, **params: Any) -> httpx.Response:
        self.reset()
        r = await self.client.get(f"/api/v1{path}", params=params, headers=self.auth(user_id))
        assert r.status_code == 200, r.text
        return r


@contextlib.asynccontextmanager
async def service(world: World, **overrides: Any) -> AsyncIterator[Service]:
    app = create_app(_settings(world.primary_url, world.replica_url, **overrides))
    statements: dict[str, list[str]] = {"primary": [], "replica": []}

    def listener(name: str) -> Any:
        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements[name].append(" ".join(statement.split()))

        return before

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", listener("primary"))
    for replica in app.state.replicas.replicas:
        event.listen(replica.engine.sync_engine, "before_cursor_execute", listener("replica"))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Service(app, client, statements)
    finally:
        await app.state.replicas.aclose()
        await app.state.engine.dispose()


def staff(progress: httpx.Response) -> int:
    """The staff counted (the denominator of staff_recognised_pct): a person added is one more."""
    return next(m["denominator"] for m in progress.json()["metrics"] if m["metric"] == "staff_recognised_pct")


def body_reads(statements: list[str]) -> list[str]:
    """Statements other than the caller's identity (the subject read) and the replica's lag poll."""
    return [s for s in statements if "FROM users" not in s and "pg_is_in_recovery" not in s]


async def back_on_the_replica(svc: Service, user_id: int, **params: Any) -> httpx.Response:
    """The first dashboard read the replica answers again (each try 0.25 s apart, for at most 10 s): a
    replica that has just caught up may still be replaying other sessions' WAL at the first poll."""
    for _ in range(40):
        r = await svc.get("/aggregates/progress", user_id, **params)
        if body_reads(svc.statements["replica"]):
            return r
        await asyncio.sleep(0.25)
    raise AssertionError("reads never went back to the replica")


async def _add_person(svc: Service, writer: int, unit: int) -> None:
    r = await svc.client.post(
        "/api/v1/people",
        json={"full_name": "Nguyễn Văn Mới", "org_unit_id": unit, "group": "staff"},
        headers=svc.auth(writer),
    )
    assert r.status_code == 201, r.text


@on_postgres
async def test_dashboards_read_from_the_replica_and_writes_and_identity_from_the_primary(
    world: World,
) -> None:
    metric = "staff_recognised_pct"
    at_nation = {"org_unit_id": world.nation, "year": YEAR}
    dashboards = [
        ("/aggregates/progress", at_nation),
        ("/aggregates/breakdown", at_nation | {"metric": metric}),
        (
            "/aggregates/trend",
            {"org_unit_id": world.nation, "metric": metric, "from_year": YEAR - 1, "to_year": YEAR},
        ),
        ("/reporting/completeness", at_nation),
        ("/alerts", at_nation),
        ("/reports/annual", at_nation),
        ("/exports/evaluations", at_nation),
    ]
    # Lag allowed generously: a false alarm of a busy shared cluster is not what this test is about.
    async with service(world, replica_max_lag_seconds=30, read_your_writes_seconds=31) as svc:
        for path, params in dashboards:
            user = world.exporter if path.startswith("/exports") else world.reader
            await svc.get(path, user, **params)
            assert body_reads(svc.statements["replica"]), f"{path}: nothing read on the replica"
            # The caller's identity (and for an export, the scope check of its unit) on the primary only.
            primary = body_reads(svc.statements["primary"])
            assert len(primary) <= (1 if path.startswith("/exports") else 0), (path, primary)
        assert svc.app.state.replicas.fallbacks == {}

        svc.reset()
        await _add_person(svc, world.writers[0], world.school)
        assert svc.statements["replica"] == [], "a write touched the replica"
        assert any(s.startswith("INSERT INTO people") for s in svc.statements["primary"])
        # The write marked its author, on the primary.
        async with AsyncSession(svc.app.state.engine) as session:
            mark = await session.scalar(select(User.last_write_at).where(User.id == world.writers[0]))
        assert mark is not None


@on_postgres
async def test_a_revoked_role_is_refused_at_once_though_the_replica_still_has_it(world: World) -> None:
    async with service(world, replica_max_lag_seconds=30, read_your_writes_seconds=31) as svc:
        await svc.get("/aggregates/progress", world.writers[1], org_unit_id=world.district, year=YEAR)
        await world.cluster.replay(paused=True)
        try:
            async with AsyncSession(svc.app.state.engine) as session:
                await session.execute(
                    delete(RoleAssignment).where(RoleAssignment.user_id == world.writers[1])
                )
                await session.commit()
            r = await svc.client.get(
                "/api/v1/aggregates/progress",
                params={"org_unit_id": world.district, "year": YEAR},
                headers=svc.auth(world.writers[1]),
            )
            assert r.status_code == 404, r.text  # out of every subtree now: the unit does not exist for them
        finally:
            await world.cluster.replay(paused=False)


@on_postgres
async def test_a_writer_reads_their_write_while_the_replica_lags_behind_it(world: World) -> None:
    # A lag allowance so large the replica stays in use while paused: others still read the old numbers.
    async with service(world, replica_max_lag_seconds=30, read_your_writes_seconds=31) as svc:
        writer = world.writers[2]
        before = staff(await svc.get("/aggregates/progress", writer, org_unit_id=world.district, year=YEAR))
        await world.cluster.replay(paused=True)
        try:
            await _add_person(svc, writer, world.school)
            mine = await svc.get("/aggregates/progress", writer, org_unit_id=world.district, year=YEAR)
            assert staff(mine) == before + 1  # the writer sees their write at once...
            assert body_reads(svc.statements["primary"]) and not body_reads(svc.statements["replica"])
            theirs = await svc.get(
                "/aggregates/progress", world.reader, org_unit_id=world.district, year=YEAR
            )
            assert staff(theirs) == before  # ...from the primary: the replica has not replayed it
            assert body_reads(svc.statements["replica"])
            assert svc.app.state.replicas.reads["recent_write"] == 1
        finally:
            await world.cluster.replay(paused=False)


@on_postgres
async def test_a_lagging_replica_is_skipped_until_it_catches_up(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    async with service(world) as svc:  # lag allowed 1 s, polled every 0.2 s
        router = svc.app.state.replicas
        before = staff(await back_on_the_replica(svc, world.reader, org_unit_id=world.district, year=YEAR))
        fallbacks = router.fallbacks["lag"]
        await world.cluster.replay(paused=True)
        try:
            with caplog.at_level(logging.WARNING, logger="cdht.replicas"):
                await _add_person(svc, world.writers[3], world.school)
                await asyncio.sleep(1.5)  # the replica's last replayed commit is now over 1 s old
                r = await svc.get("/aggregates/progress", world.reader, org_unit_id=world.district, year=YEAR)
            assert staff(r) == before + 1, "a lagging replica answered"
            assert not body_reads(svc.statements["replica"]) and body_reads(svc.statements["primary"])
            assert router.fallbacks["lag"] == fallbacks + 1
            assert "behind" in caplog.text
        finally:
            await world.cluster.replay(paused=False)
        await world.cluster.caught_up()
        r = await back_on_the_replica(svc, world.reader, org_unit_id=world.district, year=YEAR)
        assert staff(r) == before + 1


@on_postgres
async def test_a_dead_replica_is_skipped_and_used_again_once_back(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    async with service(world) as svc:
        router = svc.app.state.replicas
        await svc.get("/aggregates/progress", world.reader, org_unit_id=world.nation, year=YEAR)
        assert body_reads(svc.statements["replica"])  # its pool now holds a connection
        world.cluster.stop()
        try:
            with caplog.at_level(logging.WARNING, logger="cdht.replicas"):
                for path in ("/aggregates/progress", "/alerts", "/reporting/completeness"):
                    await svc.get(path, world.reader, org_unit_id=world.nation, year=YEAR)  # 200, not 5xx
                    assert not body_reads(svc.statements["replica"])
                    assert body_reads(svc.statements["primary"])
            assert router.fallbacks["down"] >= 1
            assert "unreachable" in caplog.text
        finally:
            world.cluster.start()
        await world.cluster.caught_up()
        await back_on_the_replica(
            svc, world.reader, org_unit_id=world.nation, year=YEAR
        )  # retried after 0.5 s


# Write marks, on both databases (the replica-free part of read-your-writes).


def test_replicas_are_refused_beside_sqlite_and_with_a_short_window() -> None:
    with pytest.raises(ValidationError, match="PostgreSQL primary"):
        Settings(database_url="sqlite:///x.db", read_database_url="postgresql://h/db")
    with pytest.raises(ValidationError, match="READ_YOUR_WRITES"):
        Settings(
            database_url="postgresql://h/db",
            read_database_url="postgresql://r1/db, postgresql://r2/db",
            replica_max_lag_seconds=5,
            replica_poll_seconds=2,
            read_your_writes_seconds=6,
        )
    ok = Settings(
        database_url="postgresql://h/db", read_database_url="postgresql://r1/db, postgresql://r2/db"
    )
    assert ok.read_database_urls == ["postgresql://r1/db", "postgresql://r2/db"]


async def test_a_tracked_session_marks_its_user_only_when_it_changed_rows(
    session: AsyncSession, tree: Tree
) -> None:
    user = await tree.user()
    write_marks.track(session, user.id)
    await session.scalar(select(OrgUnit.id).limit(1))
    await session.commit()
    await session.refresh(user)
    assert user.last_write_at is None  # a read-only transaction leaves no mark

    session.add(OrgUnit(name="Đơn vị mới", kind="unit", depth=0))
    await session.commit()
    await session.refresh(user)
    assert user.last_write_at is not None
    session.info.pop(write_marks.WRITER)
