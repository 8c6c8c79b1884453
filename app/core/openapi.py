"""The OpenAPI document and the docs pages: what a client generator reads, and /docs and /redoc offline.

FastAPI writes the paths and the request/response models; this module finishes the document once, in one
place, so that generated clients work (issue #13):

- every operation declares the errors it can answer, derived from what the operation is (authenticated →
  401 and 403, names an object → 404, writes → 409, has a body → 413, takes a file → 415, always 422),
  all with the one error body of API.md (:class:`ErrorBody`), replacing FastAPI's ``{"detail": [...]}``;
- uploads are ``type: string, format: binary`` (FastAPI writes the OpenAPI 3.1 ``contentMediaType``,
  which openapi-python-client turns into a text field);
- file downloads carry their media types and a binary schema instead of an empty JSON one;
- ``operationId`` is the route's function name in camelCase (``listUnits``), checked unique;
- tags have descriptions; the title is ASCII ("CDHT API") for generators' package names.

The Swagger UI and ReDoc assets come from the ``fastapi-offline`` package and are served under
``/static/docs``: the pages work on an intranet with no Internet access.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

TITLE = "CDHT API"
DESCRIPTION = """\
Backend of Vietnam's **Công dân học tập** (Learning Citizen) programme: the tree of administrative and
other units, people, yearly self-assessments with evidence and their review, recognition decisions, plans
with percentage targets, and target-versus-actual aggregates.

Every path starts with `/api/v1`. Authenticate with `POST /api/v1/auth/token` (OAuth 2 password, refresh
or client-credentials grant) and send `Authorization: Bearer <access_token>`. Every error answers the same
body, `{"error": {"code", "message", "details"}}` (see the `ErrorBody` schema for the codes and what
`details` holds for each); messages are Vietnamese with `Accept-Language: vi`. Unknown query parameters
and body fields are refused with 422.
"""
SUMMARY = "Công dân học tập (Learning Citizen): org tree, evaluations, plans and aggregates."
CONTACT = {"name": "CDHT maintainers"}
SERVERS = [{"url": "/", "description": "The server this document was read from."}]

TAGS: dict[str, str] = {
    "auth": "Tokens (OAuth 2 password, refresh and client-credentials grants), logout, the caller.",
    "users": "User accounts, their role assignments and service accounts (org_admin).",
    "org units": "The tree of units (nation, province, commune, school, …) as it stands on a day.",
    "reorganisations": "Merging, dissolving, moving and renaming units as of a date, all or nothing.",
    "people": "People of a unit and their transfers between units and groups.",
    "collectives": "Households and clans, the subjects of the collective titles.",
    "criteria": "Criteria sets (bộ tiêu chí): the national ones and local variants.",
    "evaluations": "Yearly evaluations: self-assessment, evidence, submission and review.",
    "recognition decisions": "Decisions recognising reviewed, passed evaluations (quyết định công nhận).",
    "plans": "Plans with percentage targets per metric and year.",
    "training sessions": "Training sessions and their attendees.",
    "aggregates": "The metric registry and target-versus-actual numbers for a unit's subtree.",
    "imports": "Bulk CSV/XLSX imports of units, people, households and reorganisations.",
    "reports": "The annual report as JSON, CSV or XLSX.",
    "exports": "Person-level CSV exports for integrations.",
    "reporting": "The reporting cycle: report submissions, due dates and completeness.",
    "alerts": "Units behind their plans' trajectory, overdue reports, reviews waiting.",
    "webhooks": "Webhook subscriptions and their deliveries (Standard Webhooks signatures).",
    "health": "Liveness and readiness probes.",
}

# Operations whose success is a file, with its media types (FastAPI cannot see through a streamed or
# file response). :func:`build` refuses a file-like response missing from here, so a new one is listed.
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EVIDENCE_TYPES = [
    "application/pdf",
    "image/jpeg",
    "image/png",
    "image/webp",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    XLSX,
    "application/vnd.oasis.opendocument.text",
]
FILE_RESPONSES: dict[str, list[str]] = {
    "exportEvaluations": ["text/csv"],
    "exportRecognised": ["text/csv"],
    "evidenceContent": EVIDENCE_TYPES,
}
# Errors that nothing in the route's shape reveals: the login's refusals and its throttle.
EXTRA_ERRORS: dict[str, set[int]] = {"token": {400, 429}}
# Authenticated operations that never answer 403: the caller's own record.
NEVER_FORBIDDEN = {"me"}

_WRITES = {"post", "put", "patch", "delete"}
_FILE_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}

CODES_TABLE = """\
`code` and what `details` holds for it:

