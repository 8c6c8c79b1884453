"""``cdht serve --workers 2`` as an operator starts it (issue #15 items 3 and 4): two processes answer on
one port, and a change to who may do what, or to what a dashboard counts, holds on the very next request
whichever process answers — though each process keeps its callers and its dashboards' tags between
requests (``app/core/generations.py``: a commit in one process drops the copies of every process before
its response is sent) — and the login throttle lives in the database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import ADMIN, ADMIN_PASSWORD, CDHT, LiveServer, run, server_env, serving

WORKER = "multiprocessing.spawn import spawn_main"
REQUESTS = 40  # concurrent: with two processes accepting on one socket, both answer some
METRICS_TOKEN = "metrics-token-for-the-two-worker-test"


def _workers(supervisor: int) -> list[int]:
    """The worker processes uvicorn's supervisor spawned (not its resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if parent == supervisor and WORKER in command:
            found.append(int(stat.parent.name))
    return found


async def _statuses(server: LiveServer, path: str, token: str, tag: str = "") -> set[int]:
    headers = {"Authorization": f"Bearer {token}", **({"If-None-Match": tag} if tag else {})}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        answers = await asyncio.gather(*(client.get(path, headers=headers) for _ in range(REQUESTS)))
    return {r.status_code for r in answers}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    var = tmp_path_factory.mktemp("two-workers")
    env = {**server_env(var), "CDHT_METRICS_TOKEN": METRICS_TOKEN}
    for args in (["migrate"], ["seed"], ["create-admin", "--username", ADMIN]):
        run([*CDHT, *args], env={**env, "CDHT_ADMIN_PASSWORD": ADMIN_PASSWORD})
    with serving(env, var, ADMIN, ADMIN_PASSWORD, "--workers", "2") as server:
        yield server  # type: ignore[misc]


async def test_a_removed_role_and_a_deactivated_user_stop_at_once_in_every_worker(
    two_workers: LiveServer,
) -> None:
    server = two_workers
    assert len(_workers(server.pid)) == 2
    async with httpx.AsyncClient(base_url=server.base_url + "/api/v1", timeout=30) as client:

        async def token(username: str, password: str) -> str:
            r = await client.post(
                "/auth/token", data={"grant_type": "password", "username": username, "password": password}
            )
            assert r.status_code == 200, r.text
            return str(r.json()["access_token"])

        admin = {"Authorization": f"Bearer {await token(ADMIN, ADMIN_PASSWORD)}"}
        unit = await client.post("/org-units", json={"name": "Tỉnh Thử", "kind": "province"}, headers=admin)
        assert unit.status_code == 201, unit.text
        unit_id = unit.json()["id"]
        user = await client.post(
            "/users",
            json={
                "username": "can.bo",
                "password": "a-long-passphrase",
                "full_name": "Cán bộ",
                "org_unit_id": unit_id,
            },
            headers=admin,
        )
        assert user.status_code == 201, user.text
        user_id = user.json()["id"]
        grant = await client.post(
            f"/users/{user_id}/roles", json={"role": "viewer", "org_unit_id": unit_id}, headers=admin
        )
        assert grant.status_code == 201, grant.text
        bearer = await token("can.bo", "a-long-passphrase")

        unit_path = f"/api/v1/org-units/{unit_id}"
        assert await _statuses(server, unit_path, bearer) == {200}
        # A scrape of whichever worker answers counts the requests of both (multiprocess metrics).
        scrape = await client.get(
            server.base_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert scrape.status_code == 200, scrape.text
        served = [
            float(line.rsplit(" ", 1)[1])
            for line in scrape.text.splitlines()
            if line.startswith("cdht_http_requests_total{")
            and 'route="/api/v1/org-units/{unit_id}"' in line
            and 'status="200"' in line
        ]
        assert sum(served) == REQUESTS, served

        # A dashboard that polls: each worker keeps the tag it computed; a unit added under the province
        # in one process (the tree: the dashboards' reference epoch) ends the 304s of both at once.
        progress = f"/api/v1/aggregates/progress?org_unit_id={unit_id}&year=2026"
        first = await client.get(server.base_url + progress, headers={"Authorization": f"Bearer {bearer}"})
        assert first.status_code == 200, first.text
        tag = first.headers["etag"]
        assert await _statuses(server, progress, bearer, tag) == {304}
        commune = {"name": "Xã Thử", "kind": "commune", "parent_id": unit_id}
        assert (await client.post("/org-units", json=commune, headers=admin)).status_code == 201
        assert await _statuses(server, progress, bearer, tag) == {200}

        removed = await client.delete(f"/users/{user_id}/roles/{grant.json()['id']}", headers=admin)
        assert removed.status_code == 204
        assert await _statuses(server, unit_path, bearer) == {404}  # outside every subtree they hold

        me = await client.get(f"/users/{user_id}", headers=admin)
        off = await client.patch(
            f"/users/{user_id}", json={"is_active": False, "version": me.json()["version"]}, headers=admin
        )
        assert off.status_code == 200, off.text
        assert await _statuses(server, "/api/v1/me", bearer) == {401}
