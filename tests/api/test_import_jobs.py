"""Story 1, "larger uploads run as a job with a status URL": an upload over ``CDHT_IMPORT_JOB_BYTES``
answers 202 with the job; ``GET /imports/jobs/{id}`` follows it to the summary the request would have
answered. The runner is driven with ``run_pending()`` (the background loop calls the same), and once end to
end through the app's lifespan against a database of its own."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.models import RoleAssignment, User
from app.core.audit import AuditEntry
from app.core.config import Settings
from app.core.db import utcnow
from app.imports import runner as runner_module
from app.imports.jobs import JobFiles
from app.imports.models import ImportJob, ImportRecord
from app.main import create_app
from app.people.models import Person
from tests.api.test_imports import csv_file, send
from tests.builders import Country, Tree, build_country

API = "/api/v1"
JOB_BYTES = 600
HEADER = ["full_name", "unit_code", "group", "citizen_id"]


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Path:
    return tmp_path / "import-jobs"


@pytest.fixture
def app(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], jobs_dir: Path) -> FastAPI:
    overrides = {"import_job_bytes": JOB_BYTES, "import_jobs_dir": jobs_dir, "import_job_timeout_seconds": 2}
    return create_app(settings.model_copy(update=overrides), sessionmaker=sessionmaker)


def people(n: int, unit_code: str = "BIG") -> list[list[str]]:
    return [HEADER] + [[f"Người thứ {i}", unit_code, "student", f"{200000000000 + i}"] for i in range(n)]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def count(session: AsyncSession, model: type) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def run_jobs(app: FastAPI) -> int:
    return int(await app.state.import_jobs.run_pending())


async def job_of(client: httpx.AsyncClient, h: dict[str, str], r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 202, r.text
    polled = await client.get(r.headers["Location"], headers=h)
    assert polled.status_code == 200, polled.text
    return dict(polled.json())


async def _school(tree: Tree) -> tuple[Country, dict[str, str], User]:
    c = await build_country(tree)
    await tree.unit("Trường lớn", "school", c.commune_a, code="BIG")
    sender = await tree.user(("integration", c.province_a))
    return c, tree.auth(sender), sender


async def test_a_large_file_is_queued_then_imported_by_the_runner(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI, jobs_dir: Path
) -> None:
    _, h, sender = await _school(tree)
    content = csv_file(people(40))
    assert len(content) > JOB_BYTES
    before = await count(tree.session, Person)

    r = await send(client, h, "people", content, dry_run=True)
    assert r.status_code == 202, r.text
    queued = r.json()
    assert r.headers["Location"] == queued["status_url"] == f"{API}/imports/jobs/{queued['job_id']}"
    assert (queued["status"], queued["dry_run"], queued["kind"]) == ("queued", True, "people")
    assert (queued["summary"], queued["error"], queued["size"]) == (None, None, len(content))
    assert files_in(jobs_dir) != []  # the upload waits on disk

    assert await run_jobs(app) == 1
    done = await job_of(client, h, r)
    assert (done["status"], done["attempts"], done["error"]) == ("done", 1, None)
    assert done["started_at"] is not None and done["finished_at"] is not None
    summary = done["summary"]
    assert (summary["dry_run"], summary["created"], summary["errors"]) == (True, 40, [])
    assert await count(tree.session, Person) == before  # a dry run writes nothing
    assert files_in(jobs_dir) == []  # the upload is gone once the job is finished

    real = await send(client, h, "people", content)
    assert await run_jobs(app) == 1
    done = await job_of(client, h, real)
    assert (done["status"], done["summary"]["created"]) == ("done", 40)
    assert await count(tree.session, Person) == before + 40
    record = await tree.session.get(ImportRecord, done["summary"]["import_id"])
    assert record is not None and (record.applied, record.actor_user_id, record.created) == (
        True,
        sender.id,
        40,
    )
    audit = await tree.session.scalar(
        select(AuditEntry).where(AuditEntry.entity_type == "import", AuditEntry.entity_id == record.id)
    )
    assert audit is not None and audit.actor_user_id == sender.id

    again = await send(client, h, "people", content)
    assert await run_jobs(app) == 1
    assert (await job_of(client, h, again))["summary"]["unchanged"] == 40
    assert await count(tree.session, Person) == before + 40
    assert await run_jobs(app) == 0  # nothing left


async def test_a_job_with_row_errors_writes_nothing_and_reports_the_rows(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI
) -> None:
    _, h, _ = await _school(tree)
    rows = people(30)
    rows[25][2] = "teacher"  # spreadsheet row 26: an unknown group
    before = await count(tree.session, Person)
    r = await send(client, h, "people", csv_file(rows))
    await run_jobs(app)
    done = await job_of(client, h, r)
    assert done["status"] == "done"
    assert [(e["row"], e["column"]) for e in done["summary"]["errors"]] == [(26, "group")]
    assert done["summary"]["error_count"] == 1
    assert await count(tree.session, Person) == before


async def test_a_job_writes_its_row_errors_in_the_language_it_was_sent_in(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI
) -> None:
    _, h, _ = await _school(tree)
    rows = people(30)
    rows[25][2] = "teacher"
    r = await send(client, {**h, "Accept-Language": "vi"}, "people", csv_file(rows))
    assert r.status_code == 202, r.text
    english = await send(client, h, "people", csv_file(rows), dry_run=True)
    await run_jobs(app)  # outside any request: each job in its own language
    vi, en = (
        (await job_of(client, h, r))["summary"]["errors"],
        (await job_of(client, h, english))["summary"]["errors"],
    )
    assert [(e["row"], e["column"]) for e in vi] == [(e["row"], e["column"]) for e in en] == [(26, "group")]
    assert vi[0]["message"] != en[0]["message"]
    assert set(vi[0]["message"]) & set("ăâđêôơưạảấầẩậắằẹẻếềểệịọỏốồổộớờởợụủứừửự"), vi[0]["message"]


async def test_small_files_still_answer_in_the_request(client: httpx.AsyncClient, tree: Tree) -> None:
    _, h, _ = await _school(tree)
    r = await send(client, h, "people", csv_file(people(2)))
    assert r.status_code == 200 and r.json()["created"] == 2


async def test_only_the_sender_sees_a_job(client: httpx.AsyncClient, tree: Tree, app: FastAPI) -> None:
    c, h, _ = await _school(tree)
    r = await send(client, h, "people", csv_file(people(30)))
    url = r.headers["Location"]
    not_found = (await client.get(f"{API}/imports/jobs/2000000000", headers=h)).json()

    # Another account that may import in the same province, and one of the other province: as missing.
    for other in (("integration", c.province_a), ("org_admin", c.district_a), ("org_admin", c.province_b)):
        answer = await client.get(url, headers=tree.auth(await tree.user(other)))
        assert answer.status_code == 404, (other, answer.text)
        assert answer.json()["error"]["code"] == not_found["error"]["code"] == "not_found"
        assert answer.json()["error"]["message"] == not_found["error"]["message"]
    # No right to import anywhere: 403, as for sending a file.
    viewer = await client.get(url, headers=tree.auth(await tree.user(("viewer", c.province_a))))
    assert viewer.status_code == 403
    assert (await client.get(url)).status_code == 401
    # A system administrator may look at any job.
    assert (await client.get(url, headers=tree.auth(await tree.admin()))).status_code == 200


async def test_a_retried_upload_with_the_same_key_queues_one_job(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI
) -> None:
    _, h, _ = await _school(tree)
    content = csv_file(people(30))
    keyed = {**h, "Idempotency-Key": "upload-2025-11-21-01"}
    first = await client.post(
        f"{API}/imports/people", files={"file": ("staff.csv", content, "text/csv")}, headers=keyed
    )
    retry = await client.post(
        f"{API}/imports/people", files={"file": ("staff.csv", content, "text/csv")}, headers=keyed
    )
    assert first.status_code == retry.status_code == 202
    assert retry.json()["job_id"] == first.json()["job_id"]
    assert retry.headers["Location"] == first.headers["Location"]
    assert await count(tree.session, ImportJob) == 1


async def test_a_sender_who_lost_the_role_gets_a_failed_job(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI, jobs_dir: Path
) -> None:
    _, h, sender = await _school(tree)
    before = await count(tree.session, Person)
    r = await send(client, h, "people", csv_file(people(30)))
    job_id = r.json()["job_id"]
    # The role is taken away before the runner gets to the file.
    await tree.session.execute(RoleAssignment.__table__.delete().where(RoleAssignment.user_id == sender.id))
    await tree.session.commit()
    await run_jobs(app)
    job = await tree.session.get(ImportJob, job_id, populate_existing=True)
    assert job is not None and (job.status, job.error) == (
        "failed",
        {"code": "forbidden", "message": "Your roles do not allow import:write."},
    )
    assert job.summary is None and await count(tree.session, Person) == before
    assert files_in(jobs_dir) == []


async def test_a_job_whose_upload_is_gone_fails_with_a_clear_error(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI, jobs_dir: Path
) -> None:
    _, h, _ = await _school(tree)
    r = await send(client, h, "people", csv_file(people(30)))
    for name in files_in(jobs_dir):  # e.g. a new server without the old one's folder
        (jobs_dir / name).unlink()
    await run_jobs(app)
    failed = await job_of(client, h, r)
    assert (failed["status"], failed["error"]["code"]) == ("failed", "not_found")
    assert "send it again" in failed["error"]["message"]


async def test_a_job_lost_with_its_process_is_taken_again(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI
) -> None:
    _, h, _ = await _school(tree)
    r = await send(client, h, "people", csv_file(people(30)))
    job_id = r.json()["job_id"]
    # A process claimed it and died: the row says running, its lease is still valid, then expired.
    still_leased = {"status": "running", "attempts": 1, "lease_expires_at": utcnow() + timedelta(minutes=5)}
    await tree.session.execute(update(ImportJob).where(ImportJob.id == job_id).values(**still_leased))
    await tree.session.commit()
    assert await run_jobs(app) == 0  # another process may still be at it
    await tree.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id)
        .values(lease_expires_at=utcnow() - timedelta(seconds=1))
    )
    await tree.session.commit()
    assert await run_jobs(app) == 1
    done = await job_of(client, h, r)
    assert (done["status"], done["attempts"], done["summary"]["created"]) == ("done", 2, 30)

    # One that keeps dying is given up after three attempts, with nothing written.
    r = await send(client, h, "people", csv_file(people(31)))
    lost = {"status": "running", "attempts": 3, "lease_expires_at": utcnow() - timedelta(seconds=1)}
    await tree.session.execute(update(ImportJob).where(ImportJob.id == r.json()["job_id"]).values(**lost))
    await tree.session.commit()
    before = await count(tree.session, Person)
    assert await run_jobs(app) == 1
    failed = await job_of(client, h, r)
    assert (failed["status"], failed["attempts"], failed["error"]["code"]) == ("failed", 4, "internal_error")
    assert "3 times" in failed["error"]["message"]
    assert await count(tree.session, Person) == before


async def test_a_run_that_overruns_or_breaks_fails_cleanly(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, h, _ = await _school(tree)
    before = await count(tree.session, Person)
    real_run = runner_module.service.run

    async def slow(*args: Any, **kwargs: Any) -> Any:
        summary = await real_run(*args, **kwargs)  # the rows are written inside the transaction…
        await asyncio.sleep(10)  # …which then outlives CDHT_IMPORT_JOB_TIMEOUT_SECONDS (2 s here)
        return summary

    monkeypatch.setattr(runner_module.service, "run", slow)
    r = await send(client, h, "people", csv_file(people(30)))
    await run_jobs(app)
    failed = await job_of(client, h, r)
    assert (failed["status"], failed["error"]["code"]) == ("failed", "timeout")
    assert await count(tree.session, Person) == before

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runner_module.service, "run", broken)
    r = await send(client, h, "people", csv_file(people(30)))
    await run_jobs(app)
    failed = await job_of(client, h, r)
    assert failed["error"] == {
        "code": "internal_error",
        "message": "The import failed; nothing was written.",
        "details": None,
    }
    assert "disk on fire" not in str(failed)


async def test_a_run_stopped_by_shutdown_goes_back_to_the_queue(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, h, _ = await _school(tree)
    before = await count(tree.session, Person)
    real_run = runner_module.service.run
    started = asyncio.Event()

    async def stopped_midway(*args: Any, **kwargs: Any) -> Any:
        await real_run(*args, **kwargs)
        started.set()
        await asyncio.sleep(60)

    monkeypatch.setattr(runner_module.service, "run", stopped_midway)
    r = await send(client, h, "people", csv_file(people(30)))
    task = asyncio.create_task(run_jobs(app))
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()  # what the lifespan does when the server stops
    with pytest.raises(asyncio.CancelledError):
        await task
    queued = await job_of(client, h, r)
    assert (queued["status"], queued["attempts"], queued["summary"]) == ("queued", 0, None)
    assert await count(tree.session, Person) == before

    monkeypatch.setattr(runner_module.service, "run", real_run)
    assert await run_jobs(app) == 1  # the next start takes it from the beginning
    done = await job_of(client, h, r)
    assert (done["status"], done["attempts"], done["summary"]["created"]) == ("done", 1, 30)


def test_the_runner_sweeps_uploads_no_job_waits_for(jobs_dir: Path) -> None:
    jobs_dir.mkdir(parents=True)
    old, fresh, other = jobs_dir / "a.upload", jobs_dir / "b.upload", jobs_dir / "notes.txt"
    for path in (old, fresh, other):
        path.write_bytes(b"x")
    hour_ago = utcnow().timestamp() - 7200
    os.utime(old, (hour_ago, hour_ago))
    os.utime(other, (hour_ago, hour_ago))
    waiting = jobs_dir / "c.upload"
    waiting.write_bytes(b"x")
    os.utime(waiting, (hour_ago, hour_ago))
    assert JobFiles(jobs_dir).sweep(waiting={"c.upload"}, older_than_seconds=3600) == [old]
    assert files_in(jobs_dir) == ["b.upload", "c.upload", "notes.txt"]


# End to end: the app's own lifespan starts the runner, which is woken by the commit.


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    from alembic import command

    from app.cli import alembic_config
    from app.commands import create_admin

    url = f"sqlite:///{tmp_path / 'cdht.db'}"
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")  # Alembic runs its own loop
    settings = Settings(
        database_url=url, var_dir=tmp_path / "var", import_job_bytes=JOB_BYTES, import_worker_poll_seconds=30
    )
    await create_admin(settings, "admin", "a-long-password", "Quản trị")
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield application, client


async def test_the_served_app_runs_queued_jobs_on_its_own(served: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = served
    token = await client.post(
        f"{API}/auth/token",
        data={"grant_type": "password", "username": "admin", "password": "a-long-password"},
    )
    h = {"Authorization": f"Bearer {token.json()['access_token']}"}
    unit = await client.post(
        f"{API}/org-units", json={"name": "Việt Nam", "kind": "nation", "code": "BIG"}, headers=h
    )
    assert unit.status_code == 201, unit.text
    r = await send(client, h, "people", csv_file(people(30)))
    assert r.status_code == 202, r.text
    for _ in range(200):  # woken by the commit, not by the 30-second poll
        job = (await client.get(r.headers["Location"], headers=h)).json()
        if job["status"] in ("done", "failed"):
            break
        await asyncio.sleep(0.05)
    assert (job["status"], job["summary"]["created"]) == ("done", 30), job
    listed = await client.get(f"{API}/people", params={"org_unit_id": unit.json()["id"]}, headers=h)
    assert listed.json()["total"] == 30
