"""Evaluation and evidence endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, File, Form, Query, Request, Response, UploadFile, status
from fastapi.responses import FileResponse

from app.auth.deps import CurrentSubject
from app.core.db import DbSession
from app.core.deps import AppSettings
from app.core.pagination import Page, Pagination, page_json
from app.core.routing import ScopedRouter
from app.core.schemas import MAX_ID, IdPath, if_match
from app.evaluations import evidence, reads, review, service
from app.evaluations.models import Status, Title
from app.evaluations.schemas import (
    Description,
    EvaluationCreate,
    EvaluationRead,
    EvaluationSummary,
    EvidenceRead,
    HistoryEntry,
    ReturnRequest,
    Review,
    SelfAssessment,
    TransitionRequest,
)
from app.evaluations.storage import EvidenceStore, named_for_type

router = ScopedRouter(tags=["evaluations"])
IfMatch = Annotated[int | None, Depends(if_match)]


async def evidence_store(request: Request) -> EvidenceStore:
    store: EvidenceStore = request.app.state.evidence_store  # set by app.main.create_app
    return store


Store = Annotated[EvidenceStore, Depends(evidence_store)]


def _version(body: TransitionRequest | None, header: int | None) -> int | None:
    return header if body is None or body.version is None else body.version


@router.post("/evaluations", status_code=status.HTTP_201_CREATED, response_model=EvaluationRead)
async def create_evaluation(
    body: EvaluationCreate, subject: CurrentSubject, session: DbSession
) -> EvaluationRead:
    """Open the year's evaluation of a person (the person, or an org_admin for them), or of a household,
    clan, village or learning unit (``title``, with ``household_id``, ``clan_id`` or ``org_unit_id``): one
    per subject and year."""
    return await service.create(session, subject, body)


@router.get("/evaluations", response_model=Page[EvaluationSummary])
async def list_evaluations(
    subject: CurrentSubject,
    session: DbSession,
    page: Pagination,
    org_unit_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    status: Status | None = None,
    person_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    title: Title | None = None,
) -> Response:
    items, total = await reads.list_evaluations(
        session,
        subject,
        page,
        org_unit_id=org_unit_id,
        year=year,
        status=status,
        person_id=person_id,
        title=title,
    )
    # Written as JSON without validating each summary again (core/pagination.page_json).
    return page_json([reads.summary_of(e) for e in items], total, page)


@router.get("/evaluations/{evaluation_id}", response_model=EvaluationRead)
async def get_evaluation(
    evaluation_id: IdPath, subject: CurrentSubject, session: DbSession
) -> EvaluationRead:
    return await reads.get(session, subject, evaluation_id)


@router.get("/evaluations/{evaluation_id}/history", response_model=list[HistoryEntry])
async def evaluation_history(
    evaluation_id: IdPath, subject: CurrentSubject, session: DbSession
) -> list[HistoryEntry]:
    """Every change: scores, uploads, rejections, transitions and decisions, with who, when, before, after."""
    return await reads.history(session, subject, evaluation_id)


@router.put("/evaluations/{evaluation_id}/self-assessment", response_model=EvaluationRead)
async def self_assess(
    evaluation_id: IdPath,
    body: SelfAssessment,
    subject: CurrentSubject,
    session: DbSession,
    expected: IfMatch,
) -> EvaluationRead:
    """Save self scores (0..max in steps of 0.5) while the evaluation is draft or returned."""
    return await service.self_assess(session, subject, evaluation_id, body, expected)


@router.post("/evaluations/{evaluation_id}/submit", response_model=EvaluationRead)
async def submit(
    evaluation_id: IdPath,
    subject: CurrentSubject,
    session: DbSession,
    expected: IfMatch,
    body: TransitionRequest | None = None,
) -> EvaluationRead:
    return await service.submit(session, subject, evaluation_id, _version(body, expected))


@router.post("/evaluations/{evaluation_id}/withdraw", response_model=EvaluationRead)
async def withdraw(
    evaluation_id: IdPath,
    subject: CurrentSubject,
    session: DbSession,
    expected: IfMatch,
    body: TransitionRequest | None = None,
) -> EvaluationRead:
    """The person withdraws before review (draft, submitted or returned → withdrawn)."""
    return await service.person_transition(
        session, subject, evaluation_id, "withdraw", _version(body, expected)
    )


@router.post("/evaluations/{evaluation_id}/reopen", response_model=EvaluationRead)
async def reopen(
    evaluation_id: IdPath,
    subject: CurrentSubject,
    session: DbSession,
    expected: IfMatch,
    body: TransitionRequest | None = None,
) -> EvaluationRead:
    """A withdrawn evaluation goes back to draft."""
    return await service.person_transition(
        session, subject, evaluation_id, "reopen", _version(body, expected)
    )


# ``name`` keeps the operationId ``review`` that generated clients call (the function's own name is
# taken by the module ``review``).
@router.put("/evaluations/{evaluation_id}/review", response_model=EvaluationRead, name="review")
async def review_evaluation(
    evaluation_id: IdPath, body: Review, subject: CurrentSubject, session: DbSession, expected: IfMatch
) -> EvaluationRead:
    """Assessor's scores and evidence rejections (submitted or in_review → in_review)."""
    return await review.review(session, subject, evaluation_id, body, expected)


@router.post("/evaluations/{evaluation_id}/return", response_model=EvaluationRead)
async def return_evaluation(
    evaluation_id: IdPath, body: ReturnRequest, subject: CurrentSubject, session: DbSession, expected: IfMatch
) -> EvaluationRead:
    return await review.return_to_person(
        session, subject, evaluation_id, body.reason, body.version if body.version is not None else expected
    )


@router.post("/evaluations/{evaluation_id}/complete-review", response_model=EvaluationRead)
async def complete_review(
    evaluation_id: IdPath,
    subject: CurrentSubject,
    session: DbSession,
    expected: IfMatch,
    body: TransitionRequest | None = None,
) -> EvaluationRead:
    """Close the review and fill ``result`` (total, passed, failing indicators, digital level)."""
    return await review.complete_review(session, subject, evaluation_id, _version(body, expected))


@router.post(
    "/evaluations/{evaluation_id}/evidence", status_code=status.HTTP_201_CREATED, response_model=EvidenceRead
)
async def upload_evidence(
    evaluation_id: IdPath,
    subject: CurrentSubject,
    session: DbSession,
    store: Store,
    settings: AppSettings,
    file: Annotated[UploadFile, File(description="PDF, JPEG, PNG, WebP, DOCX, XLSX or ODT")],
    indicator_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    description: Annotated[Description | None, Form()] = None,
) -> EvidenceRead:
    return await evidence.upload(
        session, subject, store, settings.max_evidence_bytes, evaluation_id, indicator_id, file, description
    )


@router.get("/evidence/{evidence_id}/content", response_class=FileResponse)
async def evidence_content(
    evidence_id: IdPath, subject: CurrentSubject, session: DbSession, store: Store
) -> FileResponse:
    found, path = await evidence.content(session, subject, store, evidence_id)
    return FileResponse(
        path,
        media_type=found.content_type,
        # Rows stored before names followed the content keep a misleading extension: served renamed.
        filename=named_for_type(found.filename, found.content_type),
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"},
    )


@router.delete("/evidence/{evidence_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_evidence(
    evidence_id: IdPath, subject: CurrentSubject, session: DbSession, store: Store
) -> Response:
    await evidence.delete(session, subject, store, evidence_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
