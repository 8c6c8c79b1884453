"""The backup and restore drill (issue #18): data made through the API, with evidence files; ``cdht backup``;
``cdht restore`` into a fresh database (SQLite: a new file; PostgreSQL: a new, empty database, dropped
afterwards) and a fresh evidence folder. Every table then holds the same rows, every evidence file has
its sha256, and the counters equal a recount. A damaged or incomplete backup, one from a newer schema, and
a target that holds data (without ``--force``) are refused before anything is touched.

The data is committed (a backup reads what other connections see), so it lives in a throwaway database of
the suite's kind (tests/security/live.py), not in the rolled-back per-test transaction.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates.counters import rebuild
from app.aggregates.naive import naive_recount
from app.cli import alembic_config, main
from app.core.config import get_settings
from app.core.db import make_engine, make_sessionmaker
from app.core.tokens import TokenCodec
from app.evaluations.models import Evidence
from app.evaluations.storage import EvidenceStore
from app.main import create_app
from tests.api.evaluation_flow import API, drive_to, make_school, upload
from tests.builders import MINIMAL_PDF, Tree
from tests.security.live import (
    ON_POSTGRES,
    SECRET,
    SERVER_URL,
    _on_server,
    drop_database,
    live_app,
    live_settings,
)

pytestmark = pytest.mark.anyio


@dataclass
class Made:
    """The backup folder and what the source held when it was taken."""

    folder: Path
    rows: dict[str, list[tuple[object, ...]]]  # every row of every table
    files: dict[str, str]  # storage key → sha256 of the file in the source's evidence folder
    unit_ids: list[int]
    admin: dict[str, str]
    codec: TokenCodec


def set_env(mp: pytest.MonkeyPatch, url: str, var: Path) -> None:
    """Point ``cdht`` at a database and a var folder (evidence under it), as an operator's set-up does."""
    mp.setenv("CDHT_DATABASE_URL", url)
    mp.setenv("CDHT_VAR_DIR", str(var))
    mp.setenv("CDHT_EVIDENCE_DIR", str(var / "evidence"))
    mp.setenv("CDHT_SECRET_KEY", SECRET)
    mp.setenv("CDHT_ENV", "test")
    get_settings.cache_clear()


async def cdht(*argv: str) -> int:
    """The ``cdht`` command, in a thread (it runs its own event loop)."""
    code = await anyio.to_thread.run_sync(main, list(argv))
    get_settings.cache_clear()
    return code


@asynccontextmanager
async def fresh_database(tmp_path: Path, prefix: str) -> AsyncIterator[str]:
    """An empty database, not even migrated: what an operator restores into."""
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_path / prefix / 'cdht.db'}"
        return
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    await _on_server(url, f'CREATE DATABASE "{name}"')
    try:
        yield url
    finally:
        await drop_database(url)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _build(tmp_path: Path, mp: pytest.MonkeyPatch) -> Made:
    async with live_app(tmp_path, "cdht_bk") as live:
        settings = live.app.state.settings
        set_env(mp, settings.effective_database_url, settings.var_dir)
        assert await cdht("migrate") == 0  # as a deployment does at start: records the counters' definition
        tree, client = live.tree, live.client
        province = await tree.unit("Tỉnh Quảng Ngãi", "province")
        commune = await tree.unit("Xã Tịnh Hà", "commune", province)
        school = await make_school(tree, commune)
        for status in ("recognised", "recognised", "reviewed", "in_review", "returned"):
            await drive_to(client, tree, school, status, evidence=True)
        draft = await drive_to(client, tree, school, "draft")
        ids = []
        for n, score in enumerate(draft["scores"][:4]):  # files of their own, each with its own hash
            r = await upload(client, school.admin, draft["id"], score["indicator_id"], MINIMAL_PDF + b"%" * n)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        r = await client.delete(f"{API}/evidence/{ids[0]}", headers=school.admin)  # its file goes too
        assert r.status_code == 204, r.text
        members = [await tree.person(commune, "resident") for _ in range(3)]
        await tree.household(commune, members)

        store = EvidenceStore(settings.effective_evidence_dir)
        (store.root / "ff").mkdir(parents=True, exist_ok=True)
        (store.root / "ff" / ("ff" + "0" * 30)).write_bytes(b"an orphan: no row names it")

        folder = tmp_path / "backup"
        assert await cdht("backup", "--to", str(folder)) == 0
        keys = (await tree.session.scalars(select(Evidence.storage_key))).all()
        assert len(keys) > 40
        return Made(
            folder=folder,
            rows=await tree.snapshot(),
            files={key: sha256(store.path_for(key)) for key in keys},
            unit_ids=[province.id, commune.id, school.unit.id],
            admin=live.admin,
            codec=tree.codec,
        )


