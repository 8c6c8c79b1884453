"""Aggregate and metric bodies. Percentages are exact Decimals rounded half up to 2 decimals, served as
JSON numbers."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from app.plans.schemas import Percent


class ProgressStatus(StrEnum):
    MET = "met"
    BEHIND = "behind"
    NO_TARGET = "no_target"
    NO_DATA = "no_data"


class MetricRead(BaseModel):
    code: str
    title: str
    numerator: str
    denominator: str
    unit: str


class Measure(BaseModel):
    numerator: int
    denominator: int
    actual: Percent | None
    target: Percent | None
    target_year: int | None
    plan_id: int | None
    gap: Percent | None
    status: ProgressStatus


# Key fields in mixins listed last among the bases, so that they come first in the JSON (pydantic orders
# fields from the last base to the first).
class _MetricKey(BaseModel):
    metric: str


class _UnitKey(BaseModel):
    org_unit_id: int
    name: str
    kind: str


class _YearKey(BaseModel):
    year: int


class MetricProgress(Measure, _MetricKey):
    pass


class Progress(BaseModel):
    org_unit_id: int
    year: int
    plan_id: int | None
    metrics: list[MetricProgress]


class BreakdownRow(MetricProgress, _UnitKey):
    pass


class Breakdown(BaseModel):
    org_unit_id: int
    year: int
    metric: str
    items: list[BreakdownRow]


class TrendRow(Measure, _YearKey):
    pass


class Trend(BaseModel):
    org_unit_id: int
    metric: str
    from_year: int
    to_year: int
    items: list[TrendRow]
