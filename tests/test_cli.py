"""The ``cdht`` command against a SQLite file of its own: migrate, create-admin, demo, and then the
logins it printed work over HTTP."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.cli import main
from app.core.config import Settings, get_settings
from app.main import create_app


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    url = f"sqlite:///{tmp_path / 'data' / 'cdht.db'}"  # the folder does not exist yet: migrate makes it
    var = tmp_path / "var"
    monkeypatch.setenv("CDHT_DATABASE_URL", url)
    monkeypatch.setenv("CDHT_VAR_DIR", str(var))
    for name in ("CDHT_SECRET_KEY", "CDHT_ENV", "CDHT_EVIDENCE_DIR"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield url, var
    get_settings.cache_clear()


def _count(url: str, table: str) -> int:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def _login(url: str, var: Path, username: str, password: str) -> tuple[int, dict[str, object]]:
    app = create_app(Settings(database_url=url, var_dir=var))
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.post(
                "/api/v1/auth/token",
                data={"grant_type": "password", "username": username, "password": password},
            )
            if r.status_code != 200:
                return r.status_code, {}
            me = await client.get(
                "/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
            )
            return me.status_code, me.json()
    finally:
        await app.state.engine.dispose()


def test_migrate_creates_the_database(cli_env: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    url, var = cli_env
    assert main(["migrate"]) == 0
    assert "latest schema" in capsys.readouterr().out
    assert _count(url, "users") == 0
    assert main(["migrate"]) == 0  # again: nothing to do, no error
    assert (var / "secret_key").exists()  # development signing key, generated once


def create_admin(monkeypatch: pytest.MonkeyPatch, username: str, password: str) -> int:
    """``cdht create-admin`` with the password on standard input (never in argv)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(["create-admin", "--username", username, "--password-stdin"])


def test_create_admin_twice(
    cli_env: tuple[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, var = cli_env
    assert create_admin(monkeypatch, "quan.tri", "admin-password-1") == 0
    assert "quan.tri" in capsys.readouterr().out

    assert create_admin(monkeypatch, "quan.tri", "another-password") != 0
    err = capsys.readouterr().err
    assert "quan.tri" in err and "already exists" in err
    assert _count(url, "users") == 1

    assert create_admin(monkeypatch, "ngan", "short") != 0
    assert "password" in capsys.readouterr().err
    assert _count(url, "users") == 1

    # From the environment; with neither, and no terminal, a clear refusal (argv has no password option).
    monkeypatch.setenv("CDHT_ADMIN_PASSWORD", "env-password-123")
    assert main(["create-admin", "--username", "moi.truong"]) == 0
    monkeypatch.delenv("CDHT_ADMIN_PASSWORD")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["create-admin", "--username", "khong.co"]) != 0
    assert "CDHT_ADMIN_PASSWORD" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["create-admin", "--username", "x.y", "--password", "in-argv-12345"])
    assert _count(url, "users") == 2

    status, me = asyncio.run(_login(url, var, "quan.tri", "admin-password-1"))
    assert status == 200
    assert [(r["role"], r["org_unit_id"]) for r in me["roles"]] == [("admin", None)]  # type: ignore[index, union-attr]
    assert asyncio.run(_login(url, var, "quan.tri", "another-password"))[0] == 400


async def _no_evaluations(*_: object, **__: object) -> list[str]:
    return []


