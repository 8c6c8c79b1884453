"""Alert bodies. Percentages are exact Decimals served as JSON numbers, like the aggregates'; ``details``
holds plain JSON (numbers, ISO dates) so the same body can travel in an ``alert.raised`` event."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from app.plans.schemas import Percent


class AlertKind(StrEnum):
    """What an alert is about (the order here is the order of a unit's alerts in a list)."""

    BEHIND_TRAJECTORY = "behind_trajectory"
    REPORT_OVERDUE = "report_overdue"
    REVIEW_WAITING = "review_waiting"


class Alert(BaseModel):
    """Cảnh báo: one computed alert about one unit (and one metric, for ``behind_trajectory``)."""

    kind: AlertKind
    org_unit_id: int
    name: str
    metric: str | None = None
    actual: Percent | None = None
    expected: Percent | None = None
    # behind_trajectory: none; report_overdue: the first day late (a date); review_waiting: the day the
    # oldest waiting evaluation was submitted (a date).
    since: datetime | date | None = None
    details: dict[str, Any]

    @property
    def key(self) -> tuple[str, int, str]:
        """What identifies the alert from one scan to the next (with the year)."""
        return (self.kind.value, self.org_unit_id, self.metric or "")


class AlertPage(BaseModel):
    """The list shape of API.md "Conventions", with the request's parameters echoed."""

    org_unit_id: int
    year: int
    depth: int
    items: list[Alert]
    total: int
    limit: int
    offset: int
