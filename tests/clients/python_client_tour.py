"""An integrator's first hour, with the client openapi-python-client generates from /openapi.json.

Run by tests/clients/test_generated_clients.py with the generated package ``cdht_api_client`` on
``PYTHONPATH``: ``python python_client_tour.py BASE_URL USERNAME PASSWORD``. Every call goes through the
generated functions and models, and every answer is read as the typed model the document promises,
errors included (``ErrorBody``). Exits non-zero on the first surprise.
"""

from __future__ import annotations

import sys
import uuid
from datetime import date
from io import BytesIO
from typing import Any, TypeVar

from cdht_api_client import AuthenticatedClient, Client
from cdht_api_client.api.auth import me, token
from cdht_api_client.api.evaluations import (
    create_evaluation,
    get_evaluation,
    self_assess,
    submit,
    upload_evidence,
)
from cdht_api_client.api.imports import import_people
from cdht_api_client.api.org_units import create_unit, get_unit
from cdht_api_client.api.people import create_person
from cdht_api_client.api.reporting import submission_file, submit_report
from cdht_api_client.models import (
    BodyImportPeople,
    BodyToken,
    BodyUploadEvidence,
    ErrorBody,
    ErrorDetails,
    EvaluationCreate,
    EvaluationRead,
    EvidenceRead,
    Group,
    ImportSummary,
    MeRead,
    OrgKind,
    OrgUnitCreate,
    OrgUnitRead,
    PersonCreate,
    PersonRead,
    ScoreInput,
    SelfAssessment,
    Status,
    SubmissionCreate,
    SubmissionDetail,
    TokenResponse,
    TransitionRequest,
    ValidationIssue,
)
from cdht_api_client.types import File

T = TypeVar("T")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
XLSX_MAGIC = b"PK\x03\x04"


def expect(value: Any, kind: type[T], what: str) -> T:
    """The parsed answer, checked to be the model the document declares for its status."""
    if not isinstance(value, kind):
        raise AssertionError(f"{what}: expected {kind.__name__}, got {type(value).__name__}: {value!r}")
    return value


def main(base_url: str, username: str, password: str) -> None:
    year = date.today().year
    suffix = uuid.uuid4().hex[:6].upper()

    # Log in (form-encoded OAuth 2 password grant), then every call carries the bearer token.
    login = token.sync(
        client=Client(base_url=base_url),
        body=BodyToken(grant_type="password", username=username, password=password),
    )
    access = expect(login, TokenResponse, "login").access_token
    client = AuthenticatedClient(base_url=base_url, token=access, raise_on_unexpected_status=True)
    expect(me.sync(client=client), MeRead, "me")

    # A unit and a person in it.
    province = expect(
        create_unit.sync(
            client=client, body=OrgUnitCreate(name="Tỉnh Khách", kind=OrgKind.PROVINCE, code=f"CL-{suffix}")
        ),
        OrgUnitRead,
        "create a province",
    )
    school = expect(
        create_unit.sync(
            client=client,
            body=OrgUnitCreate(
                name="Trường Khách", kind=OrgKind.SCHOOL, parent_id=province.id, code=f"CL-{suffix}-S"
            ),
        ),
        OrgUnitRead,
        "create a school",
    )
    person = expect(
        create_person.sync(
            client=client,
            body=PersonCreate(full_name="Lê Thị Khách", org_unit_id=school.id, group=Group.STAFF),
        ),
        PersonRead,
        "create a person",
    )

    # Their evaluation: evidence (a multipart upload), a self-assessment, the submission.
    evaluation = expect(
        create_evaluation.sync(client=client, body=EvaluationCreate(year=year, person_id=person.id)),
        EvaluationRead,
        "create an evaluation",
    )
    indicators = [score.indicator_id for score in evaluation.scores]
    evidence = expect(
        upload_evidence.sync(
            evaluation.id,
            client=client,
            body=BodyUploadEvidence(
                file=File(payload=BytesIO(PNG), file_name="minh-chung.png", mime_type="image/png"),
                indicator_id=indicators[0],
            ),
        ),
        EvidenceRead,
        "upload evidence",
    )
    assert (evidence.content_type, evidence.size) == ("image/png", len(PNG)), evidence
    current = expect(get_evaluation.sync(evaluation.id, client=client), EvaluationRead, "read it back")
    assert [e.id for e in current.evidence] == [evidence.id], current.evidence
    scores = [ScoreInput(indicator_id=i, score=8) for i in indicators]
    assessed = expect(
        self_assess.sync(
            evaluation.id, client=client, body=SelfAssessment(scores=scores, version=current.version)
        ),
        EvaluationRead,
        "self-assess",
    )
    submitted = expect(
        submit.sync(evaluation.id, client=client, body=TransitionRequest(version=assessed.version)),
        EvaluationRead,
        "submit",
    )
    assert submitted.status == Status.SUBMITTED, submitted.status

    # A typed error: submitting again with the stale version is a 409 whose details name the current one.
    stale = submit.sync_detailed(
        evaluation.id, client=client, body=TransitionRequest(version=assessed.version)
    )
    assert stale.status_code == 409, stale
    conflict = expect(stale.parsed, ErrorBody, "409 body").error
    assert conflict.code in {"conflict", "invalid_transition"}, conflict
    expect(conflict.details, ErrorDetails, "409 details")

    # Another: an id that does not exist is a 404 with the common body.
    missing = get_unit.sync_detailed(2**31 - 1, client=client)
    assert missing.status_code == 404, missing
    assert expect(missing.parsed, ErrorBody, "404 body").error.code == "not_found"

    # And a malformed request: the 422 details are ValidationIssues naming the field.
    bad = create_unit.sync_detailed(client=client, body=OrgUnitCreate(name=" ", kind=OrgKind.VILLAGE))
    assert bad.status_code == 422, bad
    details = expect(bad.parsed, ErrorBody, "422 body").error.details
    assert isinstance(details, list) and all(isinstance(d, ValidationIssue) for d in details), details

    # A CSV import, checked only (dry run): nothing is written.
    csv = f"full_name,unit_code,group\nNguyễn Văn Nhập,{school.code},resident\n".encode()
    summary = expect(
        import_people.sync(
            client=client,
            body=BodyImportPeople(
                file=File(payload=BytesIO(csv), file_name="nguoi.csv", mime_type="text/csv")
            ),
            dry_run=True,
        ),
        ImportSummary,
        "import people (dry run)",
    )
    assert (summary.dry_run, summary.created, summary.error_count) == (True, 1, 0), summary

    # The school's annual report, submitted, then downloaded as the XLSX that was sent up.
    submission = expect(
        submit_report.sync(client=client, body=SubmissionCreate(org_unit_id=school.id, year=year)),
        SubmissionDetail,
        "submit the annual report",
    )
    workbook = expect(submission_file.sync(submission.id, client=client), File, "the report's XLSX")
    assert workbook.payload.read().startswith(XLSX_MAGIC), "not an XLSX file"
    print(f"python client tour: ok (evaluation {evaluation.id}, submission {submission.id})")


if __name__ == "__main__":
    main(*sys.argv[1:4])
