"""Request and response bodies of the reporting cycle."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.core.schemas import Id, StrictModel, Version, multiline_text
from app.orgs.models import OrgKind
from app.plans.schemas import Percent

Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(multiline_text),
]


class SubmissionCreate(StrictModel):
    org_unit_id: Id
    year: int = Field(ge=2000, le=2100)


class SubmissionReturn(StrictModel):
    reason: Reason = Field(description="Why the report goes back (lý do trả lại).")


class SubmissionRead(BaseModel):
    """A submission without its snapshot (lists)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    org_unit_id: int
    year: int
    version: int
    status: str
    submitted_at: datetime
    submitted_by: int | None
    sha256: str
    reviewed_at: datetime | None
    reviewed_by: int | None
    return_reason: str | None
    changed_since_submission: bool | None = Field(
        default=None,
        description="Whether the live counted numbers now differ from the snapshot's (current version only).",
    )


class SubmissionDetail(SubmissionRead):
    snapshot: dict[str, Any] = Field(description="The annual report JSON as it stood when submitted.")


class CalendarPut(StrictModel):
    due_on: date
    kind: OrgKind | None = Field(
        default=None,
        description="Set the date for every unit of this kind below the unit; omitted: its direct children.",
    )
    version: Version | None = Field(default=None, description="The entry's version when it is replaced.")


class CalendarRead(BaseModel):
    org_unit_id: int
    year: int
    kind: str | None
    due_on: date
    source: str
    version: int
    updated_at: datetime


class CompletenessRow(BaseModel):
    org_unit_id: int
    code: str | None
    name: str
    kind: str
    status: str = Field(description="not_submitted, submitted, accepted or returned.")
    submission_id: int | None
    version: int | None
    submitted_at: datetime | None
    due_on: date | None
    late: bool = Field(description="Submitted after the due date, or not submitted and the date has passed.")
    changed_since_submission: bool | None


class Completeness(BaseModel):
    org_unit_id: int
    year: int
    due_on: date | None = Field(description="The unit's own due date for the year (to the level above).")
    items: list[CompletenessRow]
    expected: int = Field(description="Children listed.")
    submitted: int = Field(description="Children with a current submission not returned.")
    on_time: int = Field(description="Children whose current submission came in by the due date.")
    on_time_pct: Percent | None = Field(description="on_time / children with a due date, in %.")
