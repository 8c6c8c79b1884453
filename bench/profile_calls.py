"""Python calls and SQL statements per request, in process (issue #15): the figures the README and
``RESULTS.md`` quote as "calls per request in process".

    .venv/bin/python bench/profile_calls.py                                  # the December mix's requests
    .venv/bin/python bench/profile_calls.py --path '/api/v1/evaluations?org_unit_id=13' --sql
    .venv/bin/python bench/profile_calls.py --under solve_dependencies,get_covered,flush,to_read

Creates its own database (``--url``: a PostgreSQL server, default the local one; a database named
``cdht_profile_<random>``, dropped at the end) and runs ``cdht migrate``, ``cdht seed`` and ``cdht demo``
into it (~1 min), then builds the real app (``app.main.create_app``) and calls it as an ASGI app directly:
no network, no uvicorn, no HTTP client, so the count is the service's own. Each request is warmed up, then
run once with a ``before_cursor_execute`` listener (its statements) and ``--requests`` times under
``cProfile`` (every Python and C call, divided by the requests), with the caller and a criteria set's
terms kept for the whole run (``CDHT_CACHE_MAX_AGE_SECONDS=3600``), as they are between polls.
Deterministic, unlike time on this shared machine: a change that saves calls shows here whatever the
machine is doing; what it saves in time, ``bench/run_ab.py`` measures.

Requests: the reads given by ``--path`` (as ``--user``, default ``quangngai.admin``, who sees Quảng Ngãi,
unit 13), else ``/me``, ``/org-units``, ``/aggregates/progress`` and ``/evaluations``; then the December
steps on fresh evaluations of the demo's Tam Hưng A kindergarten: a self-assessment and an evidence
upload (as ``tamhunga.admin``) on one; on another, its ten scores and pieces of evidence in and
submitted, a review and the evaluation's read as ``tamhunga.assessor`` (``--no-steps`` skips them).

``--under A,B,…`` also splits each request's calls by the innermost listed function (a name, a qualified
name or part of a file path) whose frame is on the stack when the call is made, through SQLAlchemy's
greenlets too; ``(rest)`` is the framework around them. ``--sql`` prints the statements.

Note: in process the event loop is asyncio's own; ``cdht serve`` runs uvloop. Time measured here (not
printed) is therefore not the server's: asyncio's socket reads allocate a fresh 256 KiB buffer each.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import secrets
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import CodeType, FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import december_setup as dec
import greenlet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

API = "/api/v1"
DEMO_PASSWORD = "demo-password"
READS = [
    f"{API}/me",
    f"{API}/org-units",
    f"{API}/aggregates/progress?org_unit_id=13&year=2025",
    f"{API}/evaluations?org_unit_id=13",
]
SCHOOL_UNIT = 17  # the demo's Trường Mầm non Tam Hưng A (tamhunga.*)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
BOUNDARY = "cdhtprofile"

Response = tuple[int, bytes]


class App:
    """The app called as ASGI, one request at a time."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def call(
        self, method: str, path: str, token: str | None = None, body: bytes = b"", ctype: str | None = None
    ) -> Response:
        route, _, query = path.partition("?")
        headers = [(b"host", b"profile"), (b"content-length", str(len(body)).encode())]
        if token:
            headers.append((b"authorization", b"Bearer " + token.encode()))
        if ctype:
            headers.append((b"content-type", ctype.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": route,
            "raw_path": route.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:  # the body was read: nothing more comes (a disconnect would end the request)
                await asyncio.Event().wait()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        messages: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        await self.app(scope, receive, send)
        return messages[0]["status"], b"".join(m.get("body", b"") for m in messages[1:])

    async def token(self, user: str) -> str:
        body = f"grant_type=password&username={user}&password={DEMO_PASSWORD}".encode()
        status, data = await self.call(
            "POST", f"{API}/auth/token", body=body, ctype="application/x-www-form-urlencoded"
        )
        if status != 200:
            raise SystemExit(f"cannot log in as {user}: {status} {data[:200]!r}")
        token: str = json.loads(data)["access_token"]
        return token

    async def json(self, method: str, path: str, token: str, payload: Any = None) -> Any:
        body = b"" if payload is None else json.dumps(payload).encode()
        status, data = await self.call(method, path, token, body, "application/json" if body else None)
        if status >= 300:
            raise SystemExit(f"{method} {path}: {status} {data[:300]!r}")
        return json.loads(data)


@contextmanager
def calls_under(targets: list[str], requests: int) -> Iterator[None]:
    """Count every call made while it runs by the innermost frame among ``targets`` (module docstring)."""
    under: Counter[str] = Counter()
    cache: dict[CodeType, str] = {}

    def target_of(code: CodeType) -> str:
        found = cache.get(code)
        if found is None:
            found = next(
                (t for t in targets if t in (code.co_name, code.co_qualname) or t in code.co_filename), ""
            )
            cache[code] = found
        return found

    def tracer(frame: FrameType, event: str, _arg: Any) -> None:
        if event not in ("call", "c_call"):
            return
        f: FrameType | None = frame
        g: Any = greenlet.getcurrent()
        found = "(rest)"
        for _ in range(200):
            if f is None:  # the top of a greenlet: go on in the one that switched to it
                g = g.parent if g is not None else None
                if g is None or g.gr_frame is None:
                    break
                f = g.gr_frame
                continue
            name = target_of(f.f_code)
            if name:
                found = name
                break
            f = f.f_back
        under[found] += 1

    sys.setprofile(tracer)
    try:
        yield
    finally:
        sys.setprofile(None)
        for name, n in under.most_common():
            print(f"      under {name:<40} {n / requests:>8,.0f}")


async def measure(
    label: str,
    request: Callable[[], Awaitable[Response]],
    statements: list[str],
    args: argparse.Namespace,
) -> None:
    for _ in range(3):
        status, data = await request()
        if status >= 300:
            raise SystemExit(f"{label}: {status} {data[:300]!r}")
    statements.clear()
    await request()
    seen = list(statements)
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.requests):
        await request()
    profile.disable()
    calls = pstats.Stats(profile).total_calls / args.requests
    print(f"{label:<58} {calls:>8,.0f} calls  {len(seen):>2} statements")
    if args.sql:
        for statement in seen:
            print("      " + " ".join(statement.split())[:160])
    if args.under:
        with calls_under(args.under.split(","), args.requests):
            for _ in range(args.requests):
                await request()


def form(indicator_id: int) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="indicator_id"\r\n\r\n{indicator_id}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="minh-chung.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + PDF
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


class Scoring:
    """A versioned PUT of scores (self-assessment, review), sent again and again: each answer's version is
    the next request's."""

    def __init__(
        self, app: App, path: str, token: str, version: int, indicators: list[int], score: float
    ) -> None:
        self.app, self.path, self.token, self.version = app, path, token, version
        self.scores = [{"indicator_id": i, "score": score} for i in indicators]

    async def __call__(self) -> Response:
        body = json.dumps({"version": self.version, "scores": self.scores}).encode()
        status, data = await self.app.call("PUT", self.path, self.token, body, "application/json")
        if status == 200:
            self.version = json.loads(data)["version"]
        return status, data


async def fresh_evaluation(app: App, admin: str) -> dict[str, Any]:
    """A new evaluation of a person of the school: the first (person, year) of the demo's without one."""
    people = await app.json("GET", f"{API}/people?org_unit_id={SCHOOL_UNIT}&limit=200", admin)
    taken = await app.json("GET", f"{API}/evaluations?org_unit_id={SCHOOL_UNIT}&limit=200", admin)
    used = {(e["person_id"], e["year"]) for e in taken["items"]}
    for year in (2022, 2023, 2024, 2025):
        for person in people["items"]:
            if (person["id"], year) not in used:
                created: dict[str, Any] = await app.json(
                    "POST", f"{API}/evaluations", admin, {"person_id": person["id"], "year": year}
                )
                return created
    raise SystemExit("no person of the school without an evaluation left")


async def steps(app: App, statements: list[str], args: argparse.Namespace) -> None:
    """The member's steps on one fresh evaluation, the assessor's on another: the uploads measured add
    evidence, and the review and the read should see the ten pieces a finished evaluation has."""
    admin = await app.token("tamhunga.admin")
    ctype = f"multipart/form-data; boundary={BOUNDARY}"
    drafted = await fresh_evaluation(app, admin)
    path = f"{API}/evaluations/{drafted['id']}"
    indicators = [s["indicator_id"] for s in drafted["scores"]]
    self_assess = Scoring(app, f"{path}/self-assessment", admin, drafted["version"], indicators[:4], 9)
    await measure("PUT self-assessment (4 scores, unchanged after the first)", self_assess, statements, args)
    upload = lambda: app.call("POST", f"{path}/evidence", admin, form(indicators[0]), ctype)  # noqa: E731
    await measure("POST evidence (one PDF)", upload, statements, args)

    submitted = await fresh_evaluation(app, admin)
    path = f"{API}/evaluations/{submitted['id']}"
    for indicator in indicators:
        await app.call("POST", f"{path}/evidence", admin, form(indicator), ctype)
    current = await app.json("GET", path, admin)
    scores = [{"indicator_id": i, "score": 9} for i in indicators]
    done = await app.json(
        "PUT", f"{path}/self-assessment", admin, {"version": current["version"], "scores": scores}
    )
    version = (await app.json("POST", f"{path}/submit", admin, {"version": done["version"]}))["version"]
    assessor = await app.token("tamhunga.assessor")
    review = Scoring(app, f"{path}/review", assessor, version, indicators[:3], 8)
    await measure("PUT review (3 scores, as the school's assessor)", review, statements, args)
    read = lambda: app.call("GET", path, assessor)  # noqa: E731
    await measure("GET /evaluations/{id} (as the assessor, 10 pieces)", read, statements, args)


async def profile(args: argparse.Namespace) -> None:
    from sqlalchemy import event

    from app.main import create_app

    app = create_app()
    async with app.router.lifespan_context(app):
        statements: list[str] = []

        def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        event.listen(app.state.engine.sync_engine, "before_cursor_execute", before)
        asgi = App(app)
        token = await asgi.token(args.user)
        for path in args.path or READS:
            await measure(f"GET {path}", lambda p=path: asgi.call("GET", p, token), statements, args)
        if not args.no_steps:
            await steps(asgi, statements, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server (its database names where to create the profile's own)",
    )
    parser.add_argument("--path", action="append", help="a GET to measure (repeatable); default: the reads")
    parser.add_argument("--user", default="quangngai.admin", help="who sends the GETs")
    parser.add_argument("--requests", type=int, default=50, help="profiled requests each (50)")
    parser.add_argument("--no-steps", action="store_true", help="only the GETs")
    parser.add_argument("--sql", action="store_true", help="print each request's statements")
    parser.add_argument("--under", help="split the calls by these functions (module docstring)")
    args = parser.parse_args()

    server = urlsplit(args.url)
    name = f"cdht_profile_{secrets.token_hex(4)}"
    url = urlunsplit(server._replace(path=f"/{name}"))
    admin_url = urlunsplit(server._replace(path="/postgres"))
    var = tempfile.mkdtemp(prefix="cdht-profile-")
    env = {
        **os.environ,
        "CDHT_DATABASE_URL": url,
        "CDHT_ENV": "production",
        "CDHT_SECRET_KEY": secrets.token_urlsafe(48),
        "CDHT_VAR_DIR": var,
        # Kept copies (the caller, a criteria set's terms) serve 5 s by default: a profiled run is slower
        # than that, and a copy that expired mid-run would add its read to one request's count.
        "CDHT_CACHE_MAX_AGE_SECONDS": "3600",
    }
    dec.psql(admin_url, f'CREATE DATABASE "{name}"')
    try:
        print(f"database {name}: migrate, seed, demo …", flush=True)
        for command in ("migrate", "seed", "demo"):
            dec.run(command, env=env)
        os.environ.update(env)
        asyncio.run(profile(args))
    finally:
        dec.psql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
