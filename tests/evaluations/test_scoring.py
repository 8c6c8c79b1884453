"""The scoring and recognition rules of DOMAIN.md §5 (app/evaluations/scoring.py), without HTTP.

Rejected evidence reaches these rules as "no evidence" (the service passes only indicators holding a piece
that was not rejected), so "a 10 without evidence counts 0" covers it here; the rejection itself is
tested end to end in tests/api/test_evaluation_rules.py."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.evaluations.models import DigitalLevel
from app.evaluations.scoring import IndicatorRule, SetRule, effective_halves, evaluate, to_halves

# The national sets: pass 80, minimum 5, digital basic ≥ 5 and proficient ≥ 8, indicator 5 is digital.
RULES = SetRule(pass_total=80, min_indicator=5, digital_basic_halves=10, digital_proficient_halves=16)
INDICATORS = [
    IndicatorRule(indicator_id=100 + n, number=n, max_halves=20, digital=n == 5) for n in range(1, 11)
]
ALL = {i.indicator_id for i in INDICATORS}


def _self(points: list[float]) -> dict[int, tuple[int | None, int | None]]:
    return {100 + n: (to_halves(p), None) for n, p in enumerate(points, start=1)}


def _run(points: list[float], evidence: set[int] = ALL, rules: SetRule = RULES):  # type: ignore[no-untyped-def]
    return evaluate(rules, INDICATORS, _self(points), evidence)


def test_exactly_80_with_every_indicator_at_least_5_passes() -> None:
    outcome = _run([5, 7.5, 7.5, 10, 10, 10, 10, 10, 5, 5])
    assert outcome.total_halves == 160
    assert outcome.passed is True
    assert outcome.failing_indicators == []


def test_just_below_80_fails_even_with_every_indicator_at_least_5() -> None:
    outcome = _run([5, 7, 7.5, 10, 10, 10, 10, 10, 5, 5])
    assert outcome.total_halves == 159
    assert outcome.passed is False
    assert outcome.failing_indicators == []


def test_85_with_one_indicator_at_4_fails_and_names_it() -> None:
    outcome = _run([9, 9, 9, 9, 9, 9, 4, 9, 9, 9])
    assert outcome.total_halves == 170
    assert outcome.passed is False
    assert outcome.failing_indicators == [7]


def test_a_10_without_evidence_counts_0() -> None:
    outcome = _run([10] * 10, evidence=ALL - {103})
    assert outcome.effective_halves[103] == 0
    assert outcome.total_halves == 180
    assert outcome.failing_indicators == [3]
    assert outcome.passed is False


def test_the_review_score_overrides_the_self_score() -> None:
    assert effective_halves(20, 12, has_evidence=True) == 12
    assert effective_halves(20, 0, has_evidence=True) == 0  # a review of 0 is a score, not "no review"
    assert effective_halves(14, None, has_evidence=True) == 14
    assert effective_halves(None, None, has_evidence=True) == 0
    scores = _self([9] * 10)
    scores[105] = (18, 8)  # self 9, the assessor gives 4
    outcome = evaluate(RULES, INDICATORS, scores, ALL)
    assert outcome.total_halves == 170
    assert outcome.failing_indicators == [5]


def test_half_points_add_up_exactly() -> None:
    outcome = _run([8.5] * 10)
    assert outcome.total_halves == 170  # 85.0 exactly, no float drift
    assert outcome.passed is True
    assert to_halves(Decimal("0.1")) is None
    assert to_halves(Decimal("7.25")) is None
    assert to_halves(Decimal("7.5")) == 15


def _digital(points: float) -> DigitalLevel:
    scores = [10.0] * 10
    scores[4] = points
    return _run(scores).digital_level


def test_digital_levels_at_and_just_below_the_thresholds() -> None:
    assert _digital(10) == DigitalLevel.PROFICIENT
    assert _digital(8) == DigitalLevel.PROFICIENT
    assert _digital(7.5) == DigitalLevel.BASIC
    assert _digital(5) == DigitalLevel.BASIC
    assert _digital(4.5) == DigitalLevel.NONE
    assert _digital(0) == DigitalLevel.NONE


def test_digital_level_counts_the_effective_score() -> None:
    assert _run([10] * 10, evidence=ALL - {105}).digital_level == DigitalLevel.NONE


def test_the_thresholds_come_from_the_set() -> None:
    strict = SetRule(pass_total=90, min_indicator=6, digital_basic_halves=14, digital_proficient_halves=20)
    outcome = _run([8.5] * 10, rules=strict)
    assert outcome.passed is False
    assert outcome.failing_indicators == []
    assert outcome.digital_level == DigitalLevel.BASIC
    assert _run([5.5] + [10] * 9, rules=strict).failing_indicators == [1]


halves = st.integers(min_value=0, max_value=20)


@given(
    self_scores=st.lists(st.one_of(st.none(), halves), min_size=10, max_size=10),
    review_scores=st.lists(st.one_of(st.none(), halves), min_size=10, max_size=10),
    evidence=st.sets(st.sampled_from(sorted(ALL))),
)
def test_total_and_pass_follow_the_effective_scores(
    self_scores: list[int | None], review_scores: list[int | None], evidence: set[int]
) -> None:
    scores = {100 + n: pair for n, pair in enumerate(zip(self_scores, review_scores, strict=True), start=1)}
    outcome = evaluate(RULES, INDICATORS, scores, evidence)
    expected = {
        i: 0 if i not in evidence else (r if r is not None else (s or 0)) for i, (s, r) in scores.items()
    }
    assert outcome.effective_halves == expected
    assert outcome.total_halves == sum(expected.values())
    assert outcome.passed == (outcome.total_halves >= 160 and min(expected.values()) >= 10)
    assert outcome.failing_indicators == sorted(i - 100 for i, v in expected.items() if v < 10)
