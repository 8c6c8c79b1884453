"""Issue 14, item 3: the login lockout holds under parallel guesses and across processes.

Each attempt is counted in the database before the password is verified (app/auth/throttle.py), so of a
burst of parallel guesses only the first ``login_max_failures`` reach the hash, and two app instances
(two worker processes: their own engines and throttle objects) count against one limit. The burst tests
run on a database of their own with committed data (tests/security/live.py); the others in the usual
rolled-back transaction, where the count must survive the failed request's rollback.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import app.auth.login
from app.auth.models import LoginAttempt
from app.core.config import Settings
from app.core.security import verify_and_update
from app.main import create_app
from tests.api.evaluation_flow import API
from tests.builders import PASSWORD, Tree
from tests.security.live import live_settings, throwaway_database

pytestmark = pytest.mark.anyio

TOKEN = f"{API}/auth/token"
LIMIT = 5  # the default login_max_failures


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _client(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://lockout")


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        TOKEN, data={"grant_type": "password", "username": username, "password": password}
    )


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password the token endpoint verified against a hash, in order."""
    seen: list[str] = []

    async def counting(password: str, password_hash: str | None) -> tuple[bool, str | None]:
        seen.append(password)
        return await verify_and_update(password, password_hash)

    monkeypatch.setattr(app.auth.login, "verify_and_update", counting)
    return seen


@dataclass
class TwoProcesses:
    """Two app instances on one committed database, as two worker processes would be."""

    first: FastAPI
    second: FastAPI
    tree: Tree


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[TwoProcesses]:
    async with throwaway_database(tmp_path, "cdht_lockout") as url:
        settings = live_settings(url, tmp_path)
        first, second = create_app(settings), create_app(settings)
        async with first.state.sessionmaker() as session:
            yield TwoProcesses(first, second, Tree(session, first.state.auth.codec))
        for instance in (first, second):
            await instance.state.engine.dispose()


# --- parallel guesses and several processes (a database of their own) ----------------------------------


async def test_thirty_parallel_wrong_guesses_reach_the_hash_five_times(
    two: TwoProcesses, verified: list[str]
) -> None:
    await two.tree.user(("member", await two.tree.unit()), username="nan.nhan")
    async with _client(two.first) as a, _client(two.second) as b:
        guesses = [_login(a if n % 2 else b, "nan.nhan", f"wrong-guess-{n:02d}") for n in range(30)]
        answers = Counter(r.status_code for r in await asyncio.gather(*guesses))
        assert answers == {400: LIMIT, 429: 30 - LIMIT}
        assert len(verified) == LIMIT
        # Locked now, for both processes, even with the right password, which is not even checked.
        for client in (a, b):
            locked = await _login(client, "nan.nhan", PASSWORD)
            assert locked.status_code == 429, locked.text
            assert locked.json()["error"]["code"] == "rate_limited"
            assert 0 < int(locked.headers["Retry-After"]) <= 300
        assert len(verified) == LIMIT


async def test_the_right_password_among_parallel_guesses_is_no_shortcut(
    two: TwoProcesses, verified: list[str]
) -> None:
    await two.tree.user(("member", await two.tree.unit()), username="doan.mo")
    passwords = [f"wrong-guess-{n:02d}" for n in range(29)] + [PASSWORD]
    random.Random(14).shuffle(passwords)
    async with _client(two.first) as a, _client(two.second) as b:
        guesses = [_login(a if n % 2 else b, "doan.mo", p) for n, p in enumerate(passwords)]
        answers = Counter(r.status_code for r in await asyncio.gather(*guesses))
    assert set(answers) <= {200, 400, 429}
    assert answers[200] + answers[400] == len(verified)
    assert answers[200] == (PASSWORD in verified)
    if PASSWORD in verified:
        # The right password was among the first five counted, and its success started the count again
        # (guesses counted after it, on a loaded machine, get five more): never thirty.
        assert len(verified) <= 2 * LIMIT
    else:
        assert len(verified) == LIMIT
        assert answers[429] == 30 - LIMIT


async def test_two_processes_count_against_one_limit(two: TwoProcesses) -> None:
    await two.tree.user(("member", await two.tree.unit()), username="hai.noi")
    async with _client(two.first, "10.1.0.1") as a, _client(two.second, "10.2.0.2") as b:
        for n in range(LIMIT):
            assert (await _login(a if n < 3 else b, "hai.noi", "wrong-guess")).status_code == 400
        assert (await _login(a, "hai.noi", PASSWORD)).status_code == 429
        assert (await _login(b, "hai.noi", PASSWORD)).status_code == 429


# --- the rules, in the rolled-back test transaction -----------------------------------------------------


async def _counters(session: AsyncSession) -> dict[tuple[str, str], int]:
    rows = (await session.execute(select(LoginAttempt.kind, LoginAttempt.key, LoginAttempt.failures))).all()
    return {(kind, key): failures for kind, key, failures in rows}


async def test_a_failed_attempt_is_kept_although_its_request_rolls_back(
    app: FastAPI, tree: Tree, session: AsyncSession
) -> None:
    await tree.user(("member", await tree.unit()), username="giu.lai")
    async with _client(app, "10.9.9.9") as client:
        for _ in range(2):
            assert (await _login(client, "giu.lai", "wrong-guess")).status_code == 400
        assert await _counters(session) == {("user", "giu.lai"): 2, ("address", "10.9.9.9"): 2}
        # A success starts the username again and gives the address its attempt back.
        assert (await _login(client, "giu.lai", PASSWORD)).status_code == 200
    assert await _counters(session) == {("address", "10.9.9.9"): 2}