| status | code | details |
|---|---|---|
| 400 | `invalid_grant`, `unsupported_grant_type` | null (login only) |
| 401 | `not_authenticated` | null (the answer carries `WWW-Authenticate: Bearer`) |
| 403 | `forbidden` | null |
| 404 | `not_found` | null (also for objects outside the caller's subtrees) |
| 409 | `conflict` | null, or an object naming what conflicts: `{"current_version": n}` for a stale \
`version`/`If-Match`, `{"field": name}` for a duplicate, or the ids and dates involved |
| 409 | `invalid_transition` | `{"status": current, "allowed_from": [statuses]}` |
| 413 | `payload_too_large` | null, or `{"max_bytes": n}` |
| 415 | `unsupported_media_type` | null |
| 422 | `validation_error` | a list of `ValidationIssue` when the request does not match the document \
(missing or malformed values; unknown query parameters and body fields have `type: extra_forbidden`; a body \
that cannot be parsed at all has `loc: ["body"]` and `type: json_invalid`, or `body_invalid` for a form); an \
object when well-formed input breaks a rule: `{"field": name, …}`, `{"step": i, "op", "reason"}` for a \
reorganisation step, `{"errors": [{"row", "column", "message"}]}` for a file's rows |
| 429 | `rate_limited` | null (the answer carries `Retry-After`, in seconds) |
| 503 | `service_unavailable` | null |
| 500 | `internal_error` | null |

`message` and each issue's `msg` are Vietnamese with `Accept-Language: vi` (the answer then carries
`Content-Language: vi`); `code`, `type` and `loc` never change with the language.
"""


class ValidationIssue(BaseModel):
    """One problem with the request's shape (the framework's validation, without the offending input)."""

    loc: list[str | int] = Field(
        description="Where: `body`, `query`, `path`, `header` or `form`, then the field's path."
    )
    msg: str = Field(description="What is wrong, in the request's language.")
    type: str = Field(description="A stable identifier of the problem, e.g. `missing`, `extra_forbidden`.")


class ErrorDetails(BaseModel):
    """What a rule names when well-formed input breaks it (``conflict``, ``invalid_transition``,
    ``payload_too_large``, rule-level ``validation_error``): the keys below where they apply, and the ids
    and dates involved (``org_unit_id``, ``valid_to``, …)."""

    model_config = ConfigDict(extra="allow")

    field: str | None = Field(default=None, description="The request field at fault.")
    current_version: int | None = Field(default=None, description="A stale version's current value.")
    status: str | None = Field(default=None, description="The object's current status.")
    allowed_from: list[str] | None = Field(default=None, description="Statuses the transition starts from.")
    step: int | None = Field(default=None, description="The reorganisation step at fault (from 0).")
    op: str | None = Field(default=None, description="That step's operation.")
    reason: str | None = Field(default=None, description="Why that step fails.")
    errors: list[dict[str, Any]] | None = Field(default=None, description="A file's rows at fault.")
    max_bytes: int | None = Field(default=None, description="The size limit that was passed.")
    rule: str | None = Field(default=None, description="The rule broken (``separation_of_duties``).")
    duty: str | None = Field(default=None, description="The duty refused to the caller (that rule).")


class Error(BaseModel):
    """An error; also what a failed import job keeps (``GET /imports/jobs/{job_id}``)."""

    # ``details`` is always sent, so the document (which describes answers) requires it; a stored error
    # without it (an import job's) reads as null.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    code: str = Field(description="A stable snake_case identifier (see the table in `ErrorBody`).")
    message: str = Field(description="Human text; Vietnamese with `Accept-Language: vi`.")
    details: list[ValidationIssue] | ErrorDetails | None = Field(
        default=None, description="What exactly failed; its shape depends on `code` (see `ErrorBody`)."
    )


class ErrorBody(BaseModel):
    error: Error


ErrorBody.__doc__ = "The body of every error answer.\n\n" + CODES_TABLE

_ERROR_RESPONSES: dict[int, str] = {
    400: "At login: bad credentials or refresh token (`invalid_grant`), or an unsupported grant type.",
    401: "No, an invalid or an expired bearer token (`not_authenticated`).",
    403: "The object is in the caller's subtrees but their roles do not allow this (`forbidden`).",
    404: "No such object, or one outside the caller's subtrees (`not_found`).",
    409: "A stale `version`, a duplicate, a state that does not allow this (`conflict`, "
    "`invalid_transition`), or an `Idempotency-Key` whose first request is still running.",
    413: "The body or file is too large (`payload_too_large`).",
    415: "The file's content is not of an accepted type (`unsupported_media_type`).",
    422: "The request is malformed (a body that cannot be parsed included): see `details` "
    "(`validation_error`).",
    429: "Too many failed logins; retry after `Retry-After` seconds (`rate_limited`).",
}
_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def operation_id(route: APIRoute) -> str:
    """``operationId`` from the route's function name: ``list_units`` → ``listUnits``. Stable while the
    function keeps its name; generators make ``list_units()`` of it again."""
    head, *rest = route.name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}:
                yield path, method, operation


def error_statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, read from its shape (see the module docstring)."""
    op_id = operation["operationId"]
    params = operation.get("parameters", [])
    body = operation.get("requestBody", {}).get("content", {})
    statuses = {422} if path.startswith("/api/") or params or body else set()
    if operation.get("security"):
        statuses.add(401)
        if op_id not in NEVER_FORBIDDEN:
            statuses.add(403)
        names_object = any(
            p["in"] == "path" or (p["in"] == "query" and p["name"].endswith("_id")) for p in params
        )
        if names_object or "application/json" in body:  # ids in a JSON body are scoped too
            statuses.add(404)
    if method in _WRITES and (operation.get("security") or method == "post"):
        statuses.add(409)  # a stale version, a duplicate, a transition; on POST also an Idempotency-Key
    if body:
        statuses.add(413)  # over the size limit (one that cannot be parsed at all is a 422)
    if "multipart/form-data" in body:
        statuses.add(415)
    return statuses | EXTRA_ERRORS.get(op_id, set())


