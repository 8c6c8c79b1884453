"""The dashboard in a real browser: Playwright for Python driving Debian's Chromium (never a downloaded
browser) against a real ``cdht serve`` with the demo loaded.

The server is started the way ``tests/clients`` starts its own (its helpers are reused): a subprocess on
a free port with its own SQLite file whatever ``CDHT_TEST_DATABASE_URL`` says, here filled by ``cdht
demo`` (about a minute) so the demo logins work. Chromium resolves no host but 127.0.0.1: a page that
needed a CDN would break. Without chromium or the playwright package the tests skip with a message —
except in CI (``CI`` set), where they fail. Screenshots go to ``.cache/dashboard-screenshots/``
(``CDHT_DASHBOARD_SCREENSHOTS`` moves them), with ``perf.json``: the figures for bench/RESULTS.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.conftest import (
    CDHT,
    CHROMIUM_ARGS,
    ROOT,
    LiveServer,
    require_tool,
    run,
    server_env,
    serving,
)

DEMO_PASSWORD = "demo-password"
SCREENSHOTS = Path(os.environ.get("CDHT_DASHBOARD_SCREENSHOTS", ROOT / ".cache" / "dashboard-screenshots"))


def require_playwright() -> Any:
    """``playwright.sync_api.sync_playwright``; else skip (fail in CI) with what to install."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        message = "the playwright package is not installed (`pip install -e '.[dev]'`)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run this test: {message}")
        pytest.skip(message)
    return sync_playwright


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``cdht demo`` then ``cdht serve`` on a fresh SQLite file; the admin is the demo's ``admin``."""
    # Session-scoped fixtures are set up before the package-scoped browser: without this, a machine with
    # no Chromium would load the demo (a minute or more) only to skip every test that needs it.
    require_tool("chromium", "chromium-browser", purpose="the dashboard tests drive Chromium")
    require_playwright()
    var = tmp_path_factory.mktemp("dashboard-server")
    env = server_env(var)
    run([*CDHT, "demo"], env=env, timeout=900)
    with serving(env, var, "admin", DEMO_PASSWORD) as server:
        yield server


# Package scope, not session: Playwright's sync API runs an event loop in this thread while it is
# started, and the worker's other tests (asyncio.run, pytest-asyncio) cannot run beside it. The tests
# here are one xdist group, run together; the loop is gone before the worker's next package.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    chromium = require_tool("chromium", "chromium-browser", purpose="the dashboard tests drive Chromium")
    sync_playwright = require_playwright()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watch:
    """What the page did that a user would not see: uncaught errors and requests to another host."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.errors: list[str] = []
        self.foreign: list[str] = []

    def request(self, url: str) -> None:
        if not url.startswith((self.base_url, "data:", "blob:")):
            self.foreign.append(url)


@pytest.fixture
def page(browser: Any, demo_server: LiveServer) -> Iterator[Any]:
    """A fresh browser profile (no session, no language chosen) on a 1280×900 screen."""
    context = browser.new_context(
        base_url=demo_server.base_url,
        viewport={"width": 1280, "height": 900},
        accept_downloads=True,
        locale="vi-VN",
    )
    page = context.new_page()
    watch = Watch(demo_server.base_url)
    page.on("pageerror", lambda error: watch.errors.append(str(error)))
    page.on("request", lambda request: watch.request(request.url))
    page.watch = watch
    yield page
    context.close()
    assert not watch.errors, f"uncaught errors in the page: {watch.errors}"
    assert not watch.foreign, f"the page asked another host: {watch.foreign}"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


class Api:
    """The public API as the tests' reference: the numbers the page must show."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._tokens: dict[str, str] = {}

    def token(self, username: str) -> str:
        if username not in self._tokens:
            form = {"grant_type": "password", "username": username, "password": DEMO_PASSWORD}
            r = httpx.post(f"{self.base_url}/api/v1/auth/token", data=form, timeout=30)
            assert r.status_code == 200, r.text
            self._tokens[username] = r.json()["access_token"]
        return self._tokens[username]

    def get(self, username: str, path: str, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token(username)}"}
        r = httpx.get(f"{self.base_url}/api/v1{path}", params=params, headers=headers, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="session")
def api(demo_server: LiveServer) -> Api:
    return Api(demo_server.base_url)
