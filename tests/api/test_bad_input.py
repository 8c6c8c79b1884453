"""The foundation issue's "Bad input": malformed bodies, query strings, ids and headers are each a clear
422 ``validation_error`` in the one error body, write nothing, and are never a 500."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from app.main import create_app
from tests.builders import Country, Tree, build_country

TEN_MB = 10 * 1024 * 1024
SECRET = "Sup3r-secret-passphrase-never-echoed"


# What each kind of field gets instead of a valid value.
WRONG: dict[str, list[Any]] = {
    "text": [123, ["x"], {"a": 1}, True, "", "   ", "A\x00B", "A\x07B"],
    "id": ["abc", 1.5, 0, -1, 2**63, [1], {"id": 1}, True],
    "enum": ["nope", 5, "", ["staff"]],
    "int": ["abc", 1.5, 2**63, -(2**63), [1]],
    "bool": ["maybe", 2, [True], {"x": 1}],
    "date": ["2025-13-01", "yesterday", "01/07/2025", [2025], True],
    "username": ["", "ab", "has space", "a\x00b", "x" * 65, 42],
    "password": ["short", "x" * 129, 12345678, ["a-long-password"]],
    "email": ["not-an-email", "a\x00b@example.com", 5],
    "citizen_id": ["12345", "abcdefghijkl", "1234567890123", 123456789012, "1234\x0056789"],
    "roles": ["integration", [], ["nope"], [1], {"role": "viewer"}],
}


@dataclass
class Endpoint:
    method: str
    path: str
    body: dict[str, Any]  # a valid body
    fields: dict[str, str]  # field -> kind in WRONG
    required: tuple[str, ...] = ()
    not_null: tuple[str, ...] = ()  # optional in a PATCH, but never cleared
    server_only: tuple[str, ...] = ("id", "created_at", "updated_at", "created_by")


def endpoints(c: Country, ids: dict[str, int]) -> list[Endpoint]:
    return [
        Endpoint(
            "POST",
            "/api/v1/org-units",
            {"name": "Xã Mới", "kind": "commune", "parent_id": c.district_a.id, "code": "NEW-1"},
            {"name": "text", "kind": "enum", "parent_id": "id"},
            required=("name", "kind"),
            server_only=("id", "depth", "version", "created_at"),
        ),
        Endpoint(
            "PATCH",
            f"/api/v1/org-units/{c.school_a.id}",
            {"name": "Trường Mới", "version": 1},
            {"name": "text", "kind": "enum", "version": "id", "dissolved_on": "date"},
            not_null=("name", "kind"),
            server_only=("id", "depth", "parent_id", "created_at"),
        ),
        Endpoint(
            "POST",
            f"/api/v1/org-units/{c.dept_a.id}/move",
            {"parent_id": c.commune_a2.id},
            {"parent_id": "id", "version": "id"},
            required=("parent_id",),
        ),
        Endpoint(
            "POST",
            "/api/v1/users",
            {
                "username": "nguoi.moi",
                "password": SECRET,
                "full_name": "Người Mới",
                "org_unit_id": c.school_a.id,
            },
            {
                "username": "username",
                "password": "password",
                "full_name": "text",
                "org_unit_id": "id",
                "email": "email",
                "person_id": "id",
            },
            required=("username", "password", "full_name", "org_unit_id"),
            server_only=("id", "is_active", "is_service", "roles", "version", "password_hash"),
        ),
        Endpoint(
            "PATCH",
            f"/api/v1/users/{ids['user']}",
            {"full_name": "Tên Mới", "password": SECRET},
            {
                "full_name": "text",
                "password": "password",
                "email": "email",
                "is_active": "bool",
                "version": "id",
            },
            not_null=("full_name", "password"),
            server_only=("id", "username", "org_unit_id", "is_service", "roles", "password_hash"),
        ),
        Endpoint(
            "POST",
            f"/api/v1/users/{ids['user']}/roles",
            {"role": "viewer", "org_unit_id": c.school_a.id},
            {"role": "enum", "org_unit_id": "id"},
            required=("role",),
            server_only=("id", "user_id", "granted_by"),
        ),
        Endpoint(
            "POST",
            "/api/v1/people",
            {
                "full_name": "Lê Văn Tám",
                "org_unit_id": c.school_a.id,
                "group": "worker",
                "citizen_id": "001099000001",
            },
            {
                "full_name": "text",
                "org_unit_id": "id",
                "group": "enum",
                "birth_year": "int",
                "gender": "enum",
                "citizen_id": "citizen_id",
                "user_id": "id",
            },
            required=("full_name", "org_unit_id", "group"),
        ),
        Endpoint(
            "PATCH",
            f"/api/v1/people/{ids['person']}",
            {"full_name": "Lê Văn Tám", "birth_year": 1980},
            {
                "full_name": "text",
                "group": "enum",
                "birth_year": "int",
                "gender": "enum",
                "citizen_id": "citizen_id",
            },
            not_null=("full_name", "group"),
            server_only=("id", "org_unit_id", "user_id", "created_at"),
        ),
        Endpoint(
            "POST",
            "/api/v1/service-accounts",
            {"name": "Script", "org_unit_id": c.district_a.id, "roles": ["integration"]},
            {"name": "text", "org_unit_id": "id", "roles": "roles"},
            required=("name", "org_unit_id", "roles"),
            server_only=("id", "client_id", "client_secret", "is_active"),
        ),
    ]


def bad_bodies(e: Endpoint) -> list[tuple[str, Any]]:
    """(label, body) pairs, each malformed in exactly one way."""
    cases: list[tuple[str, Any]] = [
        ("unknown field", {**e.body, "colour": "red"}),
        ("not an object", [e.body]),
        ("a string", "hello"),
        ("empty", None),
    ]
    cases += [(f"server-only {f}", {**e.body, f: 1}) for f in e.server_only]
    cases += [(f"{f} missing", {k: v for k, v in e.body.items() if k != f}) for f in e.required]
    cases += [(f"{f} null", {**e.body, f: None}) for f in (*e.required, *e.not_null)]
    for field, kind in e.fields.items():
        cases += [(f"{field}={value!r:.40}", {**e.body, field: value}) for value in WRONG[kind]]
    text_fields = [f for f, kind in e.fields.items() if kind == "text"]
    if text_fields:
        cases.append((f"10 MB {text_fields[0]}", {**e.body, text_fields[0]: "x" * TEN_MB}))
    return cases


def assert_validation_error(r: httpx.Response, label: str) -> None:
    assert r.status_code == 422, (label, r.status_code, r.text[:500])
    body = r.json()
    assert set(body) == {"error"}, label
    assert set(body["error"]) == {"code", "message", "details"}, label
    assert body["error"]["code"] == "validation_error", label
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], label
    assert SECRET not in r.text, label
    assert len(r.content) < 10_000, (label, "the error echoes the input")


async def _setup(tree: Tree) -> tuple[Country, dict[str, int], dict[str, str]]:
    c = await build_country(tree)
    admin = await tree.admin()
    user = await tree.user(("member", c.school_a))
    person = await tree.person(c.school_a)
    return c, {"user": user.id, "person": person.id}, tree.auth(admin)


async def test_malformed_bodies_are_422_and_write_nothing(client: httpx.AsyncClient, tree: Tree) -> None:
    c, ids, h = await _setup(tree)
    before = await tree.snapshot()
    for e in endpoints(c, ids):
        for label, body in bad_bodies(e):
            content = b"" if body is None else json.dumps(body).encode()
            r = await client.request(
                e.method, e.path, content=content, headers={**h, "Content-Type": "application/json"}
            )
            assert_validation_error(r, f"{e.method} {e.path}: {label}")
        r = await client.request(
            e.method, e.path, content=b'{"name": ', headers={**h, "Content-Type": "application/json"}
        )
        assert_validation_error(r, f"{e.method} {e.path}: broken JSON")
    assert await tree.snapshot() == before


async def test_bodies_that_cannot_be_parsed_are_422_with_one_issue(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    """Bytes that are not UTF-8 JSON, a multipart body without its boundary: malformed input like any
    other — 422 ``validation_error`` with the one issue ``{"loc": ["body"], ...}`` (never a 400)."""
    _, _, h = await _setup(tree)
    before = await tree.snapshot()
    for content in (b'{"name": "\xff\xfe"}', b"\xff\xfe\x00"):
        r = await client.post(
            "/api/v1/org-units", content=content, headers={**h, "Content-Type": "application/json"}
        )
        assert_validation_error(r, f"JSON {content!r}")
        assert r.json()["error"]["details"] == [
            {"loc": ["body"], "msg": "The body is not valid JSON", "type": "json_invalid"}
        ]
    r = await client.post(
        "/api/v1/imports/people",
        content=b"--xx\r\nbroken",
        headers={**h, "Content-Type": "multipart/form-data"},
    )
    assert_validation_error(r, "multipart without a boundary")
    assert r.json()["error"]["details"] == [
        {"loc": ["body"], "msg": "The body cannot be read as form data", "type": "body_invalid"}
    ]
    r = await client.post(
        "/api/v1/org-units", content=b'{"name": ', headers={**h, "Content-Type": "application/json"}
    )
    assert [(d["loc"][0], d["type"]) for d in r.json()["error"]["details"]] == [("body", "json_invalid")]
    assert await tree.snapshot() == before


async def test_the_valid_bodies_used_above_are_accepted(client: httpx.AsyncClient, tree: Tree) -> None:
    """Control for the test above: each base body succeeds, so the 422s came from the one bad part."""
    c, ids, h = await _setup(tree)
    for e in endpoints(c, ids):
        r = await client.request(e.method, e.path, json=e.body, headers=h)
        assert r.status_code in (200, 201), (e.method, e.path, r.text)
        assert SECRET not in r.text


async def test_validation_details_never_echo_a_password(client: httpx.AsyncClient, tree: Tree) -> None:
    c, ids, h = await _setup(tree)
    long_secret = SECRET * 4  # over 128 characters: refused, and must not come back
    bodies = [
        (
            "POST",
            "/api/v1/users",
            {"username": "x", "password": long_secret, "full_name": "", "org_unit_id": 0},
        ),
        (
            "POST",
            "/api/v1/users",
            # well-formed, but the password is the username: refused by a rule, still without echo
            {"username": SECRET, "password": SECRET, "full_name": "A", "org_unit_id": c.school_a.id},
        ),
        ("POST", "/api/v1/users", {"password": SECRET, "extra": SECRET}),
        ("PATCH", f"/api/v1/users/{ids['user']}", {"password": long_secret}),
        ("PATCH", f"/api/v1/users/{ids['user']}", {"password": SECRET, "is_active": "maybe"}),
    ]
    for method, path, body in bodies:
        r = await client.request(method, path, json=body, headers=h)
        assert r.status_code == 422, r.text
        assert SECRET not in r.text
    r = await client.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": "a\x00b", "password": SECRET}
    )
    assert r.status_code == 422
    assert SECRET not in r.text


async def test_missing_or_out_of_scope_units_and_duplicates(client: httpx.AsyncClient, tree: Tree) -> None:
    """Well-formed bodies that name a unit which does not exist or lies outside the caller's scope: 404;
    a duplicate: 409. Nothing is written either way."""
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.province_a)))
    await tree.user(("member", c.school_a), username="da.co")
    await tree.unit("Có mã", "unit", c.school_a, code="TAKEN-1")
    before = await tree.snapshot()
    for unit_id in (c.school_b.id, 1_999_999_999):
        for path, body in [
            ("/api/v1/org-units", {"name": "X", "kind": "unit", "parent_id": unit_id}),
            (
                "/api/v1/users",
                {"username": "moi.ne", "password": SECRET, "full_name": "X", "org_unit_id": unit_id},
            ),
            ("/api/v1/people", {"full_name": "X", "org_unit_id": unit_id, "group": "staff"}),
            ("/api/v1/service-accounts", {"name": "X", "org_unit_id": unit_id, "roles": ["viewer"]}),
        ]:
            r = await client.post(path, json=body, headers=h)
            assert r.status_code == 404, (path, unit_id, r.text)
            assert r.json()["error"]["code"] == "not_found"
    for path, body in [
        ("/api/v1/org-units", {"name": "X", "kind": "unit", "parent_id": c.school_a.id, "code": "TAKEN-1"}),
        (
            "/api/v1/users",
            {"username": "da.co", "password": SECRET, "full_name": "X", "org_unit_id": c.school_a.id},
        ),
    ]:
        r = await client.post(path, json=body, headers=h)
        assert r.status_code == 409, (path, r.text)
        assert r.json()["error"]["code"] == "conflict"
    assert await tree.snapshot() == before


def list_routes(app: FastAPI) -> list[str]:
    """Every paginated GET route (from the OpenAPI document, so new list endpoints are covered too)."""
    paths = []
    for path, operations in app.openapi()["paths"].items():
        params = {p["name"] for p in operations.get("get", {}).get("parameters", [])}
        if {"limit", "offset"} <= params:
            paths.append(path)
    return sorted(paths)


BAD_PAGES = [
    {"limit": 201},
    {"limit": 0},
    {"limit": "ten"},
    {"offset": -1},
    {"offset": 2**63},
    {"limit": 2**63},
]


async def test_bad_pagination_on_every_list_is_422(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI
) -> None:
    h = tree.auth(await tree.admin())
    paths = list_routes(app)
    assert {"/api/v1/org-units", "/api/v1/users", "/api/v1/people", "/api/v1/service-accounts"} <= set(paths)
    for path in paths:
        for params in BAD_PAGES:
            r = await client.get(_fill(path), params=params, headers=h)
            assert_validation_error(r, f"{path} {params}")
            named = [d["loc"][-1] for d in r.json()["error"]["details"]]
            assert next(iter(params)) in named, (path, r.text)


def _fill(path: str) -> str:
    """Path parameters get a plausible id: validation must fail before any lookup."""
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_bad_filters_ids_and_headers_are_422(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.admin())
    requests: list[tuple[str, str, dict[str, Any], dict[str, Any] | None, dict[str, str]]] = [
        ("GET", "/api/v1/org-units", {"parent_id": 2**63}, None, {}),
        ("GET", "/api/v1/org-units", {"parent_id": -1}, None, {}),
        ("GET", "/api/v1/org-units", {"kind": "planet"}, None, {}),
        ("GET", "/api/v1/org-units", {"q": "a\x00b"}, None, {}),
        ("GET", "/api/v1/org-units", {"code": "a\x00b"}, None, {}),
        ("GET", "/api/v1/org-units", {"q": "x" * 101}, None, {}),
        ("GET", "/api/v1/users", {"org_unit_id": "abc"}, None, {}),
        ("GET", "/api/v1/users", {"q": "a\x00b"}, None, {}),
        ("GET", "/api/v1/people", {"group": "alien"}, None, {}),
        ("GET", "/api/v1/people", {"org_unit_id": 2**63}, None, {}),
        ("GET", "/api/v1/people", {"q": "a\x00b"}, None, {}),
        ("GET", f"/api/v1/org-units/{2**63}", {}, None, {}),
        ("GET", "/api/v1/org-units/abc", {}, None, {}),
        ("GET", "/api/v1/org-units/0", {}, None, {}),
        ("GET", "/api/v1/users/-1", {}, None, {}),
        ("GET", f"/api/v1/people/{2**63}", {}, None, {}),
        ("DELETE", f"/api/v1/users/1/roles/{2**63}", {}, None, {}),
        ("PATCH", f"/api/v1/org-units/{c.school_a.id}", {}, {"name": "X"}, {"If-Match": "abc"}),
        ("PATCH", f"/api/v1/org-units/{c.school_a.id}", {}, {"name": "X"}, {"If-Match": "²"}),
        ("DELETE", f"/api/v1/org-units/{c.dept_a.id}", {}, None, {"If-Match": "-1"}),
    ]
    before = await tree.snapshot()
    for method, path, params, body, headers in requests:
        encoded = {k: v.encode("latin-1") for k, v in headers.items()}
        r = await client.request(method, path, params=params, json=body, headers={**h, **encoded})
        assert_validation_error(r, f"{method} {path} {params} {headers}")
    assert await tree.snapshot() == before


async def test_bad_token_requests_are_clear_errors(client: httpx.AsyncClient) -> None:
    cases = [
        ({"username": "x", "password": "y"}, 422),  # no grant_type
        ({"grant_type": "password", "username": "a\x00b", "password": "whatever1"}, 422),
        ({"grant_type": "client_credentials", "client_id": "sa_\x00", "client_secret": "x"}, 422),
        ({"grant_type": "password", "username": "x" * 600, "password": "whatever1"}, 422),
        ({"grant_type": "refresh_token"}, 422),
        ({"grant_type": "refresh_token", "refresh_token": "\x00"}, 400),
    ]
    for data, status in cases:
        r = await client.post("/api/v1/auth/token", data=data)
        assert r.status_code == status, (data, r.text)
        assert set(r.json()["error"]) == {"code", "message", "details"}
    for body in ({}, {"refresh_token": ""}, {"refresh_token": 5}, {"refresh_token": "x", "all": True}):
        r = await client.post("/api/v1/auth/revoke", json=body)
        assert r.status_code == 422, (body, r.text)


async def test_a_body_over_the_cap_is_413(settings: Any, sessionmaker: Any, tree: Tree) -> None:
    app = create_app(settings.model_copy(update={"max_request_bytes": 4096}))
    app.state.sessionmaker = sessionmaker
    unit = await tree.unit()
    h = tree.auth(await tree.admin())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        body = {"name": "x" * 5000, "kind": "unit", "parent_id": unit.id}
        r = await client.post("/api/v1/org-units", json=body, headers=h)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        r = await client.post("/api/v1/org-units", json={**body, "name": "Vừa"}, headers=h)
        assert r.status_code == 201
