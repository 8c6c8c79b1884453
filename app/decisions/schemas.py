"""Recognition decision bodies: signing (Create), revoking (Revoke) and reading one (Read)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import Field

from app.core.schemas import Id, ReadModel, ShortText, StrictModel
from app.evaluations.schemas import Reason, Year


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
