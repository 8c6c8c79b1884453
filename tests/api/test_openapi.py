"""Issue #13: the OpenAPI document a client generator reads (app/core/openapi.py) and the refusal of
unknown query parameters (app/core/query_params.py).

The document is checked in-process here; tests/clients/ generates clients from the served one and drives
a real server with them, lints it with Spectral and renders /docs in Chromium.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate

from app.core.openapi import FILE_RESPONSES, TAGS, error_statuses
from tests.builders import Tree

API = "/api/v1"
ERROR_REF = "#/components/schemas/ErrorBody"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Every operation's id. Generated clients name their functions after these: a change here breaks every
# integrator's code, so it must be deliberate (and written in the README's changelog).
OPERATION_IDS = {
    "POST /api/v1/auth/token": "token",
    "POST /api/v1/auth/revoke": "revoke",
    "GET /api/v1/me": "me",
    "POST /api/v1/users": "createUser",
    "GET /api/v1/users": "listUsers",
    "GET /api/v1/users/{user_id}": "getUser",
    "PATCH /api/v1/users/{user_id}": "updateUser",
    "POST /api/v1/users/{user_id}/roles": "grantRole",
    "DELETE /api/v1/users/{user_id}/roles/{assignment_id}": "revokeRole",
    "POST /api/v1/service-accounts": "createServiceAccount",
    "GET /api/v1/service-accounts": "listServiceAccounts",
    "POST /api/v1/org-units": "createUnit",
    "GET /api/v1/org-units": "listUnits",
    "GET /api/v1/org-units/{unit_id}": "getUnit",
    "PATCH /api/v1/org-units/{unit_id}": "updateUnit",
    "DELETE /api/v1/org-units/{unit_id}": "deleteUnit",
    "GET /api/v1/org-units/{unit_id}/descendants": "listDescendants",
    "POST /api/v1/org-units/{unit_id}/move": "moveUnit",
    "POST /api/v1/reorganisations": "applyReorganisation",
    "GET /api/v1/reorganisations": "listReorganisations",
    "GET /api/v1/reorganisations/{reorganisation_id}": "getReorganisation",
    "POST /api/v1/people": "createPerson",
    "GET /api/v1/people": "listPeople",
    "GET /api/v1/people/{person_id}": "getPerson",
    "PATCH /api/v1/people/{person_id}": "updatePerson",
    "POST /api/v1/people/{person_id}/transfers": "transferPerson",
    "GET /api/v1/people/{person_id}/transfers": "listTransfers",
    "GET /api/v1/people/citizen-id-claims": "listCitizenIdClaims",
    "POST /api/v1/people/{person_id}/citizen-id-claim": "resolveCitizenIdClaim",
    "POST /api/v1/households": "createHousehold",
    "GET /api/v1/households": "listHouseholds",
    "GET /api/v1/households/{household_id}": "getHousehold",
    "PATCH /api/v1/households/{household_id}": "updateHousehold",
    "PUT /api/v1/households/{household_id}/members": "replaceMembers",
    "POST /api/v1/clans": "createClan",
    "GET /api/v1/clans": "listClans",
    "GET /api/v1/clans/{clan_id}": "getClan",
    "PATCH /api/v1/clans/{clan_id}": "updateClan",
    "PUT /api/v1/clans/{clan_id}/households": "replaceHouseholds",
    "GET /api/v1/criteria-sets": "listSets",
    "POST /api/v1/criteria-sets": "createVariant",
    "GET /api/v1/criteria-sets/{set_id}": "getSet",
    "POST /api/v1/evaluations": "createEvaluation",
    "GET /api/v1/evaluations": "listEvaluations",
    "GET /api/v1/evaluations/{evaluation_id}": "getEvaluation",
    "GET /api/v1/evaluations/{evaluation_id}/history": "evaluationHistory",
    "PUT /api/v1/evaluations/{evaluation_id}/self-assessment": "selfAssess",
    "POST /api/v1/evaluations/{evaluation_id}/submit": "submit",
    "POST /api/v1/evaluations/{evaluation_id}/withdraw": "withdraw",
    "POST /api/v1/evaluations/{evaluation_id}/reopen": "reopen",
    "PUT /api/v1/evaluations/{evaluation_id}/review": "review",
    "POST /api/v1/evaluations/{evaluation_id}/return": "returnEvaluation",
    "POST /api/v1/evaluations/{evaluation_id}/complete-review": "completeReview",
    "POST /api/v1/evaluations/{evaluation_id}/evidence": "uploadEvidence",
    "GET /api/v1/evidence/{evidence_id}/content": "evidenceContent",
    "DELETE /api/v1/evidence/{evidence_id}": "deleteEvidence",
    "POST /api/v1/recognition-decisions": "signDecision",
    "GET /api/v1/recognition-decisions": "listDecisions",
    "GET /api/v1/recognition-decisions/{decision_id}": "getDecision",
    "POST /api/v1/recognition-decisions/{decision_id}/revoke": "revokeDecision",
    "POST /api/v1/plans": "createPlan",
    "GET /api/v1/plans": "listPlans",
    "GET /api/v1/plans/{plan_id}": "getPlan",
    "PATCH /api/v1/plans/{plan_id}": "updatePlan",
    "DELETE /api/v1/plans/{plan_id}": "deletePlan",
    "PUT /api/v1/plans/{plan_id}/targets": "replaceTargets",
    "POST /api/v1/training-sessions": "createSession",
    "GET /api/v1/training-sessions": "listSessions",
    "GET /api/v1/training-sessions/{session_id}": "getSession",
    "PUT /api/v1/training-sessions/{session_id}/attendees": "replaceAttendees",
    "GET /api/v1/metrics": "listMetrics",
    "GET /api/v1/aggregates/progress": "progress",
    "GET /api/v1/aggregates/breakdown": "breakdown",
    "GET /api/v1/aggregates/trend": "trend",
    "POST /api/v1/imports/org-units": "importOrgUnits",
    "POST /api/v1/imports/people": "importPeople",
    "POST /api/v1/imports/households": "importHouseholds",
    "POST /api/v1/imports/reorganisation": "importReorganisation",
    "GET /api/v1/imports/jobs/{job_id}": "getImportJob",
    "GET /api/v1/reports/annual": "annualReport",
    "GET /api/v1/exports/evaluations": "exportEvaluations",
    "GET /api/v1/exports/recognised": "exportRecognised",
    "POST /api/v1/report-submissions": "submitReport",
    "GET /api/v1/report-submissions": "listSubmissions",
    "GET /api/v1/report-submissions/{submission_id}": "getSubmission",
    "GET /api/v1/report-submissions/{submission_id}/file": "submissionFile",
    "POST /api/v1/report-submissions/{submission_id}/accept": "acceptSubmission",
    "POST /api/v1/report-submissions/{submission_id}/return": "returnSubmission",
    "PUT /api/v1/reporting-calendars/{org_unit_id}/{year}": "putCalendar",
    "GET /api/v1/reporting-calendars/{org_unit_id}/{year}": "getCalendar",
    "DELETE /api/v1/reporting-calendars/{org_unit_id}/{year}": "deleteCalendar",
    "GET /api/v1/reporting-calendars/{org_unit_id}": "listCalendar",
    "GET /api/v1/reporting/completeness": "completeness",
    "GET /api/v1/alerts": "listAlerts",
    "POST /api/v1/webhooks": "createWebhook",
    "GET /api/v1/webhooks": "listWebhooks",
    "GET /api/v1/webhooks/{webhook_id}": "getWebhook",
    "PATCH /api/v1/webhooks/{webhook_id}": "updateWebhook",
    "DELETE /api/v1/webhooks/{webhook_id}": "deleteWebhook",
    "GET /api/v1/webhooks/{webhook_id}/deliveries": "listDeliveries",
    "POST /api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": "redeliver",
    "GET /healthz": "healthz",
    "GET /readyz": "readyz",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    from app.main import create_app

    return create_app().openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_operation_ids_are_short_unique_and_stable(document: dict[str, Any]) -> None:
    found = {f"{method.upper()} {path}": op["operationId"] for method, path, op in operations(document)}
    assert len(set(found.values())) == len(found), "operationIds must be unique"
    changed = {k: (OPERATION_IDS.get(k), v) for k, v in found.items() if OPERATION_IDS.get(k) != v}
    gone = sorted(OPERATION_IDS.keys() - found.keys())
    assert not changed and not gone, (
        f"operations added or renamed {changed}, removed {gone}: add new ones to OPERATION_IDS; a rename"
        " breaks generated clients (write it in the README's changelog)"
    )


def test_the_title_is_ascii_and_the_description_names_the_programme(document: dict[str, Any]) -> None:
    info = document["info"]
    assert info["title"] == "CDHT API" and info["title"].isascii()
    assert "Công dân học tập" in info["description"]
    assert info["contact"]["name"] and document["servers"] == [
        {"url": "/", "description": "The server this document was read from."}
    ]


def test_every_tag_is_described(document: dict[str, Any]) -> None:
    used = {tag for _, _, op in operations(document) for tag in op["tags"]}
    described = {tag["name"]: tag.get("description") for tag in document["tags"]}
    assert used <= described.keys() and all(described.values())
    assert set(described) == set(TAGS)


def test_every_error_is_declared_with_the_one_error_body(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        declared = {int(status) for status in op["responses"] if status.startswith(("4", "5"))}
        expected = error_statuses(path, method, op)
        assert expected <= declared, (method, path, expected - declared)
        if path.startswith(API):
            assert 422 in declared, (method, path)
        if op.get("security"):
            assert 401 in declared and ("{" not in path or 404 in declared), (method, path)
        for status in declared:
            schemas = [m.get("schema", {}) for m in op["responses"][str(status)]["content"].values()]
            refs = {s.get("$ref") for s in schemas} | {
                a.get("$ref") for s in schemas for a in s.get("anyOf", [])
            }
            assert ERROR_REF in refs, (method, path, status, schemas)
    components = document["components"]["schemas"]
    assert "HTTPValidationError" not in components and "ValidationError" not in components


def test_the_error_body_documents_its_details(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    error = components["Error"]
    assert error["required"] == ["code", "message", "details"]
    variants = error["properties"]["details"]["anyOf"]
    assert {"type": "null"} in variants
    assert {"$ref": "#/components/schemas/ErrorDetails"} in variants
    assert {"items": {"$ref": "#/components/schemas/ValidationIssue"}, "type": "array"} in variants
    assert components["ValidationIssue"]["required"] == ["loc", "msg", "type"]
    table = components["ErrorBody"]["description"]
    for code in ("validation_error", "not_authenticated", "forbidden", "not_found", "conflict"):
        assert f"`{code}`" in table, code
    for code in ("invalid_transition", "payload_too_large", "unsupported_media_type", "rate_limited"):
        assert f"`{code}`" in table, code


def test_special_errors_are_declared_where_they_happen(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert {"400", "429"} <= set(paths[f"{API}/auth/token"]["post"]["responses"])
    assert "Retry-After" in paths[f"{API}/auth/token"]["post"]["responses"]["429"]["headers"]
    upload = paths[f"{API}/evaluations/{{evaluation_id}}/evidence"]["post"]["responses"]
    assert {"401", "403", "404", "409", "413", "415", "422"} <= set(upload)
    assert "WWW-Authenticate" in upload["401"]["headers"]
    assert "409" in paths[f"{API}/org-units/{{unit_id}}"]["patch"]["responses"]
    assert "409" not in paths[f"{API}/org-units/{{unit_id}}"]["get"]["responses"]
    assert "403" not in paths[f"{API}/me"]["get"]["responses"]


def test_uploads_are_binary_strings(document: dict[str, Any]) -> None:
    forms = [
        op["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for _, _, op in operations(document)
        if "multipart/form-data" in op.get("requestBody", {}).get("content", {})
    ]
    assert len(forms) == 5, forms
    for name in forms:
        file = document["components"]["schemas"][name]["properties"]["file"]
        assert (file["type"], file["format"]) == ("string", "binary"), (name, file)
    assert "contentMediaType" not in str(document)


def test_file_downloads_declare_their_media_types(document: dict[str, Any]) -> None:
    paths = document["paths"]
    binary = {"schema": {"type": "string", "format": "binary"}}

    def ok(path: str) -> dict[str, Any]:
        return paths[API + path]["get"]["responses"]["200"]["content"]

    assert ok("/exports/evaluations") == {"text/csv": binary}
    assert ok("/exports/recognised") == {"text/csv": binary}
    assert ok("/report-submissions/{submission_id}/file") == {XLSX: binary}
    assert set(ok("/evidence/{evidence_id}/content")) == set(FILE_RESPONSES["evidenceContent"])
    annual = ok("/reports/annual")
    assert annual["application/json"]["schema"] == {"$ref": "#/components/schemas/AnnualReport"}
    assert (annual["text/csv"], annual[XLSX]) == (binary, binary)
    assert ok("/reporting/completeness")[XLSX] == binary


def test_every_operation_has_a_description(document: dict[str, Any]) -> None:
    assert all(op.get("description") for _, _, op in operations(document))


# --- /docs and /redoc: packaged assets, no CDN -----------------------------------------------------------


async def test_the_docs_pages_use_packaged_assets(client: httpx.AsyncClient) -> None:
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        r = await client.get(page)
        assert r.status_code == 200 and f"/static/docs/{asset}" in r.text, page
        assert "https://" not in r.text and "cdn" not in r.text.lower(), page
        script = await client.get(f"/static/docs/{asset}")
        assert script.status_code == 200 and len(script.content) > 500_000, asset
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200
    assert (await client.get("/openapi.json")).json()["info"]["title"] == "CDHT API"


# --- unknown query parameters ----------------------------------------------------------------------------


async def test_an_unknown_query_parameter_is_a_422_naming_it(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit("Xã Lọc", "commune")
    await tree.person(unit, "resident")
    h = tree.auth(await tree.admin())
    typo = await client.get(f"{API}/people", params={"org_unit": unit.id}, headers=h)
    assert typo.status_code == 422, typo.text
    error = typo.json()["error"]
    assert error["code"] == "validation_error"
    [issue] = error["details"]
    assert (issue["loc"], issue["type"]) == (["query", "org_unit"], "extra_forbidden")
    assert "org_unit_id" in issue["msg"]  # the message lists what the operation takes
    right = await client.get(f"{API}/people", params={"org_unit_id": unit.id, "limit": 5}, headers=h)
    assert right.status_code == 200 and right.json()["total"] == 1


async def test_unknown_query_parameters_mirror_unknown_body_fields(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    unit = await tree.unit("Xã Gương", "commune")
    h = tree.auth(await tree.admin())
    body = {"full_name": "Lê Văn A", "org_unit_id": unit.id, "group": "resident", "nickname": "A"}
    in_body = (await client.post(f"{API}/people", json=body, headers=h)).json()["error"]
    in_query = (await client.get(f"{API}/people?nickname=A&b=1", headers=h)).json()["error"]
    assert in_body["code"] == in_query["code"] == "validation_error"
    assert in_body["message"] == in_query["message"]
    assert [d["type"] for d in in_query["details"]] == ["extra_forbidden", "extra_forbidden"]
    assert [d["loc"] for d in in_query["details"]] == [["query", "b"], ["query", "nickname"]]
    assert set(in_body["details"][0]) == set(in_query["details"][0]) == {"loc", "msg", "type"}


async def test_every_api_operation_refuses_unknown_query_parameters(
    client: httpx.AsyncClient, app: FastAPI, tree: Tree
) -> None:
    """No operation under /api/v1 is exempt; nothing is written (the check runs before the handler)."""
    h = tree.auth(await tree.admin())
    for method, path, _ in operations(app.openapi()):
        if not path.startswith(API):
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        r = await client.request(method.upper(), f"{url}?not_a_parameter=1", headers=h)
        assert r.status_code == 422, (method, path, r.status_code, r.text[:300])
        assert r.json()["error"]["details"][0]["loc"] == ["query", "not_a_parameter"], (method, path)


async def test_healthz_takes_probes_parameters(client: httpx.AsyncClient) -> None:
    # Outside /api/v1 on purpose (app/core/query_params.py): probes add cache-busting parameters.
    assert (await client.get("/healthz?ts=1")).status_code == 200