def test_demo_prints_logins_that_work_and_is_harmless_twice(
    cli_env: tuple[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo's evaluations (hundreds, each through the whole workflow, ~10 s) belong to the evaluation
    # tests; this test is about the command: tree, users, people, printed logins, idempotence.
    monkeypatch.setattr("app.demo.load_demo_evaluations", _no_evaluations, raising=False)
    monkeypatch.setattr("app.demo.load_collective_evaluations", _no_evaluations, raising=False)
    monkeypatch.setattr("app.demo.load_reporting", _no_evaluations, raising=False)  # reports need them
    url, var = cli_env
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "konbraih.admin" in out and "tamhunga.teacher" in out
    password = out.split("password for all:", 1)[1].split(")", 1)[0].strip()
    counts = {t: _count(url, t) for t in ("org_units", "users", "role_assignments", "people")}
    assert counts["users"] > 5 and counts["people"] > 50

    assert main(["demo"]) == 0
    assert "konbraih.admin" in capsys.readouterr().out  # the logins again
    assert {t: _count(url, t) for t in counts} == counts

    status, me = asyncio.run(_login(url, var, "konbraih.admin", password))
    assert status == 200
    assert [r["role"] for r in me["roles"]] == ["org_admin"]  # type: ignore[index, union-attr]
    status, me = asyncio.run(_login(url, var, "tamhunga.teacher", password))
    assert status == 200
    assert me["person"] is not None


def test_rebuild_aggregates_recounts_what_the_services_kept(
    cli_env: tuple[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.demo.load_demo_evaluations", _no_evaluations, raising=False)
    monkeypatch.setattr("app.demo.load_collective_evaluations", _no_evaluations, raising=False)
    monkeypatch.setattr("app.demo.load_reporting", _no_evaluations, raising=False)  # reports need them
    url, _ = cli_env
    assert main(["demo"]) == 0
    before = _cells(url)
    assert before  # the demo's people were counted as they were created, and moved by the 2025 reform
    capsys.readouterr()
    assert main(["rebuild-aggregates"]) == 0
    assert "rebuilt:" in capsys.readouterr().out
    assert _cells(url) == before


def _cells(url: str) -> set[tuple[object, ...]]:
    """The counters' non-zero cells (a change that cancelled out may leave a zero row behind)."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        return set(
            db.execute("SELECT org_unit_id, year, kind, grp, level, n FROM aggregate_counts WHERE n != 0")
        )


async def _queue_people_import(username: str, password: str, rows: int) -> int:
    """Through HTTP, as an API process with CDHT_IMPORT_WORKER=false: a unit, then a file big enough to
    be queued; the job's id."""
    app = create_app(get_settings())
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            token = await client.post(
                "/api/v1/auth/token",
                data={"grant_type": "password", "username": username, "password": password},
            )
            h = {"Authorization": f"Bearer {token.json()['access_token']}"}
            unit = await client.post(
                "/api/v1/org-units", json={"name": "Việt Nam", "kind": "nation", "code": "VN"}, headers=h
            )
            assert unit.status_code == 201, unit.text
            lines = ["full_name,unit_code,group"] + [f"Người {i},VN,resident" for i in range(rows)]
            r = await client.post(
                "/api/v1/imports/people",
                files={"file": ("people.csv", "\n".join(lines).encode(), "text/csv")},
                headers=h,
            )
            assert r.status_code == 202, r.text
            return int(r.json()["job_id"])
    finally:
        await app.state.engine.dispose()


def test_import_worker_runs_the_jobs_the_api_queued(
    cli_env: tuple[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, var = cli_env
    monkeypatch.setenv("CDHT_IMPORT_JOB_BYTES", "100")
    monkeypatch.setenv("CDHT_IMPORT_WORKER", "false")
    get_settings.cache_clear()
    assert create_admin(monkeypatch, "quan.tri", "admin-password-1") == 0
    job_id = asyncio.run(_queue_people_import("quan.tri", "admin-password-1", 20))
    assert _count(url, "people") == 0  # queued, not run: this API process has no runner
    capsys.readouterr()

    assert main(["import-worker", "--once"]) == 0
    assert "1 import job(s) run." in capsys.readouterr().out
    assert _count(url, "people") == 20
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT status FROM import_jobs WHERE id = ?", (job_id,)).fetchone() == ("done",)
    assert list((var / "import-jobs").iterdir()) == []  # the upload is gone
    assert main(["import-worker", "--once"]) == 0
    assert "0 import job(s) run." in capsys.readouterr().out


def test_production_refuses_a_missing_or_weak_secret_before_anything_runs(
    cli_env: tuple[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The production-secret check is a settings validator (issue #16): the command stops at once."""
    url, _ = cli_env
    monkeypatch.setenv("CDHT_ENV", "production")
    for key, says in ((None, "must be set"), ("changeme", "too weak"), ("x" * 20, "too weak")):
        if key is None:
            monkeypatch.delenv("CDHT_SECRET_KEY", raising=False)
        else:
            monkeypatch.setenv("CDHT_SECRET_KEY", key)
        get_settings.cache_clear()
        assert main(["migrate"]) == 2
        err = capsys.readouterr().err
        assert says in err and (key is None or key not in err)
    assert not Path(url.removeprefix("sqlite:///")).exists()  # nothing ran
    monkeypatch.setenv("CDHT_SECRET_KEY", "k" * 48)
    get_settings.cache_clear()
    assert main(["migrate"]) == 0
