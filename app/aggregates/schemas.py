"""Aggregate and metric bodies. Percentages are exact Decimals rounded half up to 2 decimals, served as
JSON numbers."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from app.plans.schemas import Percent


class Basis(StrEnum):
    """How a year is read: on the tree as it was that year, or re-based on today's units (a unit's
    years before it existed, or before it took over its predecessors, count its predecessors)."""

    AS_WAS = "as_was"
    LINEAGE = "lineage"


class ProgressStatus(StrEnum):
    MET = "met"
    BEHIND = "behind"
    NO_TARGET = "no_target"
    NO_DATA = "no_data"


class MetricRead(BaseModel):
    """One metric of the registry (``criteria_seeds/metrics.yaml``), with its definition in English and
    Vietnamese."""

    code: str
    subject: str
    title: str
    title_vi: str
    numerator: str
    numerator_vi: str
    denominator: str
    denominator_vi: str
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
    basis: Basis
    plan_id: int | None
    metrics: list[MetricProgress]


class BreakdownRow(MetricProgress, _UnitKey):
    pass


class Breakdown(BaseModel):
    org_unit_id: int
    year: int
    metric: str
    basis: Basis
    items: list[BreakdownRow]


class TrendRow(Measure, _YearKey):
    pass


class Trend(BaseModel):
    org_unit_id: int
    metric: str
    from_year: int
    to_year: int
    basis: Basis
    items: list[TrendRow]
