"""Issue 6, group 6: faults. A database that is unreachable or goes away in the middle of a request is a
503 ``service_unavailable`` (never a 500 or a hang) and the request after it works; a failed evidence
upload leaves neither file nor row; a crash between writing a file and committing leaves an orphan that
``cdht cleanup-evidence`` finds and removes (after a grace period that keeps in-flight uploads safe)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings, get_settings
from app.core.db import DbSession, make_engine, make_sessionmaker
from app.evaluations import evidence as evidence_service
from app.evaluations.cleanup import find_orphans, remove
from app.evaluations.models import Evidence
from app.main import create_app
from tests.api.evaluation_flow import API, make_school, open_evaluation, upload
from tests.builders import MINIMAL_PDF, Tree
from tests.security.live import ON_POSTGRES, live_settings, terminate_connections, throwaway_database

pytestmark = pytest.mark.anyio


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _gone() -> OperationalError:
    return OperationalError("UPDATE …", {}, ConnectionResetError("server closed the connection unexpectedly"))


def _unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "service_unavailable"
    assert "Traceback" not in r.text and "server closed" not in r.text  # no internals leak


async def test_an_unreachable_database_is_503_and_recovery_needs_no_restart(
    app: FastAPI, client: httpx.AsyncClient, tree: Tree, tmp_path: Path
) -> None:
    h = tree.auth(await tree.admin())
    working = app.state.sessionmaker
    url = "postgresql://cdht@127.0.0.1:1/cdht" if ON_POSTGRES else f"sqlite:///{tmp_path}/no/such/dir.db"
    dead = make_engine(url, pool=False)
    app.state.sessionmaker, app.state.engine = make_sessionmaker(dead), dead
    try:
        _unavailable(await client.get(f"{API}/me", headers=h))
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200  # the process itself is alive
    finally:
        await dead.dispose()
    app.state.sessionmaker = working  # the database is back
    assert (await client.get(f"{API}/me", headers=h)).status_code == 200


async def test_the_database_going_away_mid_request_is_503_and_changes_nothing(
    client: httpx.AsyncClient, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    unit = await tree.unit("Xã Cũ", "commune")
    h = tree.auth(await tree.admin())
    real_flush = AsyncSession.flush
    armed = {"faults": 1}

    async def flaky_flush(self: AsyncSession, *args: Any, **kwargs: Any) -> None:
        if armed["faults"] and self.dirty:  # after the request's reads: at its first write
            armed["faults"] -= 1
            raise _gone()
        await real_flush(self, *args, **kwargs)

    monkeypatch.setattr(AsyncSession, "flush", flaky_flush)
    before = await tree.snapshot()
    _unavailable(await client.patch(f"{API}/org-units/{unit.id}", json={"name": "Xã Mới"}, headers=h))
    assert await tree.snapshot() == before
    r = await client.patch(f"{API}/org-units/{unit.id}", json={"name": "Xã Mới"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Xã Mới"


@pytest.mark.postgres_only
@pytest.mark.skipif(not ON_POSTGRES, reason="terminating server connections needs PostgreSQL")
async def test_a_connection_killed_mid_request_is_503_then_the_pool_recovers(tmp_path: Path) -> None:
    async with throwaway_database(tmp_path, "cdht_fault") as url:
        app = create_app(live_settings(url, tmp_path))

        @app.get("/slow")
        async def slow(session: DbSession) -> dict[str, str]:
            await session.execute(text("SELECT pg_sleep(3)"))
            return {"status": "finished"}

        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://fault") as client:
                assert (await client.get("/readyz")).status_code == 200  # a pooled connection exists
                request = asyncio.create_task(client.get("/slow"))
                await asyncio.sleep(0.5)
                await terminate_connections(url)  # a restart or failover, mid-query
                _unavailable(await request)
                assert (await client.get("/readyz")).status_code == 200  # pre-ping replaced the dead one
        finally:
            await app.state.engine.dispose()


async def test_a_failed_upload_leaves_no_file_and_no_row(
    app: FastAPI, tree: Tree, criteria: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    school = await make_school(tree)
    evidence_dir = app.state.settings.effective_evidence_dir
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        ev = await open_evaluation(client, tree, school)
        indicator = ev["scores"][0]["indicator_id"]
        files_before = _files(evidence_dir)
        # The file is written, then the audit entry (same transaction) fails: database gone, or a bug.
        for fault, status in ((_gone(), 503), (RuntimeError("bug"), 500)):

            async def failing_log(*args: Any, fault: Exception = fault, **kwargs: Any) -> None:
                raise fault

            monkeypatch.setattr(evidence_service, "audit_step", failing_log)
            r = await upload(client, school.admin, ev["id"], indicator)
            assert r.status_code == status, r.text
            assert _files(evidence_dir) == files_before, f"{status}: the file outlived its transaction"
            assert await tree.session.scalar(select(func.count()).select_from(Evidence)) == 0
        monkeypatch.undo()
        assert (await upload(client, school.admin, ev["id"], indicator)).status_code == 201


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
async def own_store_client(
    settings: Settings, sessionmaker: Any, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app with an evidence folder of its own (the suite's is shared by every test)."""
    app = create_app(settings.model_copy(update={"evidence_dir": tmp_path / "evidence"}))
    app.state.sessionmaker = sessionmaker
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield app, client


