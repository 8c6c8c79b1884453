"""The scoring and recognition rules of DOMAIN.md §5, as pure functions over half-points.

- effective score = review score when given, else self score (none yet counts 0);
- **0 when the indicator has no evidence that was not rejected** ("không có minh chứng phù hợp");
- recognised when total ≥ pass_total and every indicator ≥ min_indicator (both from the criteria set);
- digital level: every indicator marked ``digital`` ≥ the set's proficient threshold → proficient,
  ≥ basic → basic, else none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from app.evaluations.models import DigitalLevel


@dataclass(frozen=True)
class IndicatorRule:
    indicator_id: int
    number: int
    max_halves: int
    digital: bool


@dataclass(frozen=True)
class SetRule:
    pass_total: int
    min_indicator: int
    digital_basic_halves: int
    digital_proficient_halves: int


@dataclass(frozen=True)
class Outcome:
    total_halves: int
    passed: bool
    failing_indicators: list[int]
    digital_level: DigitalLevel
    effective_halves: dict[int, int]


def to_halves(points: Decimal | float | int) -> int | None:
    """Points → half-points, or None when not a multiple of 0.5."""
    doubled = Decimal(str(points)) * 2
    return int(doubled) if doubled == doubled.to_integral_value() else None


def to_points(halves: int | None) -> float | None:
    return None if halves is None else halves / 2


def effective_halves(self_halves: int | None, review_halves: int | None, has_evidence: bool) -> int:
    if not has_evidence:
        return 0
    chosen = review_halves if review_halves is not None else self_halves
    return chosen or 0


def evaluate(
    rules: SetRule,
    indicators: Iterable[IndicatorRule],
    scores: Mapping[int, tuple[int | None, int | None]],
    indicators_with_evidence: set[int],
) -> Outcome:
    """``scores`` maps indicator id → (self, review) half-points; ``indicators_with_evidence`` holds the
    indicator ids that have at least one piece of evidence that was not rejected."""
    indicators = sorted(indicators, key=lambda i: i.number)
    effective = {
        i.indicator_id: effective_halves(
            *scores.get(i.indicator_id, (None, None)), i.indicator_id in indicators_with_evidence
        )
        for i in indicators
    }
    total = sum(effective.values())
    failing = [i.number for i in indicators if effective[i.indicator_id] < rules.min_indicator * 2]
    passed = total >= rules.pass_total * 2 and not failing
    digital_scores = [effective[i.indicator_id] for i in indicators if i.digital]
    if digital_scores and min(digital_scores) >= rules.digital_proficient_halves:
        level = DigitalLevel.PROFICIENT
    elif digital_scores and min(digital_scores) >= rules.digital_basic_halves:
        level = DigitalLevel.BASIC
    else:
        level = DigitalLevel.NONE
    return Outcome(
        total_halves=total,
        passed=passed,
        failing_indicators=failing,
        digital_level=level,
        effective_halves=effective,
    )