async def test_case_and_spaces_do_not_make_new_counters(app: FastAPI, tree: Tree) -> None:
    await tree.user(("member", await tree.unit()), username="hoa.thuong")
    async with _client(app) as client:
        for spelling in ("hoa.thuong", "HOA.THUONG", " Hoa.Thuong ", "hoa.THUONG", "Hoa.thuong"):
            assert (await _login(client, spelling, "wrong-guess")).status_code == 400, spelling
        assert (await _login(client, "hoa.thuong", PASSWORD)).status_code == 429
        assert (await _login(client, "HOA.thuong", PASSWORD)).status_code == 429


async def test_the_login_is_case_insensitive(app: FastAPI, tree: Tree) -> None:
    await tree.user(("member", await tree.unit()), username="Minh.Anh")
    async with _client(app) as client:
        for spelling in ("Minh.Anh", "minh.anh", "MINH.ANH"):
            assert (await _login(client, spelling, PASSWORD)).status_code == 200, spelling


async def test_client_credentials_share_the_throttle(app: FastAPI, tree: Tree) -> None:
    unit = await tree.unit()
    admin = tree.auth(await tree.user(("org_admin", unit)))
    async with _client(app) as client:
        created = await client.post(
            f"{API}/service-accounts",
            json={"name": "Script", "org_unit_id": unit.id, "roles": ["integration"]},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        sa = created.json()
        for n in range(LIMIT):
            data = {
                "grant_type": "client_credentials",
                "client_id": sa["client_id"],
                "client_secret": f"x{n}",
            }
            assert (await client.post(TOKEN, data=data)).status_code == 400
        right = {
            "grant_type": "client_credentials",
            "client_id": sa["client_id"],
            "client_secret": sa["client_secret"],
        }
        locked = await client.post(TOKEN, data=right)
        assert locked.status_code == 429, locked.text
        assert "access_token" not in locked.text


async def test_guessing_the_current_password_counts_toward_the_lock(app: FastAPI, tree: Tree) -> None:
    me = await tree.user(("member", await tree.unit()), username="doi.mat.khau")
    h = tree.auth(me)
    path = f"{API}/users/{me.id}"
    async with _client(app) as client:
        for n in range(LIMIT):
            body = {"password": "brand-new-passphrase", "current_password": f"guess-{n}"}
            r = await client.patch(path, json=body, headers=h)
            assert r.status_code == 403, r.text
        body = {"password": "brand-new-passphrase", "current_password": PASSWORD}
        assert (await client.patch(path, json=body, headers=h)).status_code == 429
        assert (await _login(client, "doi.mat.khau", PASSWORD)).status_code == 429


async def test_a_counter_left_alone_for_a_lockout_period_starts_again(app: FastAPI, tree: Tree) -> None:
    clock = FakeClock()
    app.state.auth.throttle.clock = clock
    await tree.user(("member", await tree.unit()), username="hay.quen")
    async with _client(app) as client:
        for _ in range(LIMIT - 1):
            assert (await _login(client, "hay.quen", "wrong-guess")).status_code == 400
        clock.now += app.state.settings.login_lockout_seconds + 1
        for _ in range(LIMIT - 1):
            assert (await _login(client, "hay.quen", "wrong-guess")).status_code == 400
        assert (await _login(client, "hay.quen", PASSWORD)).status_code == 200


async def test_an_address_lock_says_when_to_come_back(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], tree: Tree
) -> None:
    app = create_app(
        settings.model_copy(update={"login_max_failures_per_address": 4}), sessionmaker=sessionmaker
    )
    clock = FakeClock()
    app.state.auth.throttle.clock = clock
    await tree.user(("member", await tree.unit()), username="o.xa")
    async with _client(app, "203.0.113.7") as sprayer:
        for n in range(4):
            assert (await _login(sprayer, f"guess.{n}", "wrong-guess")).status_code == 400
        clock.now += 100
        locked = await _login(sprayer, "o.xa", PASSWORD)
        assert locked.status_code == 429
        lockout = settings.login_lockout_seconds
        assert int(locked.headers["Retry-After"]) == lockout - 100
        async with _client(app, "198.51.100.1") as elsewhere:
            assert (await _login(elsewhere, "o.xa", PASSWORD)).status_code == 200
        clock.now += lockout
        assert (await _login(sprayer, "o.xa", PASSWORD)).status_code == 200


async def test_counters_that_ran_out_are_forgotten(app: FastAPI, tree: Tree, session: AsyncSession) -> None:
    clock = FakeClock()
    throttle = app.state.auth.throttle
    throttle.clock, throttle.prune_every = clock, 1
    lockout = app.state.settings.login_lockout_seconds
    async with _client(app, "192.0.2.1") as client:
        for _ in range(LIMIT):
            assert (await _login(client, "da.khoa", "wrong-guess")).status_code == 400
        await _login(client, "chua.het", "wrong-guess")
        clock.now += lockout - 1
        await _login(client, "lan.sau", "wrong-guess")
        # Neither the lock nor the idle counter has run out yet: both are kept.
        assert {("user", "da.khoa"), ("user", "chua.het")} <= set(await _counters(session))
        clock.now += 2
        await _login(client, "lan.cuoi", "wrong-guess")
    assert set(await _counters(session)) == {
        ("user", "lan.sau"),
        ("user", "lan.cuoi"),
        ("address", "192.0.2.1"),
    }
