"""``cdht serve`` settles the garbage collector of each worker once its app is built (``core/heap.py``); an
app built by ``create_app`` alone (the tests', the benchmarks' in process) leaves it as Python set it."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app import cli
from app.core import heap
from app.core.config import get_settings

PROBE = """
import gc, json
from app.main import create_app, serve_app
create_app()
built = (gc.get_freeze_count(), gc.get_threshold())
serve_app()
print(json.dumps({"built": built, "served": (gc.get_freeze_count(), gc.get_threshold())}))
"""


def test_serve_app_freezes_what_start_up_built(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "CDHT_DATABASE_URL": f"sqlite:///{tmp_path / 'cdht.db'}",
        "CDHT_VAR_DIR": str(tmp_path),
        "CDHT_SECRET_KEY": secrets.token_urlsafe(48),
    }
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found["built"][0] == 0  # create_app alone freezes nothing …
    assert found["built"][1][0] == 700  # … and leaves Python's default threshold
    frozen, threshold = found["served"]
    assert frozen > 50_000  # the modules, routes and schemas of a whole app
    assert threshold[0] == heap.GEN0_THRESHOLD
    assert threshold[1:] == found["built"][1][1:]


def test_cdht_serve_runs_serve_app(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    ran: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: ran.update(app=app, **options))
    cli.serve(get_settings(), host="127.0.0.1", port=8000, workers=1)
    assert ran["app"] == "app.main:serve_app"
    assert ran["factory"] is True
