"""Org unit request and response bodies."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from app.core.schemas import Code, Id, Name, ReadModel, StrictModel, Version
from app.orgs.models import OrgKind


class OrgUnitCreate(StrictModel):
    name: Name
    kind: OrgKind
    parent_id: Id | None = None
    code: Code | None = None
    valid_from: date | None = Field(
        default=None,
        description="First day the unit exists, today or earlier (default null: it always existed — an "
        "organisation being registered). Give it for a unit that is new, so past years do not count it.",
    )


class OrgUnitUpdate(StrictModel):
    name: Name | None = None
    kind: OrgKind | None = None
    code: Code | None = None
    version: Version | None = None


class OrgUnitMove(StrictModel):
    parent_id: Id
    version: Version | None = None


class OrgUnitRead(ReadModel):
    """A unit as it stood on the day asked (``parent_id`` then; an ended unit: on its last day)."""

    id: int
    name: str
    kind: OrgKind
    parent_id: int | None
    code: str | None
    depth: int
    valid_from: date | None = Field(description="First day the unit existed (null: always existed).")
    valid_to: date | None = Field(description="Last day the unit existed (null: it still exists).")
    predecessor_ids: list[int] = Field(default_factory=list, description="Units merged or dissolved into it.")
    successor_ids: list[int] = Field(
        default_factory=list, description="Units it was merged or dissolved into."
    )
    version: int
    created_at: datetime
    updated_at: datetime
