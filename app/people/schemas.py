"""Person bodies. ``citizen_id`` goes in whole and comes out masked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from app.core.schemas import Id, Name, ReadModel, StrictModel, Version
from app.people.models import Gender, Group

CitizenId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{9,12}$")]
BirthYear = Annotated[int, Field(ge=1900, le=2100)]


def mask_citizen_id(value: str | None) -> str | None:
    if not value:
        return None
    return "*" * (len(value) - 4) + value[-4:]


class PersonCreate(StrictModel):
    full_name: Name
    org_unit_id: Id
    group: Group
    birth_year: BirthYear | None = None
    gender: Gender | None = None
    citizen_id: CitizenId | None = None
    user_id: Id | None = None


class PersonUpdate(StrictModel):
    full_name: Name | None = None
    group: Group | None = None
    birth_year: BirthYear | None = None
    gender: Gender | None = None
    citizen_id: CitizenId | None = None
    version: Version | None = None


class PersonRead(ReadModel):
    id: int
    full_name: str
    org_unit_id: int
    group: Group
    birth_year: int | None
    gender: Gender | None
    user_id: int | None
    version: int
    created_at: datetime
    updated_at: datetime
    citizen_id: str | None = Field(default=None, description="Masked: only the last four digits are shown.")

    @field_validator("citizen_id")
    @classmethod
    def _mask(cls, value: str | None) -> str | None:
        return mask_citizen_id(value)
