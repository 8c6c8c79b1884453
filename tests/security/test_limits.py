"""Issue 6, group 7: resource limits (OWASP API4:2023) — body caps (declared and streamed), the evidence
upload cap, the page cap on every list route, the statement timeout on PostgreSQL, and login throttling
per username and per client address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import DbSession
from app.core.pagination import MAX_LIMIT
from app.evaluations.models import Evidence
from app.main import create_app
from tests.api.evaluation_flow import API, make_school, open_evaluation
from tests.builders import MINIMAL_PDF, PASSWORD, Tree
from tests.security.live import ON_POSTGRES

pytestmark = pytest.mark.anyio


def _app(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], **overrides: Any) -> FastAPI:
    # The test's rolled-back transaction.
    return create_app(settings.model_copy(update=overrides), sessionmaker=sessionmaker)


def _client(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_bodies_over_the_cap_are_413_declared_or_streamed(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], tree: Tree
) -> None:
    app = _app(settings, sessionmaker, max_request_bytes=4096)
    parent = await tree.unit()
    h = tree.auth(await tree.admin())
    body = b'{"name": "' + b"x" * 5000 + b'", "kind": "unit", "parent_id": %d}' % parent.id
    before = await tree.snapshot()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    async with _client(app) as client:
        declared = await client.post(
            f"{API}/org-units", content=body, headers={**h, "Content-Type": "application/json"}
        )
        streamed_request = client.build_request(
            "POST", f"{API}/org-units", content=chunks(), headers={**h, "Content-Type": "application/json"}
        )
        assert "content-length" not in streamed_request.headers, "the body must go chunked, undeclared"
        streamed = await client.send(streamed_request)
        for r in (declared, streamed):
            assert r.status_code == 413, r.text
            assert r.json()["error"]["code"] == "payload_too_large"
        assert await tree.snapshot() == before
        ok = await client.post(
            f"{API}/org-units", json={"name": "Vừa", "kind": "unit", "parent_id": parent.id}, headers=h
        )
        assert ok.status_code == 201, ok.text


async def test_an_upload_over_the_evidence_cap_is_413_and_leaves_nothing(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], tree: Tree, criteria: Any
) -> None:
    app = _app(settings, sessionmaker, max_evidence_bytes=2048, max_request_bytes=64 * 1024)
    school = await make_school(tree)
    evidence_dir = app.state.settings.effective_evidence_dir
    async with _client(app) as client:
        ev = await open_evaluation(client, tree, school)
        indicator = str(ev["scores"][0]["indicator_id"])
        files_before = _files(evidence_dir)
        for size, status in ((4096, 413), (128 * 1024, 413)):  # over the file cap; over the body cap
            pdf = MINIMAL_PDF + b"0" * size
            r = await client.post(
                f"{API}/evaluations/{ev['id']}/evidence",
                data={"indicator_id": indicator},
                files={"file": ("lon.pdf", pdf, "application/pdf")},
                headers=school.admin,
            )
            assert r.status_code == status, r.text
            assert r.json()["error"]["code"] == "payload_too_large"
        assert _files(evidence_dir) == files_before, "a refused upload left a file behind"
        assert await tree.session.scalar(select(func.count()).select_from(Evidence)) == 0
        r = await client.post(
            f"{API}/evaluations/{ev['id']}/evidence",
            data={"indicator_id": indicator},
            files={"file": ("vua.pdf", MINIMAL_PDF, "application/pdf")},
            headers=school.admin,
        )
        assert r.status_code == 201, r.text


def paginated_routes(app: FastAPI) -> list[str]:
    """Every GET route taking ``limit``, walked from ``app.routes`` (dependencies included)."""

    def query_names(dependant: Any) -> set[str]:
        names = {p.name for p in dependant.query_params}
        for sub in dependant.dependencies:
            names |= query_names(sub)
        return names

    found = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        for context in contexts() if contexts else [route]:
            dependant = getattr(context, "dependant", None)
            if dependant is not None and "GET" in context.methods and "limit" in query_names(dependant):
                found.append(context.path)
    return sorted(found)


async def test_a_page_over_the_cap_is_422_on_every_list_route(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI
) -> None:
    parent = await tree.unit()
    person = await tree.person(parent)
    h = tree.auth(await tree.admin())
    routes = paginated_routes(app)
    assert {f"{API}/org-units", f"{API}/people", f"{API}/evaluations", f"{API}/plans"} <= set(routes)
    hook = {"url": "http://127.0.0.1:9/hook", "events": ["report.submitted"], "org_unit_id": parent.id}
    webhook = (await client.post(f"{API}/webhooks", json=hook, headers=h)).json()["id"]
    # Lists that need more than a page to answer (their other required query parameters).
    required = {f"{API}/alerts": {"org_unit_id": parent.id, "year": 2025}}
    for path in routes:
        url = path.replace("{unit_id}", str(parent.id)).replace("{person_id}", str(person.id))
        url = url.replace("{webhook_id}", str(webhook))
        assert "{" not in url, f"{path}: give its path parameter an existing object here"
        extra = required.get(path, {})
        over = await client.get(url, params={"limit": MAX_LIMIT + 1, **extra}, headers=h)
        assert over.status_code == 422, (path, over.text)
        assert ["query", "limit"] in [d["loc"] for d in over.json()["error"]["details"]], path
        at_cap = await client.get(url, params={"limit": MAX_LIMIT, **extra}, headers=h)
        assert at_cap.status_code == 200, (path, at_cap.text)
        assert at_cap.json()["limit"] == MAX_LIMIT


@pytest.mark.postgres_only
@pytest.mark.skipif(
    not ON_POSTGRES,
    reason="statement_timeout is PostgreSQL's; SQLite has none (the embedded default serves one process)",
)
async def test_the_statement_timeout_stops_a_slow_query(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDHT_STATEMENT_TIMEOUT_MS", "200")  # the operator's knob
    configured = Settings(
        env="test",
        var_dir=settings.var_dir,
        database_url=settings.database_url,
        secret_key=settings.secret_key,
        evidence_dir=settings.evidence_dir,
    )
    assert configured.statement_timeout_ms == 200
    app = create_app(configured)

    @app.get("/slow")
    async def slow(session: DbSession) -> dict[str, str]:
        await session.execute(text("SELECT pg_sleep(2)"))
        return {"status": "finished"}

    try:
        async with app.state.engine.connect() as conn:
            assert await conn.scalar(text("SHOW statement_timeout")) == "200ms"
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(text("SELECT pg_sleep(2)"))
            assert getattr(caught.value.orig, "sqlstate", None) == "57014"  # query_canceled
        async with _client(app) as client:
            r = await client.get("/slow")
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "service_unavailable"
            assert (await client.get("/readyz")).status_code == 200  # the pool is still good
    finally:
        await app.state.engine.dispose()


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    data = {"grant_type": "password", "username": username, "password": password}
    return await client.post(f"{API}/auth/token", data=data)


async def test_logins_are_throttled_per_username_and_per_address(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], tree: Tree
) -> None:
    app = _app(settings, sessionmaker, login_max_failures=3, login_max_failures_per_address=6)
    unit = await tree.unit()
    victim = await tree.user(("member", unit))
    bystander = await tree.user(("member", unit))
    # Per username: failures from three different addresses lock the account, whatever the address,
    # and even the right password is refused while it is locked.
    for n in range(3):
        async with _client(app, f"10.0.0.{n + 1}") as c:
            assert (await _login(c, victim.username, "wrong-password")).status_code == 400
    async with _client(app, "10.0.0.9") as c:
        locked = await _login(c, victim.username, PASSWORD)
        assert locked.status_code == 429, locked.text
        assert locked.json()["error"]["code"] == "rate_limited"
        assert int(locked.headers["Retry-After"]) > 0
        assert (await _login(c, bystander.username, PASSWORD)).status_code == 200
    # Per address: one address spraying many usernames is stopped, for every username, while the same
    # users log in from elsewhere.
    async with _client(app, "1.2.3.4") as sprayer:
        for n in range(6):
            assert (await _login(sprayer, f"guess{n}", "wrong-password")).status_code == 400
        r = await _login(sprayer, bystander.username, PASSWORD)
        assert r.status_code == 429, r.text
    async with _client(app, "5.6.7.8") as elsewhere:
        assert (await _login(elsewhere, bystander.username, PASSWORD)).status_code == 200