def _error_response(status: int, declared: dict[str, Any] | None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _ERROR_RESPONSES[status]}
    if declared and declared.get("description") not in (None, "Validation Error"):
        response["description"] = declared["description"]
    response["content"] = {"application/json": {"schema": dict(_ERROR_REF)}}
    if status in _ERROR_HEADERS:
        response["headers"] = copy.deepcopy(_ERROR_HEADERS[status])
    return response


def _declares_own_body(declared: dict[str, Any] | None) -> bool:
    """A route's own response with content (e.g. an import's 422 summary), which is kept as it is."""
    if not declared or "content" not in declared:
        return False
    schema = declared["content"].get("application/json", {}).get("schema", {})
    ref: object = schema.get("$ref")
    return ref != "#/components/schemas/HTTPValidationError"


def _binary_uploads(node: Any) -> None:
    """``contentMediaType`` (OpenAPI 3.1) → ``format: binary`` (what both generators read as a file)."""
    if isinstance(node, dict):
        if node.get("type") == "string" and "contentMediaType" in node:
            del node["contentMediaType"]
            node["format"] = "binary"
        for value in node.values():
            _binary_uploads(value)
    elif isinstance(node, list):
        for value in node:
            _binary_uploads(value)


def _file_responses(op_id: str, responses: dict[str, Any]) -> None:
    for status, response in responses.items():
        if not status.startswith("2") or status == "204":
            continue
        content = response.get("content")
        if op_id in FILE_RESPONSES:
            response["content"] = {media: {"schema": dict(_FILE_SCHEMA)} for media in FILE_RESPONSES[op_id]}
            continue
        if not content and status in {"200", "201"}:
            raise RuntimeError(f"{op_id}: a {status} without a body; list its media types in FILE_RESPONSES")
        # Declared file formats beside JSON (``format=csv|xlsx``): their own media types, a binary schema.
        for media in list(content or {}):
            if media != "application/json" and not content[media].get("schema"):
                del content[media]
                content[media.split(";")[0].strip()] = {"schema": dict(_FILE_SCHEMA)}


