"""Criteria set bodies: the API's read shape, the variant request, and the YAML seed file schema."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.schemas import Code, Id, Name, ReadModel, StrictModel
from app.evaluations.models import Title
from app.people.models import Group

Points = Annotated[Decimal, Field(ge=0, le=100, multiple_of=Decimal("0.5"))]


class IndicatorRead(ReadModel):
    id: int
    number: int
    title: str
    max_points: int
    evidence_hint: str | None
    digital: bool


class CriterionRead(ReadModel):
    number: int
    title: str
    indicators: list[IndicatorRead]


class DigitalThresholds(BaseModel):
    basic: float
    proficient: float


class GradeRead(BaseModel):
    code: str
    title: str
    min_total: int


class CriteriaSetSummary(ReadModel):
    id: int
    code: str
    title: str
    recognises: Title
    group: Group | None
    version: int
    status: str
    org_unit_id: int | None
    parent_id: int | None
    frozen: bool
    needs_verification: bool
    created_at: datetime


class CriteriaSetRead(CriteriaSetSummary):
    source: str | None
    max_total: int
    pass_total: int
    min_indicator: int
    digital_thresholds: DigitalThresholds | None = Field(
        description="Score floors a confirmed digital level needs on the digital indicators, if any."
    )
    grades: list[GradeRead] | None = Field(description="Grades of a graded result, highest first.")
    criteria: list[CriterionRead]


class Substitution(StrictModel):
    """Replace indicator ``number`` of the parent by indicator ``source_number`` of ``source_set_id``."""

    number: Annotated[int, Field(ge=1, le=100)]
    source_set_id: Id
    source_number: Annotated[int | None, Field(ge=1, le=100)] = None


class CriteriaVariantCreate(StrictModel):
    """A local variant (e.g. MN Tam Hưng A: set IV with indicators 6 and 7 from set I)."""

    parent_id: Id
    org_unit_id: Id
    code: Code
    title: Name
    substitutions: Annotated[list[Substitution], Field(min_length=1, max_length=100)]


# --- the YAML seed file schema (criteria_seeds/criteria/*.yaml) -------------------------------------


class _SeedModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class SeedIndicator(_SeedModel):
    number: Annotated[int, Field(ge=1, le=100)]
    title: Annotated[str, Field(min_length=1)]
    max_points: Annotated[int, Field(gt=0, le=100)]
    evidence_hint: str | None = None
    digital: bool = False


class SeedCriterion(_SeedModel):
    number: Annotated[int, Field(ge=1, le=20)]
    title: Annotated[str, Field(min_length=1)]
    indicators: Annotated[list[SeedIndicator], Field(min_length=1)]


class SeedThresholds(_SeedModel):
    basic: Points
    proficient: Points


class SeedGrade(_SeedModel):
    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,29}$")]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    min_total: Annotated[int, Field(ge=0)]


class SeedCriteriaSet(_SeedModel):
    code: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[int, Field(ge=1)]
    title: Annotated[str, Field(min_length=1, max_length=500)]
    recognises: Title = Title.LEARNING_CITIZEN
    group: Group | None
    source: Annotated[str, Field(min_length=1)]
    needs_verification: bool
    max_total: Annotated[int, Field(gt=0)]
    pass_total: Annotated[int, Field(gt=0)]
    min_indicator: Annotated[int, Field(ge=0)]
    # Optional score floors for a confirmed digital level; the level itself is declared and confirmed.
    digital_thresholds: SeedThresholds | None = None
    grades: Annotated[list[SeedGrade], Field(min_length=1)] | None = None
    criteria: Annotated[list[SeedCriterion], Field(min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> SeedCriteriaSet:
        indicators = [i for c in self.criteria for i in c.indicators]
        numbers = [i.number for i in indicators]
        if len(set(numbers)) != len(numbers):
            raise ValueError("indicator numbers must be unique within the set")
        if len({c.number for c in self.criteria}) != len(self.criteria):
            raise ValueError("criterion numbers must be unique within the set")
        total = sum(i.max_points for i in indicators)
        if total != self.max_total:
            raise ValueError(f"indicators' max_points add up to {total}, not max_total {self.max_total}")
        if self.pass_total > self.max_total:
            raise ValueError("pass_total exceeds max_total")
        personal = self.recognises == Title.LEARNING_CITIZEN
        if personal and not any(i.digital for i in indicators):
            raise ValueError(
                "at least one indicator must be marked digital: true (its evidence backs the level)"
            )
        if not personal and (self.group is not None or any(i.digital for i in indicators)):
            raise ValueError("a collective set has no group and no digital indicator")
        if self.digital_thresholds is not None:
            if not personal:
                raise ValueError("digital_thresholds belong to personal sets only")
            if self.digital_thresholds.basic <= self.min_indicator:
                # Every recognised person reaches min_indicator on every indicator: such a threshold would
                # make the digital-skills share 100 % by construction.
                raise ValueError(
                    f"digital_thresholds.basic ({self.digital_thresholds.basic}) must be above min_indicator "
                    f"({self.min_indicator}): at or below it every recognised person would qualify"
                )
            if self.digital_thresholds.basic > self.digital_thresholds.proficient:
                raise ValueError("digital_thresholds.basic must not exceed proficient")
        if self.grades is not None:
            floors = [g.min_total for g in self.grades]
            if floors != sorted(floors, reverse=True) or len(set(floors)) != len(floors):
                raise ValueError("grades are listed highest first, with decreasing min_total")
            if floors[-1] < self.pass_total or floors[0] > self.max_total:
                raise ValueError("every grade's min_total lies between pass_total and max_total")
        return self