@pytest.fixture(scope="module")
async def made(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Made]:
    """One source, backed up once, for every test of the module (the source is dropped after)."""
    with pytest.MonkeyPatch.context() as mp:
        yield await _build(tmp_path_factory.mktemp("source"), mp)
    get_settings.cache_clear()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    get_settings.cache_clear()


async def _cells(session: AsyncSession, sql: str) -> set[tuple[object, ...]]:
    return {tuple(row) for row in await session.execute(text(sql))}


COUNTERS = "SELECT org_unit_id, year, kind, grp, level, n FROM aggregate_counts WHERE n != 0"
QUEUE = "SELECT org_unit_id, year, submitted_on, n FROM review_queue_counts WHERE n != 0"


async def test_restore_drill_into_a_fresh_database(
    made: Made, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    manifest = json.loads((made.folder / "manifest.json").read_text())
    assert manifest["tables"] == {table: len(rows) for table, rows in made.rows.items()} | {
        "alembic_version": 1
    }
    assert len([f for f in manifest["files"] if f["path"].startswith("evidence/")]) == len(made.files)
    assert not any("ff" + "0" * 30 in f["path"] for f in manifest["files"])  # the orphan stayed behind

    var = tmp_path / "restored"
    async with fresh_database(tmp_path, "cdht_restored") as url:
        set_env(env, url, var)
        assert await cdht("restore", "--from", str(made.folder)) == 0

        engine = make_engine(url, pool=False)
        try:
            async with make_sessionmaker(engine)() as session:
                tree = Tree(session, made.codec)
                restored = await tree.snapshot()
                # Every table holds as many rows as the source, and the very same rows.
                assert {t: len(r) for t, r in restored.items()} == {t: len(r) for t, r in made.rows.items()}
                assert restored == made.rows
                # Every evidence file is back, with the sha256 of the source's file and of its row.
                store = EvidenceStore(var / "evidence")
                recorded = dict((await session.execute(select(Evidence.storage_key, Evidence.sha256))).all())
                assert recorded.keys() == made.files.keys()
                for key, sha in recorded.items():
                    assert sha256(store.path_for(key)) == made.files[key] == sha, key
                # The counters equal a recount from the restored tables.
                counters, queue = await _cells(session, COUNTERS), await _cells(session, QUEUE)
                assert counters and queue
                await rebuild(session)
                assert await _cells(session, COUNTERS) == counters
                assert await _cells(session, QUEUE) == queue
                await session.rollback()
                expected = {unit: await naive_recount(session, unit, 2025) for unit in made.unit_ids}
        finally:
            await engine.dispose()

        # And the restored service serves them: the source's tokens still work (same key, same users).
        app = create_app(live_settings(url, var))
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://restored") as client:
                for unit in made.unit_ids:
                    r = await client.get(
                        f"{API}/aggregates/progress",
                        params={"org_unit_id": unit, "year": 2025},
                        headers=made.admin,
                    )
                    assert r.status_code == 200, r.text
                    got = {m["metric"]: (m["numerator"], m["denominator"]) for m in r.json()["metrics"]}
                    assert got == {k: v for k, v in expected[unit].items() if k in got}, unit
        finally:
            await app.state.engine.dispose()


def _copy(made: Made, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(made.folder, folder)
    return folder


async def _untouched(url: str, var: Path) -> None:
    """Nothing was written: no evidence folder, no database file (SQLite) or no table (PostgreSQL)."""
    assert not (var / "evidence").exists()
    if not ON_POSTGRES:
        assert not await anyio.Path(url.removeprefix("sqlite:///")).exists()
        return
    engine = make_engine(url, pool=False)
    try:
        async with engine.connect() as conn:
            assert not await conn.scalar(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("damage", ["tampered", "missing", "truncated dump", "no manifest"])
async def test_a_damaged_backup_is_refused_before_anything_is_touched(
    made: Made, tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    folder = _copy(made, tmp_path)
    key = sorted(made.files)[3]
    evidence = folder / "evidence" / key[:2] / key
    database = folder / json.loads((folder / "manifest.json").read_text())["files"][0]["path"]
    if damage == "tampered":
        evidence.write_bytes(evidence.read_bytes().replace(b"%PDF-1.4", b"%PDF-1.5"))
        expected = [f"evidence/{key[:2]}/{key}", "sha256"]
    elif damage == "missing":
        evidence.unlink()
        expected = [f"evidence/{key[:2]}/{key}: missing"]
    elif damage == "truncated dump":
        database.write_bytes(database.read_bytes()[:1000])
        expected = [f"{database.name}: 1000 bytes"]
    else:
        (folder / "manifest.json").unlink()
        expected = ["no manifest.json"]
    var = tmp_path / "restored"
    async with fresh_database(tmp_path, "cdht_refused") as url:
        set_env(env, url, var)
        capsys.readouterr()
        assert await cdht("restore", "--from", str(folder)) == 1
        err = capsys.readouterr().err
        assert all(part in err for part in expected), err
        assert "Nothing was changed" in err
        await _untouched(url, var)


async def test_a_backup_from_a_newer_schema_is_refused(
    made: Made, tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(made, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["alembic_revision"], manifest["app_version"] = "9999_from_the_future", "9.9.9"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    async with fresh_database(tmp_path, "cdht_newer") as url:
        set_env(env, url, tmp_path / "restored")
        assert await cdht("restore", "--from", str(folder)) == 1
        err = capsys.readouterr().err
        assert "9999_from_the_future" in err and "9.9.9" in err and "Nothing was changed" in err


async def test_a_database_that_holds_data_is_replaced_only_with_force(
    made: Made, tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with fresh_database(tmp_path, "cdht_held") as url:
        set_env(env, url, tmp_path / "var")
        assert await cdht("migrate") == 0
        assert await cdht("restore", "--from", str(made.folder)) == 0  # schema, no rows: nothing to lose
        engine = make_engine(url, pool=False)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE org_units SET name = 'Changed after the restore'"))
            capsys.readouterr()
            assert await cdht("restore", "--from", str(made.folder)) == 1
            err = capsys.readouterr().err
            assert "holds data" in err and "--force" in err
            async with engine.connect() as conn:
                assert await conn.scalar(text("SELECT count(*) FROM org_units WHERE name LIKE 'Changed%'"))
            assert await cdht("restore", "--from", str(made.folder), "--force") == 0
            async with engine.connect() as conn:
                assert not await conn.scalar(
                    text("SELECT count(*) FROM org_units WHERE name LIKE 'Changed%'")
                )
                assert await conn.scalar(text("SELECT count(*) FROM org_units")) == len(
                    made.rows["org_units"]
                )
        finally:
            await engine.dispose()


async def test_an_older_backup_is_migrated_to_the_current_schema(
    tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    older = script.get_revision(head).down_revision
    assert isinstance(older, str)
    async with fresh_database(tmp_path, "cdht_old") as old, fresh_database(tmp_path, "cdht_new") as new:
        if not ON_POSTGRES:
            Path(old.removeprefix("sqlite:///")).parent.mkdir(parents=True)
        await anyio.to_thread.run_sync(command.upgrade, alembic_config(old), older)
        set_env(env, old, tmp_path / "old")
        assert await cdht("backup", "--to", str(tmp_path / "backup")) == 0
        assert json.loads((tmp_path / "backup" / "manifest.json").read_text())["alembic_revision"] == older
        set_env(env, new, tmp_path / "new")
        assert await cdht("restore", "--from", str(tmp_path / "backup")) == 0
        assert "latest schema" in capsys.readouterr().out
        engine = make_engine(new, pool=False)
        try:
            async with engine.connect() as conn:
                assert await conn.scalar(text("SELECT version_num FROM alembic_version")) == head
        finally:
            await engine.dispose()


async def test_a_backup_goes_into_a_new_folder(
    made: Made, tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env(env, f"sqlite:///{tmp_path / 'cdht.db'}", tmp_path)
    before = sorted(p.name for p in made.folder.iterdir())
    assert await cdht("backup", "--to", str(made.folder)) == 1
    assert "not an empty folder" in capsys.readouterr().err
    assert sorted(p.name for p in made.folder.iterdir()) == before
