"""The scoring and recognition rules of DOMAIN.md §5, as pure functions over half-points.

- effective score = review score when given, else self score (none yet counts 0);
- **0 when the indicator has no evidence that was not rejected** ("không có minh chứng phù hợp");
- recognised when total ≥ pass_total and every indicator ≥ min_indicator (both from the criteria set);
- grade (graded collective sets): the highest grade whose ``min_total`` the total reaches;
- digital level (personal sets): declared by the person, confirmed or changed by the assessor — the
  assessor's word when given — independent of passing; a level above ``none`` with no accepted evidence on
  the set's digital indicators counts as ``none``, and where the set names score floors for a level
  (always above ``min_indicator``), a level whose floor the digital indicators do not reach drops to the
  highest one they do.
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
class Grade:
    code: str
    title: str
    min_total: int


@dataclass(frozen=True)
class SetRule:
    pass_total: int
    min_indicator: int
    digital_basic_halves: int | None = None
    digital_proficient_halves: int | None = None
    grades: tuple[Grade, ...] = ()
    personal: bool = True


@dataclass(frozen=True)
class Outcome:
    total_halves: int
    passed: bool
    failing_indicators: list[int]
    digital_level: DigitalLevel | None
    effective_halves: dict[int, int]
    grade: Grade | None = None


_ORDER = [DigitalLevel.NONE, DigitalLevel.BASIC, DigitalLevel.PROFICIENT]


def digital_level(
    rules: SetRule,
    claimed: DigitalLevel | None,
    digital_effective: list[int],
    digital_evidence: bool,
) -> DigitalLevel:
    """The level that counts: ``claimed`` (the assessor's, else the person's own declaration), none
    without accepted evidence on the digital indicators, capped by the set's score floors if any."""
    if claimed is None or claimed == DigitalLevel.NONE or not digital_evidence:
        return DigitalLevel.NONE
    lowest = min(digital_effective, default=0)
    floors = {
        DigitalLevel.BASIC: rules.digital_basic_halves,
        DigitalLevel.PROFICIENT: rules.digital_proficient_halves,
    }
    level: DigitalLevel = claimed  # lowered step by step below, down to NONE
    while level != DigitalLevel.NONE and (floors[level] or 0) > lowest:
        level = _ORDER[_ORDER.index(level) - 1]
    return level


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
    claimed_level: DigitalLevel | None = None,
) -> Outcome:
    """``scores`` maps indicator id → (self, review) half-points; ``indicators_with_evidence`` holds the
    indicator ids that have at least one piece of evidence that was not rejected; ``claimed_level`` is
    the digital level the assessor confirmed, else the one the person declared."""
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
    digital = [i for i in indicators if i.digital]
    level = (
        digital_level(
            rules,
            claimed_level,
            [effective[i.indicator_id] for i in digital],
            bool(digital) and all(i.indicator_id in indicators_with_evidence for i in digital),
        )
        if rules.personal
        else None
    )
    grade = next((g for g in rules.grades if total >= g.min_total * 2), None) if passed else None
    return Outcome(
        total_halves=total,
        passed=passed,
        failing_indicators=failing,
        digital_level=level,
        effective_halves=effective,
        grade=grade,
    )
