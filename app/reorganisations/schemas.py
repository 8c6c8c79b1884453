"""Reorganisation bodies: the steps (a tagged union on ``op``) and what applying them did."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from app.core.schemas import Code, Id, Name, ReadModel, ShortText, StrictModel
from app.orgs.models import OrgKind

Ref = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# A unit already in the database (its id) or one created by an earlier step of the same request (its ref).
Target = Id | Ref


class CreateStep(StrictModel):
    op: Literal["create"]
    ref: Ref
    name: Name
    kind: OrgKind
    code: Code | None = None
    parent: Target


class MoveStep(StrictModel):
    op: Literal["move"]
    unit: Target
    parent: Target


class MergeStep(StrictModel):
    op: Literal["merge"]
    units: list[Target] = Field(min_length=1, max_length=1000)
    into: Target


class DissolveStep(StrictModel):
    op: Literal["dissolve"]
    unit: Target
    into: Target


class RenameStep(StrictModel):
    op: Literal["rename"]
    unit: Target
    name: Name | None = None
    code: Code | None = None


Step = Annotated[CreateStep | MoveStep | MergeStep | DissolveStep | RenameStep, Field(discriminator="op")]


class ReorganisationCreate(StrictModel):
    """Sắp xếp tổ chức: steps applied in order, all or nothing, effective today or on a past day."""

    effective_on: date
    title: Name
    document_no: ShortText | None = None
    dry_run: bool = False
    steps: list[Step] = Field(min_length=1, max_length=20000)


class Summary(StrictModel):
    units_created: int = 0
    units_moved: int = 0
    units_ended: int = 0
    people_moved: int = 0
    roles_moved: int = 0


class ReorganisationRead(ReadModel):
    id: int | None = Field(description="None for a dry run (nothing was kept).")
    effective_on: date
    title: str
    document_no: str | None
    dry_run: bool
    org_unit_id: int | None = Field(description="The nearest unit covering every unit the steps named.")
    summary: Summary
    created: dict[str, int | None] = Field(description="The id of each created ref (None in a dry run).")
    created_by: int | None = None
    created_at: datetime | None = None