async def test_a_crash_before_commit_leaves_an_orphan_that_cleanup_removes(
    own_store_client: tuple[FastAPI, httpx.AsyncClient],
    tree: Tree,
    criteria: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, client = own_store_client
    school = await make_school(tree)
    store = app.state.evidence_store
    ev = await open_evaluation(client, tree, school)
    indicator = ev["scores"][0]["indicator_id"]
    kept = await upload(client, school.admin, ev["id"], indicator)
    assert kept.status_code == 201
    # A crash after the file is written and before the commit: the process dies, so no rollback hook runs.
    monkeypatch.setattr(evidence_service, "on_rollback", lambda session, hook: None)

    async def crash(*args: Any, **kwargs: Any) -> None:
        raise _gone()

    monkeypatch.setattr(evidence_service, "audit_step", crash)
    assert (await upload(client, school.admin, ev["id"], indicator)).status_code == 503
    monkeypatch.undo()
    keys = set(await tree.session.scalars(select(Evidence.storage_key)))
    stored = [p for p in _files(store.root) if p.parent.name != "tmp"]
    orphans = [p for p in stored if p.name not in keys]
    assert len(orphans) == 1, "the simulated crash should leave exactly one file without a row"
    partial = store.root / "tmp" / "0123456789abcdef0123456789abcdef.part"
    partial.write_bytes(MINIMAL_PDF[:10])  # an upload cut off while streaming

    # Within the grace period nothing is touched: it may be an upload whose row is about to commit.
    assert await find_orphans(tree.session, store) == []
    for path in [*stored, partial]:
        _age(path, 2 * 3600)
    found = await find_orphans(tree.session, store, timedelta(hours=1))
    assert sorted(o.path for o in found) == sorted([*orphans, partial])
    assert remove(found) == 2
    assert all(p.exists() for p in stored if p.name in keys), "a file with a row was removed"
    assert not any(p.exists() for p in [*orphans, partial])
    r = await client.get(f"{API}/evidence/{kept.json()['id']}/content", headers=school.admin)
    assert r.status_code == 200 and r.content == MINIMAL_PDF


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("CDHT_DATABASE_URL", f"sqlite:///{tmp_path / 'cdht.db'}")
    monkeypatch.setenv("CDHT_VAR_DIR", str(tmp_path / "var"))
    for name in ("CDHT_SECRET_KEY", "CDHT_ENV", "CDHT_EVIDENCE_DIR"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_cleanup_evidence_command(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    assert main(["migrate"]) == 0
    root = cli_env.effective_evidence_dir
    old, young = root / "ab" / ("ab" + "0" * 30), root / "cd" / ("cd" + "1" * 30)
    for path in (old, young):
        path.parent.mkdir(parents=True)
        path.write_bytes(MINIMAL_PDF)
    _age(old, 3 * 3600)
    capsys.readouterr()
    assert main(["cleanup-evidence", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert str(old) in out and str(young) not in out and "dry run" in out
    assert old.exists()
    assert main(["cleanup-evidence"]) == 0
    assert "1 orphaned file(s) removed" in capsys.readouterr().out
    assert not old.exists() and young.exists()
    assert main(["cleanup-evidence", "--grace-minutes", "0"]) == 0
    assert not young.exists()
    assert main(["cleanup-evidence", "--grace-minutes", "-5"]) == 1
