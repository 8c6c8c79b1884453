"""A real ``cdht serve`` for the client and docs tests, and the tools they drive it with.

The server runs as a user would start it: a subprocess on a free port with its own SQLite file (whatever
``CDHT_TEST_DATABASE_URL`` says: these tests are about the HTTP contract, not the database), migrated and
seeded with the criteria by ``cdht migrate`` and ``cdht seed``, with an admin from ``cdht create-admin``.
The demo is not loaded (it takes minutes): the client tour creates what it needs through the API.

npm tools (Spectral, openapi-typescript, TypeScript) come from ``tests/clients/package.json`` and are
installed once under ``.cache/npm-tools`` (reinstalled when that file changes). A missing ``npm`` or
``chromium`` skips the tests that need it with a message — except in CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NPM_TOOLS = ROOT / ".cache" / "npm-tools"
ADMIN, ADMIN_PASSWORD = "client.admin", "client-admin-password-1"
CDHT = [sys.executable, "-m", "app.cli"]
# Chromium on a machine without a GPU or a network: no host resolves but 127.0.0.1 (a CDN would fail).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    username: str
    password: str
    pid: int = 0  # the `cdht serve` process (with --workers, uvicorn's supervisor)


def require_tool(*names: str, purpose: str) -> str:
    """The first of ``names`` on PATH; else skip (fail in CI) with what to install."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    message = f"{' or '.join(names)} is not installed: {purpose} (`apt-get install -y {names[0]}`)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test: {message}")
    pytest.skip(message)


def run(
    command: list[str],
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    ok: tuple[int, ...] = (0,),
) -> subprocess.CompletedProcess[str]:
    """Run a command; on an exit code not in ``ok``, fail the test with its output."""
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode not in ok:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def npm_bin() -> Path:
    """``node_modules/.bin`` of the pinned npm tools, installed on first use."""
    require_tool("npm", purpose="the TypeScript and Spectral checks need Node.js and npm")
    manifest = (HERE / "package.json").read_bytes()
    stamp = NPM_TOOLS / f".installed-{hashlib.sha256(manifest).hexdigest()[:16]}"
    if not stamp.exists():
        NPM_TOOLS.mkdir(parents=True, exist_ok=True)
        for old in NPM_TOOLS.glob(".installed-*"):
            old.unlink()
        (NPM_TOOLS / "package.json").write_bytes(manifest)
        run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NPM_TOOLS, timeout=600)
        stamp.touch()
    return NPM_TOOLS / "node_modules" / ".bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(var: Path) -> dict[str, str]:
    """The environment of a server of one's own: a SQLite file and files under ``var``."""
    return {
        **os.environ,
        "CDHT_ENV": "development",
        "CDHT_DATABASE_URL": f"sqlite:///{var / 'cdht.db'}",
        "CDHT_VAR_DIR": str(var),
        "CDHT_EVIDENCE_DIR": str(var / "evidence"),
        "CDHT_SECRET_KEY": secrets.token_urlsafe(48),
    }


@contextmanager
def serving(
    env: dict[str, str], var: Path, username: str, password: str, *options: str
) -> Iterator[LiveServer]:
    """``cdht serve`` on a free port with ``env`` (its database prepared) and ``options`` (``--workers
    2``), until the block ends."""
    port = _free_port()
    log = (var / "server.log").open("w")
    command = [*CDHT, "serve", "--host", "127.0.0.1", "--port", str(port), *options]
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"cdht serve exited {proc.returncode}:\n{(var / 'server.log').read_text()}")
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"cdht serve did not answer in 60 s:\n{(var / 'server.log').read_text()}")
            time.sleep(0.2)
        yield LiveServer(base_url, username, password, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    var = tmp_path_factory.mktemp("live-server")
    env = server_env(var)
    for args in (["migrate"], ["seed"], ["create-admin", "--username", ADMIN]):
        run([*CDHT, *args], env={**env, "CDHT_ADMIN_PASSWORD": ADMIN_PASSWORD})
    with serving(env, var, ADMIN, ADMIN_PASSWORD) as server:
        yield server
