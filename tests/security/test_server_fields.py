"""Issue 6, group 4: object-property authorization (OWASP API3:2023, mass assignment).

Every JSON request body of a POST/PUT/PATCH route is found in the app's OpenAPI document, not listed by
hand. The fields a client must not set are derived: what the route's response (the read model) has and its
request (the write model) does not — ids, status, timestamps, ``org_unit_id`` of an existing object on a
PATCH, results, decision ids — plus names that must never be writable anywhere (``role`` on a user,
``created_by``, ``is_service``, ``frozen``...). Each is sent alone and must be refused with 422
``extra_forbidden`` naming that very field, so a new write schema is covered the day it is added.
Scores of the other party are checked one level down, inside each score item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.builders import Tree

pytestmark = pytest.mark.anyio

# Never settable by a client, whatever the read model of the route says.
ALWAYS_SERVER_ONLY = {
    "id",
    "status",
    "version",
    "created_by",
    "created_at",
    "updated_at",
    "role",
    "roles",
    "is_service",
    "is_active",
    "frozen",
    "result",
    "decision_id",
    "signed_by",
    "password_hash",
    "depth",
    "submitted_at",
    "reviewed_at",
    "revoked_at",
}
# An existing object keeps its place: it moves through its own route (POST /org-units/{id}/move), never
# by PATCH.
PATCH_SERVER_ONLY = {"org_unit_id", "parent_id", "person_id", "user_id", "username"}
# Inside a score item: the other party's score and what the rules compute.
SCORE_ITEM_SERVER_ONLY = {"self_score", "review_score", "effective_score", "number"}
VALUE = {"status": "recognised", "role": "admin", "roles": ["admin"], "frozen": False, "is_service": True}


@dataclass(frozen=True)
class WriteSchema:
    method: str
    path: str
    name: str
    accepted: frozenset[str]
    server_only: frozenset[str]
    nested: dict[str, frozenset[str]]  # array field -> server-only names to put in its first item


def _ref(schema: dict[str, Any]) -> str | None:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for option in schema.get("anyOf", []):
        if "$ref" in option:
            return str(option["$ref"]).rsplit("/", 1)[-1]
    return None


def write_schemas(app: FastAPI) -> list[WriteSchema]:
    spec = app.openapi()
    components = spec["components"]["schemas"]
    found = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if method not in ("post", "put", "patch"):
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue  # form and multipart bodies: FastAPI reads named fields only
            name = _ref(body["schema"])
            assert name, (method, path, "a JSON body without a named model")
            accepted = frozenset(components[name]["properties"])
            read: set[str] = set()
            for status, response in op["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                read_name = _ref(schema) if status.startswith("2") else None
                if read_name:
                    read |= set(components[read_name].get("properties", {}))
            nested = {}
            for field, prop in components[name]["properties"].items():
                item = _ref(prop.get("items", {})) if prop.get("type") == "array" else None
                if item and item.startswith("ScoreInput"):
                    nested[field] = frozenset(SCORE_ITEM_SERVER_ONLY - set(components[item]["properties"]))
            never = ALWAYS_SERVER_ONLY | (PATCH_SERVER_ONLY if method == "patch" else set())
            server_only = frozenset((read | never) - accepted)
            found.append(WriteSchema(method.upper(), path, name, accepted, server_only, nested))
    return found


async def test_the_walk_finds_the_write_schemas(app: FastAPI) -> None:
    names = {s.name for s in write_schemas(app)}
    assert {"OrgUnitCreate", "UserCreate", "PersonUpdate", "SelfAssessment", "Review", "PlanUpdate"} <= names
    patches = [s for s in write_schemas(app) if s.method == "PATCH"]
    assert patches and all({"org_unit_id", "parent_id"} <= s.server_only for s in patches)
    user_create = next(s for s in write_schemas(app) if s.name == "UserCreate")
    assert {"role", "roles", "is_service", "id"} <= user_create.server_only
    self_assessment = next(s for s in write_schemas(app) if s.name == "SelfAssessment")
    assert "review_score" in self_assessment.nested["scores"]
    assert {"status", "result", "decision_id"} <= self_assessment.server_only


async def test_every_request_body_model_forbids_unknown_fields(app: FastAPI) -> None:
    """The same guarantee one level lower: every object schema reachable from a JSON request body says
    ``additionalProperties: false`` (pydantic ``extra="forbid"``), nested items included."""
    components = app.openapi()["components"]["schemas"]
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        schema = components[name]
        if schema.get("type") != "object":
            return  # an enum or a scalar alias
        assert schema.get("additionalProperties") is False, f"{name} accepts unknown fields"
        for prop in schema.get("properties", {}).values():
            for candidate in (prop, prop.get("items", {}), *prop.get("anyOf", [])):
                ref = _ref(candidate) or _ref(candidate.get("items", {}))
                if ref:
                    visit(ref)

    for schema in write_schemas(app):
        visit(schema.name)
    assert len(seen) >= len({s.name for s in write_schemas(app)})


def _value(field: str) -> Any:
    return VALUE.get(field, 1 if field.endswith("id") or field in {"version", "depth"} else "x")


def _refused(r: httpx.Response, loc: list[Any], label: str) -> None:
    assert r.status_code == 422, (label, r.status_code, r.text[:300])
    details = r.json()["error"]["details"]
    assert {"loc": ["body", *loc], "type": "extra_forbidden"} in [
        {"loc": d["loc"], "type": d["type"]} for d in details
    ], (label, details)


async def test_server_only_fields_are_refused_on_every_write_schema(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI
) -> None:
    h = tree.auth(await tree.admin())
    before = await tree.snapshot()
    sent = 0
    for s in write_schemas(app):
        path = re.sub(r"\{[^}]+\}", "1", s.path)  # validation answers before any lookup
        for field in sorted(s.server_only):
            r = await client.request(s.method, path, json={field: _value(field)}, headers=h)
            _refused(r, [field], f"{s.method} {s.path} {field}")
            sent += 1
        for array, fields in s.nested.items():
            for field in sorted(fields):
                item = {"indicator_id": 1, "score": 5, field: 5}
                r = await client.request(s.method, path, json={"version": 1, array: [item]}, headers=h)
                _refused(r, [array, 0, field], f"{s.method} {s.path} {array}[0].{field}")
                sent += 1
    assert sent > 100, sent
    assert await tree.snapshot() == before
