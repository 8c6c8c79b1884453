"""Evaluation bodies (and the ``Year`` and ``Reason`` fields the decisions' bodies share)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from app.core.schemas import Id, LongText, ReadModel, StrictModel, Version, multiline_text
from app.evaluations.models import DigitalLevel, Status, Title

Year = Annotated[int, Field(ge=2000, le=2100)]


# Why an evaluation is returned or a decision revoked: the person reads it, so it cannot be blank.
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    AfterValidator(multiline_text),
]
Description = Annotated[str, StringConstraints(max_length=1000), AfterValidator(multiline_text)]
ScoreValue = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=1)]


_SUBJECT_FIELD = {
    Title.LEARNING_CITIZEN: "person_id",
    Title.LEARNING_FAMILY: "household_id",
    Title.LEARNING_CLAN: "clan_id",
    Title.LEARNING_COMMUNITY: "org_unit_id",
    Title.LEARNING_UNIT: "org_unit_id",
}


class EvaluationCreate(StrictModel):
    """A personal evaluation ``{"person_id", "year"}``, or a collective one: ``{"title", "household_id" |
    "clan_id" | "org_unit_id", "year"}`` (a learning family names a household, a learning clan a clan, a
    learning community a village, a learning unit an agency, school or enterprise)."""

    title: Title = Title.LEARNING_CITIZEN
    person_id: Id | None = None
    household_id: Id | None = None
    clan_id: Id | None = None
    org_unit_id: Id | None = None
    year: Year

    @model_validator(mode="after")
    def _one_subject(self) -> EvaluationCreate:
        wanted = _SUBJECT_FIELD[self.title]
        given = [f for f in set(_SUBJECT_FIELD.values()) if getattr(self, f) is not None]
        if given != [wanted]:
            raise ValueError(
                f"a {self.title.value} evaluation names its subject by {wanted} (and nothing else)"
            )
        return self

    @property
    def subject_id(self) -> int:
        value = getattr(self, _SUBJECT_FIELD[self.title])
        assert isinstance(value, int)
        return value


class ScoreInput(StrictModel):
    indicator_id: Id
    score: ScoreValue
    note: LongText | None = None


class SelfAssessment(StrictModel):
    version: Version | None = None
    scores: Annotated[list[ScoreInput], Field(min_length=1, max_length=100)]
    digital_level: DigitalLevel | None = Field(
        default=None,
        description="The person's own digital level (personal titles only); backed by evidence on the "
        "set's digital indicator.",
    )


class Review(StrictModel):
    version: Version | None = None
    scores: Annotated[list[ScoreInput], Field(max_length=100)] = Field(default_factory=list)
    digital_level: DigitalLevel | None = Field(
        default=None,
        description="The assessor's confirmation or change of the declared digital level (personal titles).",
    )
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
    digital_level: DigitalLevel | None = Field(
        description="The digital level that counts (personal titles; null for collective ones)."
    )
    level: str | None = Field(default=None, description="The grade, where the title is graded (e.g. tot).")


class Subject(ReadModel):
    """Who or what is evaluated: ``person_id`` for the personal title, else ``household_id``, ``clan_id``
    or (learning communities and units) ``org_unit_id`` itself."""

    title: Title
    person_id: int | None
    household_id: int | None = None
    clan_id: int | None = None


class EvaluationRead(Subject):
    id: int
    org_unit_id: int
    year: int
    criteria_set_id: int
    status: Status
    version: int
    scores: list[ScoreRead]
    evidence: list[EvidenceRead]
    declared_digital_level: DigitalLevel | None
    reviewed_digital_level: DigitalLevel | None
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


class EvaluationSummary(Subject):
    id: int
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
