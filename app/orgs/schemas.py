"""Org unit request and response bodies."""

from __future__ import annotations

from datetime import date, datetime

from app.core.schemas import Code, Id, Name, ReadModel, StrictModel, Version
from app.orgs.models import OrgKind


class OrgUnitCreate(StrictModel):
    name: Name
    kind: OrgKind
    parent_id: Id | None = None
    code: Code | None = None


class OrgUnitUpdate(StrictModel):
    name: Name | None = None
    kind: OrgKind | None = None
    code: Code | None = None
    dissolved_on: date | None = None
    version: Version | None = None


class OrgUnitMove(StrictModel):
    parent_id: Id
    version: Version | None = None


class OrgUnitRead(ReadModel):
    id: int
    name: str
    kind: OrgKind
    parent_id: int | None
    code: str | None
    depth: int
    dissolved_on: date | None
    version: int
    created_at: datetime
    updated_at: datetime
