"""Issue #13: clients generated from the live ``/openapi.json`` work against the real server.

Against a ``cdht serve`` subprocess (conftest.py), from the document it serves:

1. openapi-spec-validator finds it valid, and Spectral (``spectral:oas``, tests/clients/spectral.yaml)
   reports no error and no warning;
2. openapi-python-client generates a Python client (with tests/clients/openapi-python-client.yaml, the
   settings README "Generated clients" recommends) without a warning; it is installed into a temporary
   directory and python_client_tour.py drives the server with it: log in, create a unit and a person, an
   evaluation, upload evidence, self-assess, submit, read typed 409/404/422 bodies, import a CSV as a dry
   run and download the submitted report's XLSX;
3. openapi-typescript generates TypeScript types and ``tsc --strict`` type-checks usage.ts against them.

The npm tools are installed once under ``.cache/npm-tools``; without npm the npm steps skip (fail in CI).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from tests.clients.conftest import HERE, LiveServer, npm_bin, run


@pytest.fixture(scope="module")
def document(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    answer = httpx.get(f"{live_server.base_url}/openapi.json", timeout=30)
    assert answer.status_code == 200, answer.text
    path = tmp_path_factory.mktemp("document") / "openapi.json"
    path.write_text(answer.text, encoding="utf-8")
    return path


def test_the_document_is_valid_and_spectral_finds_nothing(document: Path, tmp_path: Path) -> None:
    validate(json.loads(document.read_text(encoding="utf-8")))
    report = tmp_path / "spectral.json"
    command = [str(npm_bin() / "spectral"), "lint", "--ruleset", str(HERE / "spectral.yaml")]
    command += ["--format", "json", "--output", str(report), "--fail-severity", "hint", str(document)]
    run(command, ok=(0, 1))  # 1: Spectral found something, which the report lists
    findings = json.loads(report.read_text(encoding="utf-8"))
    listed = [
        f"{f['severity']} {f['code']} {'.'.join(map(str, f['path']))}: {f['message']}" for f in findings
    ]
    assert not findings, f"Spectral found {len(findings)} problem(s):\n" + "\n".join(listed[:50])


def test_a_generated_python_client_drives_the_server(
    live_server: LiveServer, document: Path, tmp_path: Path
) -> None:
    bin_dir = Path(sys.executable).parent
    # The generator formats its output with ruff, which it looks up on PATH.
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    generated = run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--meta",
            "setup",
            "--output-path",
            str(tmp_path / "client"),
            "--config",
            str(HERE / "openapi-python-client.yaml"),
        ],
        env=env,
        cwd=tmp_path,
    )
    output = generated.stdout + generated.stderr
    assert "warning" not in output.lower() and "error" not in output.lower(), output
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    run([*pip, "--target", str(site), str(tmp_path / "client")], cwd=tmp_path)
    assert (site / "cdht_api_client" / "api" / "org_units" / "list_units.py").exists()

    # A fresh interpreter that sees the installed client but not the app (cwd is not the repository).
    tour_env = {**os.environ, "PYTHONPATH": str(site)}
    tour = [sys.executable, str(HERE / "python_client_tour.py")]
    done = run(
        [*tour, live_server.base_url, live_server.username, live_server.password], env=tour_env, cwd=tmp_path
    )
    assert "python client tour: ok" in done.stdout, done.stdout


def test_generated_typescript_types_type_check(document: Path, tmp_path: Path) -> None:
    tools = npm_bin()
    run([str(tools / "openapi-typescript"), str(document), "--output", str(tmp_path / "schema.d.ts")])
    shutil.copy(HERE / "usage.ts", tmp_path / "usage.ts")
    config = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "target": "ES2022",
            "module": "ES2022",
            "moduleResolution": "bundler",
            "lib": ["ES2022", "DOM"],
            "types": [],
        },
        "files": ["usage.ts"],
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(config), encoding="utf-8")
    run([str(tools / "tsc"), "--project", str(tmp_path / "tsconfig.json")], cwd=tmp_path)
