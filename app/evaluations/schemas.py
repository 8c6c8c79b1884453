"""Evaluation and recognition-decision bodies."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from app.core.schemas import Id, LongText, ReadModel, ShortText, StrictModel, Version, multiline_text
from app.evaluations.models import DigitalLevel, Status

Year = Annotated[int, Field(ge=2000, le=2100)]


# Why an evaluation is returned or a decision revoked: the person reads it, so it cannot be blank.
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    AfterValidator(multiline_text),
]
Description = Annotated[str, StringConstraints(max_length=1000), AfterValidator(multiline_text)]
ScoreValue = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=1)]


class EvaluationCreate(StrictModel):
    person_id: Id
    year: Year


class ScoreInput(StrictModel):
    indicator_id: Id
    score: ScoreValue
    note: LongText | None = None


class SelfAssessment(StrictModel):
    version: Version | None = None
    scores: Annotated[list[ScoreInput], Field(min_length=1, max_length=100)]


class Review(StrictModel):
    version: Version | None = None
    scores: Annotated[list[ScoreInput], Field(max_length=100)] = Field(default_factory=list)
    rejected_evidence_ids: Annotated[list[Id], Field(max_length=500)] | None = Field(
        default=None,
        description="The evidence of this evaluation that is unsuitable; any other piece becomes accepted.",
    )


class ReturnRequest(StrictModel):
    version: Version | None = None
    reason: Reason


class TransitionRequest(StrictModel):
    version: Version | None = None


class ScoreRead(ReadModel):
    indicator_id: int
    number: int
    self_score: float | None
    review_score: float | None
    effective_score: float
    note: str | None
    review_note: str | None


class EvidenceRead(ReadModel):
    id: int
    indicator_id: int
    filename: str
    size: int
    sha256: str
    content_type: str
    description: str | None = None
    rejected: bool = False
    created_at: datetime | None = None


class ResultRead(ReadModel):
    total: float
    passed: bool
    failing_indicators: list[int]
    digital_level: DigitalLevel


class EvaluationRead(ReadModel):
    id: int
    person_id: int
    org_unit_id: int
    year: int
    criteria_set_id: int
    status: Status
    version: int
    scores: list[ScoreRead]
    evidence: list[EvidenceRead]
    result: ResultRead | None = Field(description="Filled when the review is completed.")
    running_result: ResultRead = Field(
        description="What the rules give for the scores and evidence as they stand now."
    )
    return_reason: str | None
    decision_id: int | None
    submitted_at: datetime | None
    reviewed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class EvaluationSummary(ReadModel):
    id: int
    person_id: int
    org_unit_id: int
    year: int
    criteria_set_id: int
    status: Status
    version: int
    result: ResultRead | None
    decision_id: int | None
    updated_at: datetime


class HistoryEntry(ReadModel):
    id: int
    at: datetime
    actor_user_id: int | None
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class DecisionCreate(StrictModel):
    org_unit_id: Id
    year: Year
    number: ShortText
    signed_on: date
    evaluation_ids: Annotated[list[Id], Field(min_length=1, max_length=5000)]


class DecisionRevoke(StrictModel):
    reason: Reason


class DecisionRead(ReadModel):
    id: int
    org_unit_id: int
    year: int
    number: str
    signed_on: date
    signed_by: int | None
    status: str
    evaluation_ids: list[int]
    revoked_at: datetime | None
    revoke_reason: str | None
    created_at: datetime
