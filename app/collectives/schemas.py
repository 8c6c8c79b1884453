"""Household and clan bodies. Members (people of a household, households of a clan) are sent as the
whole set of today; they read back as today's set and every dated period."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from app.core.dates import today
from app.core.schemas import Code, Id, Name, ReadModel, StrictModel, Version

FIRST_DAY = date(2000, 1, 1)
MAX_MEMBERS = 200  # people in one household
MAX_HOUSEHOLDS = 2000  # households in one clan


def _distinct(ids: list[int]) -> list[int]:
    if len(set(ids)) != len(ids):
        raise ValueError("an id is listed twice")
    return ids


def _plausible(day: date) -> date:
    if day < FIRST_DAY:
        raise ValueError(f"must not be before {FIRST_DAY.isoformat()}")
    if day > today():
        raise ValueError("must not be in the future")
    return day


MemberIds = Annotated[list[Id], Field(max_length=MAX_MEMBERS), AfterValidator(_distinct)]
HouseholdIds = Annotated[list[Id], Field(max_length=MAX_HOUSEHOLDS), AfterValidator(_distinct)]
EffectiveOn = Annotated[
    date,
    AfterValidator(_plausible),
    Field(description="Today or earlier, not before 2000-01-01."),
]


class HouseholdCreate(StrictModel):
    """Hộ gia đình: placed at ``org_unit_id``, with its members, from ``effective_on`` (default: 1 January
    of this year, as a person's registration: a past year's numbers do not move for it)."""

    name: Name
    org_unit_id: Id
    code: Code | None = None
    member_ids: MemberIds
    effective_on: EffectiveOn | None = None


class CollectiveUpdate(StrictModel):
    name: Name | None = None
    code: Code | None = None
    version: Version | None = None


class MembersReplace(StrictModel):
    """Today's members, as a whole: those left out leave on the day before ``effective_on``, those added
    join on it (default: today). Not before the household's last change of members."""

    member_ids: MemberIds
    effective_on: EffectiveOn | None = None
    version: Version | None = None


class ClanCreate(StrictModel):
    """Dòng họ: placed at ``org_unit_id``, with its households, from ``effective_on`` (default: 1 January
    of this year)."""

    name: Name
    org_unit_id: Id
    code: Code | None = None
    household_ids: HouseholdIds
    effective_on: EffectiveOn | None = None


class HouseholdsReplace(StrictModel):
    """Today's households of the clan, as a whole (as ``PUT /households/{id}/members``)."""

    household_ids: HouseholdIds
    effective_on: EffectiveOn | None = None
    version: Version | None = None


class MemberPeriod(ReadModel):
    person_id: int
    valid_from: date | None
    valid_to: date | None


class HouseholdPeriod(ReadModel):
    household_id: int
    valid_from: date | None
    valid_to: date | None


class _CollectiveRead(ReadModel):
    id: int
    code: str | None
    name: str
    org_unit_id: int = Field(description="Where it is placed today.")
    valid_from: date | None
    valid_to: date | None
    version: int
    created_at: datetime
    updated_at: datetime


class HouseholdRead(_CollectiveRead):
    member_ids: list[int] = Field(description="Today's members.")
    members: list[MemberPeriod] = Field(description="Every period of membership, oldest first.")
    clan_id: int | None = Field(description="The clan the household belongs to today.")


class ClanRead(_CollectiveRead):
    household_ids: list[int] = Field(description="Today's households.")
    households: list[HouseholdPeriod] = Field(description="Every period, oldest first.")
