"""Plan and target bodies, and the YAML seed file schema of ``criteria_seeds/plans``.

Bad targets are malformed input (422): an unknown metric, a value outside 0–100, the same (metric, year)
twice, a year outside the plan's period when the period is in the same body.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from app.aggregates import metrics
from app.core.schemas import Id, Name, ReadModel, ShortText, StrictModel, Version
from app.orgs.models import OrgKind

PlanYear = Annotated[int, Field(ge=2000, le=2100)]
PercentIn = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]
# Percentages are exact Decimals inside and plain JSON numbers outside (70.0, 16.67), like scores.
Percent = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]


def _known_metric(code: str) -> str:
    if not metrics.is_known(code):
        raise ValueError(f"unknown metric {code!r}; see GET /api/v1/metrics")
    return code


MetricCode = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_known_metric)]


class TargetIn(StrictModel):
    metric: MetricCode
    year: PlanYear
    value: PercentIn


Targets = Annotated[list[TargetIn], Field(max_length=500)]


def check_targets(targets: list[TargetIn], start_year: int, end_year: int) -> list[dict[str, object]]:
    """The problems of a target list against a plan period: duplicates and years outside it."""
    problems: list[dict[str, object]] = []
    seen: set[tuple[str, int]] = set()
    for index, target in enumerate(targets):
        if (target.metric, target.year) in seen:
            problems.append({"index": index, "reason": f"{target.metric} {target.year} is given twice"})
        seen.add((target.metric, target.year))
        if not start_year <= target.year <= end_year:
            problems.append(
                {"index": index, "reason": f"year {target.year} is outside the plan {start_year}–{end_year}"}
            )
    return problems


class PlanCreate(StrictModel):
    org_unit_id: Id
    title: Name
    document_no: ShortText | None = None
    issued_on: date | None = None
    start_year: PlanYear
    end_year: PlanYear
    parent_plan_id: Id | None = None
    targets: Targets = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> PlanCreate:
        if self.start_year > self.end_year:
            raise ValueError("start_year must not be after end_year")
        problems = check_targets(self.targets, self.start_year, self.end_year)
        if problems:
            raise ValueError("; ".join(str(p["reason"]) for p in problems))
        return self


class PlanUpdate(StrictModel):
    title: Name | None = None
    document_no: ShortText | None = None
    issued_on: date | None = None
    start_year: PlanYear | None = None
    end_year: PlanYear | None = None
    parent_plan_id: Id | None = None
    version: Version | None = None


class TargetsReplace(StrictModel):
    """The plan's whole target list; the version is required (here or in ``If-Match``)."""

    version: Version | None = None
    targets: Targets


class TargetRead(ReadModel):
    metric: str
    year: int
    value: Percent


class PlanRead(ReadModel):
    id: int
    org_unit_id: int
    title: str
    document_no: str | None
    issued_on: date | None
    start_year: int
    end_year: int
    parent_plan_id: int | None
    key: str | None
    version: int
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    targets: list[TargetRead]


# --- the YAML seed file schema (criteria_seeds/plans/*.yaml) ----------------------------------------


class _SeedModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class SeedTarget(_SeedModel):
    metric: MetricCode
    year: PlanYear
    value: PercentIn


class SeedDeadline(_SeedModel):
    """A reporting deadline a plan states (``criteria_seeds/plans``): who sets it (``self``: the plan's unit,
    for its children or the units of ``kind`` below it; ``parent``: the unit above, for units of the plan
    unit's ``kind``), and the day, ``MM-DD`` of the year reported or of the next one."""

    setter: Literal["self", "parent"]
    kind: OrgKind | None = None
    due: Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    next_year: bool = False

    def due_on(self, year: int) -> date:
        month, day = (int(part) for part in self.due.split("-"))
        return date(year + self.next_year, month, day)


class SeedPlan(_SeedModel):
    key: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    org_unit_code: Annotated[str, Field(min_length=1, max_length=64)]
    parent_key: Annotated[str, Field(min_length=1, max_length=100)] | None
    title: Annotated[str, Field(min_length=1, max_length=500)]
    document_no: Annotated[str, Field(min_length=1, max_length=64)] | None
    issued_on: date | None
    start_year: PlanYear
    end_year: PlanYear
    targets: Annotated[list[SeedTarget], Field(max_length=500)]
    reporting: Annotated[list[SeedDeadline], Field(max_length=20)] = []

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-field problems, each with the location of the field to blame (the loader turns it into
        a line number)."""
        found: list[tuple[tuple[str | int, ...], str]] = []
        if self.start_year > self.end_year:
            found.append((("start_year",), "start_year must not be after end_year"))
        if self.parent_key == self.key:
            found.append((("parent_key",), "a plan cannot be its own parent"))
        for index, deadline in enumerate(self.reporting):
            try:
                deadline.due_on(2024)  # a leap year: 02-29 is a day
            except ValueError:
                found.append((("reporting", index), f"{deadline.due} is not a day of the year"))
        as_input = [TargetIn(metric=t.metric, year=t.year, value=t.value) for t in self.targets]
        for problem in check_targets(as_input, self.start_year, self.end_year):
            index = int(str(problem["index"]))
            found.append((("targets", index), str(problem["reason"])))
        return found
