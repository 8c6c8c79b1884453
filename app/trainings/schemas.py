"""Training session bodies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from app.core.schemas import Id, Name, ReadModel, StrictModel, Version


def _distinct(ids: list[int]) -> list[int]:
    if len(set(ids)) != len(ids):
        raise ValueError("a person is listed twice")
    return ids


def _plausible(day: date) -> date:
    if not 2000 <= day.year <= 2100:
        raise ValueError("must be between 2000 and 2100")
    return day


AttendeeIds = Annotated[list[Id], Field(max_length=5000), AfterValidator(_distinct)]
HeldOn = Annotated[date, AfterValidator(_plausible)]


class TrainingSessionCreate(StrictModel):
    org_unit_id: Id
    title: Name
    held_on: HeldOn
    attendee_ids: AttendeeIds = Field(default_factory=list)


class AttendeesReplace(StrictModel):
    """Everyone who attended (replaces the list); people of the session's unit subtree."""

    version: Version | None = None
    attendee_ids: AttendeeIds


class TrainingSessionRead(ReadModel):
    id: int
    org_unit_id: int
    title: str
    held_on: date
    year: int
    version: int
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    attendee_count: int
    attendee_ids: list[int]