def _referenced(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            _referenced(value, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, found)


def _prune_components(schema: dict[str, Any]) -> None:
    """Drop schemas nothing refers to any more (FastAPI's validation error, a replaced error body)."""
    components = schema.get("components", {}).get("schemas", {})
    used: set[str] = set()
    _referenced({k: v for k, v in schema.items() if k != "components"}, used)
    pending = list(used)
    while pending:
        found: set[str] = set()
        _referenced(components.get(pending.pop(), {}), found)
        pending.extend(found - used)
        used |= found
    for name in set(components) - used:
        del components[name]


def _error_components() -> dict[str, Any]:
    generated = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    components: dict[str, Any] = generated.pop("$defs")
    components["ErrorBody"] = generated
    return components


def build(app: FastAPI) -> dict[str, Any]:
    """The finished document (see the module docstring)."""
    schema = get_openapi(
        title=TITLE,
        version=app.version,
        summary=SUMMARY,
        description=DESCRIPTION,
        routes=app.routes,
        servers=SERVERS,
        contact=CONTACT,
        tags=[{"name": name, "description": text} for name, text in TAGS.items()],
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(_error_components())
    seen: dict[str, str] = {}
    for path, method, operation in _operations(schema):
        op_id = operation["operationId"]
        where = f"{method.upper()} {path}"
        if op_id in seen:
            raise RuntimeError(f"operationId {op_id!r} of {where} is also {seen[op_id]}'s")
        seen[op_id] = where
        unknown_tags = set(operation.get("tags", [])) - TAGS.keys()
        if unknown_tags or not operation.get("tags"):
            raise RuntimeError(f"{where}: describe its tags {sorted(unknown_tags)} in openapi.TAGS")
        operation.setdefault("description", f"{operation['summary']}.")
        responses = operation["responses"]
        _file_responses(op_id, responses)
        for status in sorted(error_statuses(path, method, operation)):
            declared = responses.get(str(status))
            if not _declares_own_body(declared):
                responses[str(status)] = _error_response(status, declared)
        operation["responses"] = dict(sorted(responses.items()))
    for body in components.values():
        _binary_uploads(body)
    _prune_components(schema)
    return schema


def install(app: FastAPI, *, static_url: str = "/static/docs") -> None:
    """Serve the finished document at ``app.openapi_url`` and the docs pages with packaged assets.

    The app must be made with ``docs_url=None, redoc_url=None`` (FastAPI's own pages load a CDN)."""
    assets = resources.files("fastapi_offline") / "static"
    app.mount(static_url, StaticFiles(directory=str(assets)), name="docs-assets")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = "/docs/oauth2-redirect"

    def page(render: Callable[[str], HTMLResponse]) -> Callable[[Request], HTMLResponse]:
        def endpoint(request: Request) -> HTMLResponse:
            return render(request.scope.get("root_path", ""))

        return endpoint

    def swagger(root: str) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{TITLE} — Swagger UI",
            oauth2_redirect_url=root + redirect_url,
            swagger_js_url=f"{root}{static_url}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{static_url}/swagger-ui.css",
            swagger_favicon_url=f"{root}{static_url}/favicon.png",
        )

    def redoc(root: str) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{TITLE} — ReDoc",
            redoc_js_url=f"{root}{static_url}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{static_url}/favicon.png",
            with_google_fonts=False,
        )

    app.add_api_route("/docs", page(swagger), include_in_schema=False)
    app.add_api_route(redirect_url, lambda: get_swagger_ui_oauth2_redirect_html(), include_in_schema=False)
    app.add_api_route("/redoc", page(redoc), include_in_schema=False)
