"""Person bodies. ``citizen_id`` goes in whole and comes out masked."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator, model_validator

from app.core.schemas import Id, Name, ReadModel, StrictModel, Version
from app.people.models import Gender, Group, Person

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
    member_since: date | None = Field(
        default=None,
        description="First day the person belonged to the unit (default: 1 January of the current year, so "
        "registering people never changes a past year's numbers). Years before it do not count them, and "
        "cannot be evaluated for them.",
    )


class PersonUpdate(StrictModel):
    full_name: Name | None = None
    group: Group | None = None
    member_since: date | None = Field(
        default=None,
        description="Correct the first day the person belonged (their first placement's start): years from "
        "it on count them. Not after their first transfer, nor in the future.",
    )
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

    @model_validator(mode="before")
    @classmethod
    def _shown(cls, value: Any) -> Any:
        # A record claiming an id (``people.claims``) shows it as its own.
        if isinstance(value, Person):
            return {**{f: getattr(value, f) for f in cls.model_fields}, "citizen_id": value.shown_citizen_id}
        return value

    @field_validator("citizen_id")
    @classmethod
    def _mask(cls, value: str | None) -> str | None:
        return mask_citizen_id(value)


class TransferCreate(StrictModel):
    """Điều chuyển: a new unit and/or group from ``effective_on`` (today or in the past)."""

    effective_on: date
    org_unit_id: Id | None = None
    group: Group | None = None


class TransferRead(ReadModel):
    id: int
    person_id: int
    effective_on: date
    from_unit_id: int
    to_unit_id: int
    from_group: Group
    to_group: Group
    reorganisation_id: int | None
    created_by: int | None
    created_at: datetime


class CitizenIdClaimRead(ReadModel):
    """Two records that name the same citizen id: ``claimant`` was registered with it by someone who could
    not edit ``holder`` (see ``GET /people/citizen-id-claims``)."""

    claimant: PersonRead
    holder: PersonRead


class CitizenIdClaimResolve(StrictModel):
    same_person: bool = Field(
        description="true: one person — the holder's record moves to the claimant's unit and group and the "
        "claimant's record is removed; false: the claim is dropped (the claimant keeps no citizen id)."
    )
