"""``GET /metrics`` (issue #18): who may read it, and what an operator reads there — requests by route
template, statements per request, the queues, the pool, the replicas; and the workers' values summed in
multiprocess mode. The registry lives as long as the process, so the tests compare before and after."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import utcnow
from app.imports.models import ImportJob
from app.main import install_state
from app.webhooks.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from tests.builders import Tree
from tests.conftest import AppPerProcess, is_postgres

METRICS_TOKEN = "metrics-token-for-the-tests-0123456789"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(
    _app_per_process: AppPerProcess, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> FastAPI:
    app = _app_per_process.get()
    with_token = settings.model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)})
    install_state(app, with_token, app.state.engine, sessionmaker)
    return app


SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


async def scrape(client: httpx.AsyncClient) -> str:
    r = await client.get("/metrics", headers=SCRAPER)
    assert r.status_code == 200, r.text
    return r.text


def value(exposition: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when there is none)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def label_values(exposition: str, name: str, label: str) -> set[str]:
    return {
        sample.labels[label]
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name and label in sample.labels
    }


async def test_metrics_are_for_the_token_and_administrators(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit()
    anonymous = await client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    for wrong in ("Bearer not-the-token", f"Bearer {METRICS_TOKEN}x", f"Basic {METRICS_TOKEN}"):
        r = await client.get("/metrics", headers={"Authorization": wrong})
        assert r.status_code == 401, wrong
    org_admin = await tree.user(("org_admin", unit))
    refused = await client.get("/metrics", headers=tree.auth(org_admin))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"

    for headers in (SCRAPER, tree.auth(await tree.admin())):
        r = await client.get("/metrics", headers=headers)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        assert r.headers["cache-control"] == "no-store"
        assert "cdht_http_requests_total" in r.text
        assert METRICS_TOKEN not in r.text
    # The probes stay open, and /metrics is no part of the API's schema.
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


async def test_no_metrics_token_configured_means_administrators_only(
    client: httpx.AsyncClient,
    app: FastAPI,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    install_state(app, settings.model_copy(update={"metrics_token": None}), app.state.engine, sessionmaker)
    assert (await client.get("/metrics", headers={"Authorization": "Bearer "})).status_code == 401
    assert (await client.get("/metrics", headers=SCRAPER)).status_code == 401


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ValueError, match="CDHT_METRICS_TOKEN"):
        Settings(metrics_token="short")
    assert Settings(metrics_token="").metrics_token is None


async def test_requests_are_counted_by_route_template_not_by_path(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    unit = await tree.unit()
    admin = tree.auth(await tree.admin())
    route = "/api/v1/org-units/{unit_id}"
    before = await scrape(client)
    for _ in range(2):
        assert (await client.get(f"/api/v1/org-units/{unit.id}", headers=admin)).status_code == 200
    assert (await client.get("/api/v1/org-units/2000000000", headers=admin)).status_code == 404
    assert (await client.get(f"/api/v1/no-such-thing/{unit.id}")).status_code == 404
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("cdht_http_requests_total", method="GET", route=route, status="200") == 2
    assert delta("cdht_http_requests_total", method="GET", route=route, status="404") == 1
    assert delta("cdht_http_requests_total", route="unmatched", status="404") == 1
    assert delta("cdht_http_request_duration_seconds_count", method="GET", route=route) == 3
    assert delta("cdht_http_request_duration_seconds_sum", method="GET", route=route) > 0
    routes = label_values(after, "cdht_http_requests_total", "route")
    assert not [r for r in routes if re.search(r"/\d+(/|$)", r)], routes  # no id became a label


async def test_an_idempotent_replay_is_counted_as_one(client: httpx.AsyncClient, tree: Tree) -> None:
    """A retried POST answered from the idempotency store never reaches the router: it has a label of its
    own rather than ``unmatched``."""
    headers = {**tree.auth(await tree.admin()), "Idempotency-Key": "metrics-replay-1"}
    body = {"name": "Tỉnh Thử", "kind": "province"}
    before = await scrape(client)
    first = await client.post("/api/v1/org-units", json=body, headers=headers)
    again = await client.post("/api/v1/org-units", json=body, headers=headers)
    assert (first.status_code, again.status_code, again.headers["idempotent-replayed"]) == (201, 201, "true")
    after = await scrape(client)
    for route in ("/api/v1/org-units", "idempotent_replay"):
        counted = {"method": "POST", "route": route, "status": "201"}
        assert (
            value(after, "cdht_http_requests_total", **counted)
            - value(before, "cdht_http_requests_total", **counted)
            == 1
        ), route


async def test_statements_per_request_are_observed(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit()
    admin = tree.auth(await tree.admin())
    route = "/api/v1/org-units/{unit_id}"
    before = await scrape(client)
    assert (await client.get(f"/api/v1/org-units/{unit.id}", headers=admin)).status_code == 200
    after = await scrape(client)
    count = "cdht_db_statements_per_request_count"
    total = "cdht_db_statements_per_request_sum"
    get = {"method": "GET", "route": route}
    assert value(after, count, **get) - value(before, count, **get) == 1
    # The caller's identity and the unit at least; the statements of the builders above are no request's.
    ran = value(after, total, **get) - value(before, total, **get)
    assert 2 <= ran <= 20
    # A request that never touches the database runs none.
    health_before = value(after, total, route="/healthz")
    assert (await client.get("/healthz")).status_code == 200
    assert value(await scrape(client), total, route="/healthz") == health_before


async def test_queue_depth_and_age_show_a_waiting_import_job(
    client: httpx.AsyncClient, tree: Tree, session: AsyncSession
) -> None:
    before = await scrape(client)
    user = await tree.admin()
    session.add(
        ImportJob(
            kind="people",
            dry_run=False,
            actor_user_id=user.id,
            filename="people.csv",
            file_size=10,
            file_sha256="0" * 64,
            file_type="csv",
            stored_name="metrics-test-job",
            status="queued",
            submitted_at=utcnow() - timedelta(minutes=10),
        )
    )
    await session.commit()
    after = await scrape(client)
    depth = "cdht_queue_depth"
    assert value(after, depth, queue="import_jobs") == value(before, depth, queue="import_jobs") + 1
    assert value(after, "cdht_queue_oldest_age_seconds", queue="import_jobs") >= 600
    assert value(after, "cdht_database_up") == 1


async def test_queue_depth_and_age_show_due_webhook_deliveries(
    client: httpx.AsyncClient, tree: Tree, session: AsyncSession
) -> None:
    unit = await tree.unit()
    before = await scrape(client)
    subscription = WebhookSubscription(
        org_unit_id=unit.id, url="https://example.org/hook", events=["alert.raised"], secret="whsec_x"
    )
    event = WebhookEvent(message_id="msg_metrics_test", type="alert.raised", org_unit_id=unit.id, data={})
    session.add_all([subscription, event])
    await session.flush()
    now = utcnow()
    session.add_all(
        [
            WebhookDelivery(
                subscription_id=subscription.id, event_id=event.id, next_attempt_at=now - timedelta(minutes=5)
            ),
            # A retry scheduled for later is not due yet.
            WebhookDelivery(
                subscription_id=subscription.id, event_id=event.id, next_attempt_at=now + timedelta(hours=1)
            ),
        ]
    )
    await session.commit()
    after = await scrape(client)
    queue = {"queue": "webhook_deliveries"}
    assert value(after, "cdht_queue_depth", **queue) == value(before, "cdht_queue_depth", **queue) + 1
    assert value(after, "cdht_queue_oldest_age_seconds", **queue) >= 300


async def test_pool_and_replicas_are_reported(client: httpx.AsyncClient, database_url: str) -> None:
    exposition = await scrape(client)
    assert "primary" in label_values(exposition, "cdht_db_pool_connections_in_use", "database")
    if is_postgres(database_url):  # read on the primary; the test server has no standby
        assert "cdht_replicas_connected 0.0" in exposition
    else:  # SQLite has no replicas: nothing to report, rather than a misleading 0
        assert "cdht_replicas_connected" not in exposition


def test_multiprocess_mode_sums_the_workers(tmp_path: Path) -> None:
    """Two processes count requests and a third, scraping, reports both (``cdht serve --workers 2``); a
    worker's requests in progress leave the total when it stops, or when its replacement starts."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def python(code: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", "from app.observability import metrics\n" + code],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    count_one = "metrics.REQUESTS.labels('GET', '/api/v1/me', '200').inc()\nmetrics.IN_PROGRESS.inc()\n"
    python(count_one + "metrics.process_exiting()\n")  # a worker that stops cleanly
    python(count_one)  # one that is killed in the middle of a request
    scrape = "import sys\nsys.stdout.write(metrics.render().decode())\n"
    out = python(scrape)
    assert value(out, "cdht_http_requests_total", route="/api/v1/me", status="200") == 2
    assert value(out, "cdht_http_requests_in_progress") == 1
    out = python("metrics.forget_dead_processes()\n" + scrape)
    assert value(out, "cdht_http_requests_total", route="/api/v1/me", status="200") == 2  # counts stay
    assert value(out, "cdht_http_requests_in_progress") == 0


async def test_the_grafana_dashboard_reads_metrics_that_exist(client: httpx.AsyncClient, tree: Tree) -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "cdht-dashboard.json").read_text())
    queried = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(r"\bcdht_[a-z_]+", target["expr"])
    }
    exposition = await scrape(client)  # after a request, so the per-route histograms have a sample
    exposed = {family.name for family in text_string_to_metric_families(exposition)}
    exposed |= {"cdht_http_requests_total", "cdht_replicas_connected", "cdht_replica_lag_seconds"}
    assert queried and queried <= exposed, queried - exposed
