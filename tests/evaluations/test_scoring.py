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

# The national sets (v2): pass 80, minimum 5, indicator 5 is digital, no digital score floors (the level is
# declared by the person and confirmed by the assessor).
RULES = SetRule(pass_total=80, min_indicator=5)
INDICATORS = [
    IndicatorRule(indicator_id=100 + n, number=n, max_halves=20, digital=n == 5) for n in range(1, 11)
]
ALL = {i.indicator_id for i in INDICATORS}


def _self(points: list[float]) -> dict[int, tuple[int | None, int | None]]:
    return {100 + n: (to_halves(p), None) for n, p in enumerate(points, start=1)}


def _run(  # type: ignore[no-untyped-def]
    points: list[float],
    evidence: set[int] = ALL,
    rules: SetRule = RULES,
    claimed: DigitalLevel | None = None,
):
    return evaluate(rules, INDICATORS, _self(points), evidence, claimed)


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


def test_no_declared_level_is_none() -> None:
    # Full marks and evidence everywhere: without a declaration the level is none, whatever the scores.
    assert _run([10] * 10).digital_level == DigitalLevel.NONE
    assert _run([10] * 10, claimed=DigitalLevel.NONE).digital_level == DigitalLevel.NONE


def test_the_declared_or_confirmed_level_counts_not_the_digital_score() -> None:
    # No floors in the national sets: indicator 5 at the minimum 5 or at 10 gives the claimed level.
    for digital_points in (5, 10):
        points = [10.0] * 10
        points[4] = digital_points
        assert _run(points, claimed=DigitalLevel.BASIC).digital_level == DigitalLevel.BASIC
        assert _run(points, claimed=DigitalLevel.PROFICIENT).digital_level == DigitalLevel.PROFICIENT


def test_a_level_without_accepted_evidence_on_the_digital_indicator_counts_none() -> None:
    no_digital_evidence = _run([10] * 10, evidence=ALL - {105}, claimed=DigitalLevel.PROFICIENT)
    assert no_digital_evidence.digital_level == DigitalLevel.NONE
    assert (
        _run([10] * 10, evidence=ALL - {105}, claimed=DigitalLevel.BASIC).digital_level == DigitalLevel.NONE
    )
    # Evidence missing on another indicator does not touch the digital level (it only fails indicator 3).
    other = _run([10] * 10, evidence=ALL - {103}, claimed=DigitalLevel.PROFICIENT)
    assert other.digital_level == DigitalLevel.PROFICIENT
    assert other.failing_indicators == [3]


def test_the_digital_level_is_independent_of_passing() -> None:
    failed = _run([4] * 10, claimed=DigitalLevel.PROFICIENT)  # total 40, every indicator below 5
    assert failed.passed is False
    assert failed.digital_level == DigitalLevel.PROFICIENT
    passed = _run([10] * 10, claimed=DigitalLevel.NONE)
    assert passed.passed is True
    assert passed.digital_level == DigitalLevel.NONE


# A set naming floors (above min_indicator): basic needs ≥ 7 on the digital indicator, proficient ≥ 9.
FLOORS = SetRule(pass_total=80, min_indicator=5, digital_basic_halves=14, digital_proficient_halves=18)


def _floored(digital_points: float, claimed: DigitalLevel) -> DigitalLevel:
    points = [10.0] * 10
    points[4] = digital_points
    return _run(points, rules=FLOORS, claimed=claimed).digital_level


def test_a_claimed_level_above_what_the_floors_allow_drops_to_the_highest_reached() -> None:
    assert _floored(10, DigitalLevel.PROFICIENT) == DigitalLevel.PROFICIENT
    assert _floored(9, DigitalLevel.PROFICIENT) == DigitalLevel.PROFICIENT  # at the floor
    assert _floored(8.5, DigitalLevel.PROFICIENT) == DigitalLevel.BASIC  # below 9, at least 7
    assert _floored(7, DigitalLevel.PROFICIENT) == DigitalLevel.BASIC
    assert _floored(6.5, DigitalLevel.PROFICIENT) == DigitalLevel.NONE  # below both floors
    assert _floored(7, DigitalLevel.BASIC) == DigitalLevel.BASIC
    assert _floored(6.5, DigitalLevel.BASIC) == DigitalLevel.NONE
    # Floors only cap: a high score never raises the claimed level.
    assert _floored(10, DigitalLevel.BASIC) == DigitalLevel.BASIC
    assert _floored(10, DigitalLevel.NONE) == DigitalLevel.NONE


def test_the_floors_count_the_effective_score() -> None:
    # Self 10 on indicator 5, the assessor gives 8: below the proficient floor 9, above the basic floor 7.
    scores = _self([10] * 10)
    scores[105] = (20, 16)
    outcome = evaluate(FLOORS, INDICATORS, scores, ALL, DigitalLevel.PROFICIENT)
    assert outcome.digital_level == DigitalLevel.BASIC


def test_the_pass_rules_come_from_the_set() -> None:
    strict = SetRule(pass_total=90, min_indicator=6)
    outcome = _run([8.5] * 10, rules=strict)
    assert outcome.passed is False  # 85 < 90
    assert outcome.failing_indicators == []
    assert _run([5.5] + [10] * 9, rules=strict).failing_indicators == [1]


def test_a_collective_set_has_no_digital_level() -> None:
    collective = SetRule(pass_total=80, min_indicator=0, personal=False)
    assert _run([10] * 10, rules=collective, claimed=DigitalLevel.PROFICIENT).digital_level is None


halves = st.integers(min_value=0, max_value=20)


@given(
    self_scores=st.lists(st.one_of(st.none(), halves), min_size=10, max_size=10),
    review_scores=st.lists(st.one_of(st.none(), halves), min_size=10, max_size=10),
    evidence=st.sets(st.sampled_from(sorted(ALL))),
    claimed=st.one_of(st.none(), st.sampled_from(list(DigitalLevel))),
)
def test_total_and_pass_follow_the_effective_scores(
    self_scores: list[int | None],
    review_scores: list[int | None],
    evidence: set[int],
    claimed: DigitalLevel | None,
) -> None:
    scores = {100 + n: pair for n, pair in enumerate(zip(self_scores, review_scores, strict=True), start=1)}
    outcome = evaluate(RULES, INDICATORS, scores, evidence, claimed)
    expected = {
        i: 0 if i not in evidence else (r if r is not None else (s or 0)) for i, (s, r) in scores.items()
    }
    assert outcome.effective_halves == expected
    assert outcome.total_halves == sum(expected.values())
    assert outcome.passed == (outcome.total_halves >= 160 and min(expected.values()) >= 10)
    assert outcome.failing_indicators == sorted(i - 100 for i, v in expected.items() if v < 10)
    # No floors in the national sets: the claimed level; none without one or without evidence on 5.
    assert outcome.digital_level == (claimed if claimed and 105 in evidence else DigitalLevel.NONE)
