"""The annual report's body (JSON); the CSV and XLSX forms are laid out from it in ``formats.py``."""

from __future__ import annotations

from pydantic import BaseModel

from app.aggregates.schemas import MetricProgress, ProgressStatus
from app.plans.schemas import Percent


class GroupRow(BaseModel):
    """The funnel of one population group (or ``all``) in one unit's subtree, with the shares that plans
    set targets for."""

    group: str
    registered: int
    self_assessed: int
    submitted: int
    reviewed: int
    passed: int
    recognised: int
    digital_skills: int
    digital_proficient: int
    recognised_pct: Percent | None
    recognised_target: Percent | None
    digital_skills_pct: Percent | None
    digital_skills_target: Percent | None
    digital_proficient_pct: Percent | None
    digital_proficient_target: Percent | None


class CollectiveRow(BaseModel):
    """One collective title in one unit's subtree: its subjects (households, clans, villages, or
    agencies, schools and enterprises) and those recognised that year."""

    title: str
    metric: str
    subjects: int
    recognised: int
    recognised_pct: Percent | None
    target: Percent | None
    status: ProgressStatus


class UnitReport(BaseModel):
    org_unit_id: int
    code: str | None
    name: str
    kind: str
    groups: list[GroupRow]
    collectives: list[CollectiveRow]
    metrics: list[MetricProgress]


class AnnualReport(BaseModel):
    """``total`` is the unit asked for (its whole subtree); ``items`` one per direct child unit."""

    org_unit_id: int
    year: int
    plan_id: int | None
    total: UnitReport
    items: list[UnitReport]
