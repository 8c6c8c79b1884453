"""Two assessors saving the same evaluation at once: exactly one wins (PostgreSQL only).

Real concurrency needs committed data and one connection per request, so this module cannot use the
rolled-back test transaction: it creates a throwaway database, migrates it, commits its data, serves an app
with its own connection pool, and drops the database at the end."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from alembic import command
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from app.cli import alembic_config
from app.core.audit import AuditEntry
from app.core.config import Settings
from app.core.db import make_engine
from app.criteria.loader import load_criteria
from app.evaluations.models import Evaluation
from app.main import create_app
from app.seeds import SEEDS_DIR
from tests.api.evaluation_flow import API, School, make_school, open_evaluation, self_assess
from tests.builders import Tree
from tests.conftest import is_postgres

SERVER_URL = os.environ.get("CDHT_TEST_DATABASE_URL", "")
PARALLEL = 20

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        not is_postgres(SERVER_URL),
        reason="needs PostgreSQL (CDHT_TEST_DATABASE_URL=postgresql://...): SQLite serialises every writer, "
        "so parallel requests cannot race there",
    ),
]


async def _admin(url: str, *statements: str) -> None:
    engine = make_engine(
        make_url(url).set(database="postgres").render_as_string(hide_password=False), pool=False
    )
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@dataclass
class Live:
    app: FastAPI
    client: httpx.AsyncClient
    tree: Tree
    school: School


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    name = f"cdht_conc_{uuid.uuid4().hex[:12]}"
    url = make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    await _admin(url, f'CREATE DATABASE "{name}"')
    try:
        await anyio.to_thread.run_sync(command.upgrade, alembic_config(url), "head")
        settings = Settings(
            env="test",
            var_dir=tmp_path,
            database_url=url,
            secret_key="concurrency-test-secret-key-0123456789abcdef",
            evidence_dir=tmp_path / "evidence",
        )
        app = create_app(settings)
        async with app.state.sessionmaker() as session:
            await load_criteria(session, SEEDS_DIR / "criteria")
            await session.commit()
            tree = Tree(session, app.state.auth.codec)  # its builders commit: the data is really there
            school = await make_school(tree)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield Live(app, client, tree, school)
        await app.state.engine.dispose()
    finally:
        await _admin(
            url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
            f'DROP DATABASE IF EXISTS "{name}"',
        )


async def _count(live: Live, *where: Any) -> int:
    async with live.app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).where(*where)) or 0)


async def test_parallel_reviews_of_one_evaluation_leave_exactly_one_winner(live: Live) -> None:
    client, school = live.client, live.school
    ev = await self_assess(client, school.admin, await open_evaluation(client, live.tree, school), [9] * 10)
    ev = (await client.post(f"{API}/evaluations/{ev['id']}/submit", headers=school.admin)).json()
    assert ev["status"] == "submitted"
    indicator = ev["scores"][0]["indicator_id"]

    async def review(score: float) -> httpx.Response:
        body = {"version": ev["version"], "scores": [{"indicator_id": indicator, "score": score}]}
        return await client.put(f"{API}/evaluations/{ev['id']}/review", json=body, headers=school.assessor)

    answers = await asyncio.gather(*(review(i / 2) for i in range(PARALLEL)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [409] * (PARALLEL - 1), statuses
    assert all(r.json()["error"]["code"] == "conflict" for r in answers if r.status_code == 409)
    winner = next(r.json() for r in answers if r.status_code == 200)
    stored = (await client.get(f"{API}/evaluations/{ev['id']}", headers=school.assessor)).json()
    assert stored["scores"][0]["review_score"] == winner["scores"][0]["review_score"]
    assert stored["version"] == ev["version"] + 1
    reviewed = (
        AuditEntry.entity_type == "evaluation",
        AuditEntry.entity_id == ev["id"],
        AuditEntry.action == "reviewed",
    )
    assert await _count(live, *reviewed) == 1


async def test_parallel_creates_for_one_person_and_year_leave_one_evaluation(live: Live) -> None:
    person = await live.tree.person(live.school.unit, "staff")

    async def create() -> httpx.Response:
        body = {"person_id": person.id, "year": 2025}
        return await live.client.post(f"{API}/evaluations", json=body, headers=live.school.admin)

    answers = await asyncio.gather(*(create() for _ in range(PARALLEL)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * (PARALLEL - 1), [
        r.text for r in answers if r.status_code not in (201, 409)
    ]
    assert await _count(live, Evaluation.person_id == person.id) == 1
    created = (AuditEntry.entity_type == "evaluation", AuditEntry.action == "created")
    assert await _count(live, *created) == 1
