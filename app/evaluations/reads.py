"""How an evaluation reads: its scores with effective values, its evidence, the stored result and the
running result the rules give right now; plus lists and the history."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from sqlalchemy import bindparam
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.covers import Shape, cover_of, in_cover, in_subtree
from app.auth.policy import Action
from app.auth.scope import Subject, own_or, require_any_role
from app.core import audit
from app.core.pagination import Paged, PageParams
from app.criteria.terms import IndicatorTerms, SetTerms, terms_of
from app.evaluations import repository as repo
from app.evaluations.models import (
    DigitalLevel,
    Evaluation,
    Evidence,
    Score,
    Status,
    Title,
    collective_as,
)
from app.evaluations.schemas import (
    EvaluationRead,
    EvidenceRead,
    HistoryEntry,
    ResultRead,
    ScoreRead,
)
from app.evaluations.scoring import Grade, IndicatorRule, Outcome, SetRule, evaluate, to_points
from app.evaluations.workflow import load
from app.orgs import service as orgs

Scored = tuple[Score, IndicatorTerms]  # a score and the terms of its indicator


class ScoreValues(Protocol):
    """What a result and an answer read of a score: a ``Score`` (a step that changes scores holds them)
    or its values alone (``repository.ScoreRow``, read as columns)."""

    @property
    def indicator_id(self) -> int: ...
    @property
    def self_halves(self) -> int | None: ...
    @property
    def review_halves(self) -> int | None: ...
    @property
    def note(self) -> str | None: ...
    @property
    def review_note(self) -> str | None: ...


ScoredValues = tuple[ScoreValues, IndicatorTerms]


def _rules(terms: SetTerms) -> SetRule:
    return SetRule(
        pass_total=terms.pass_total,
        min_indicator=terms.min_indicator,
        digital_basic_halves=terms.digital_basic_halves,
        digital_proficient_halves=terms.digital_proficient_halves,
        grades=tuple(Grade(**g) for g in terms.grades),
        personal=terms.recognises == Title.LEARNING_CITIZEN,
    )


def claimed_level(evaluation: Evaluation) -> DigitalLevel | None:
    """The digital level put forward: the assessor's, else the person's own declaration."""
    claimed = evaluation.reviewed_digital_level or evaluation.declared_digital_level
    return DigitalLevel(claimed) if claimed else None


async def scored(session: AsyncSession, evaluation: Evaluation) -> list[Scored]:
    """The evaluation's scores, each with its indicator's terms (its set's, ``criteria/terms.py``), in
    the order of the indicators' numbers."""
    terms = await terms_of(session, evaluation.criteria_set_id)
    return _in_order(terms, await repo.scores_of(session, evaluation.id))


S = TypeVar("S", bound=ScoreValues)


def _in_order(terms: SetTerms, scores: Iterable[S]) -> list[tuple[S, IndicatorTerms]]:
    """``scores`` each with its indicator's terms, in the order of the indicators' numbers."""
    by_indicator = {s.indicator_id: s for s in scores}
    return [(by_indicator[i.id], i) for i in terms.indicators if i.id in by_indicator]


async def outcome_of(
    session: AsyncSession,
    evaluation: Evaluation,
    pairs: Sequence[ScoredValues] | None = None,
    evidence: list[Evidence] | None = None,
) -> tuple[Outcome, Sequence[ScoredValues], list[Evidence]]:
    """The running result, its scores with their indicators and its evidence: each read unless given
    (``pairs``: a step that changed the scores in this session; ``evidence``: read with the evaluation).
    Scores read here are values (``repository.score_rows``): nothing here changes them."""
    terms = await terms_of(session, evaluation.criteria_set_id)  # read once per transaction at most
    if pairs is None:
        pairs = _in_order(terms, await repo.score_rows(session, evaluation.id))
    if evidence is None:
        evidence = await repo.evidence_of(session, evaluation.id)
    outcome = evaluate(
        _rules(terms),
        [IndicatorRule(i.id, i.number, i.max_points * 2, i.digital) for _, i in pairs],
        {s.indicator_id: (s.self_halves, s.review_halves) for s, _ in pairs},
        {e.indicator_id for e in evidence if not e.rejected},
        claimed_level(evaluation),
    )
    return outcome, pairs, evidence


def result_of(outcome: Outcome) -> ResultRead:
    return ResultRead(
        total=outcome.total_halves / 2,
        passed=outcome.passed,
        failing_indicators=outcome.failing_indicators,
        digital_level=outcome.digital_level,
        level=outcome.grade.code if outcome.grade else None,
    )


def _stored(
    total_halves: int | None,
    passed: bool | None,
    failing: list[int] | None,
    digital_level: str | None,
    person_id: int | None,
    grade: str | None,
) -> dict[str, Any] | None:
    if total_halves is None:
        return None
    return {
        "total": total_halves / 2,
        "passed": bool(passed),
        "failing_indicators": list(failing or []),
        "digital_level": digital_level if person_id is not None else None,
        "level": grade,
    }


def stored_result(evaluation: Evaluation) -> ResultRead | None:
    """The result the completed review stored."""
    e = evaluation
    stored = _stored(e.total_halves, e.passed, e.failing_indicators, e.digital_level, e.person_id, e.grade)
    return None if stored is None else ResultRead.model_validate(stored)


def summary_of(row: Sequence[Any]) -> dict[str, Any]:
    """A list's item, from a row of ``repository.summary_page`` (its columns in ``SUMMARY_COLUMNS``'
    order), as the fields of an :class:`EvaluationSummary` with the values its JSON holds: the page is
    written without validating them again (``core/pagination.page_json``). The row is unpacked by
    position: reading a ``Row``'s columns by name costs ~0.3 µs each, and a page of 50
    read ~1,000 of them."""
    (
        id_,
        title,
        person_id,
        collective_id,
        org_unit_id,
        year,
        criteria_set_id,
        status,
        version,
        decision_id,
        updated_at,
        total_halves,
        passed,
        failing,
        digital_level,
        grade,
    ) = row[: len(repo.SUMMARY_COLUMNS)]
    return {  # EvaluationSummary's fields in its order: the page is written as JSON as it stands
        "title": title,
        "person_id": person_id,
        "household_id": collective_as(Title.LEARNING_FAMILY, title, collective_id),
        "clan_id": collective_as(Title.LEARNING_CLAN, title, collective_id),
        "id": id_,
        "org_unit_id": org_unit_id,
        "year": year,
        "criteria_set_id": criteria_set_id,
        "status": status,
        "version": version,
        "result": _stored(total_halves, passed, failing, digital_level, person_id, grade),
        "decision_id": decision_id,
        "updated_at": updated_at,
    }


async def to_read(
    session: AsyncSession,
    evaluation: Evaluation,
    pairs: Sequence[ScoredValues] | None = None,
    evidence: list[Evidence] | None = None,
) -> EvaluationRead:
    outcome, pairs, evidence = await outcome_of(session, evaluation, pairs, evidence)
    return EvaluationRead(
        **{
            k: getattr(evaluation, k)
            for k in EvaluationRead.model_fields
            if k not in {"scores", "evidence", "result", "running_result"}
        },
        scores=[
            ScoreRead(
                indicator_id=i.id,
                number=i.number,
                self_score=to_points(s.self_halves),
                review_score=to_points(s.review_halves),
                effective_score=outcome.effective_halves[i.id] / 2,
                note=s.note,
                review_note=s.review_note,
            )
            for s, i in pairs
        ],
        evidence=[EvidenceRead.model_validate(e) for e in evidence],
        result=stored_result(evaluation),
        running_result=result_of(outcome),
    )


async def get(session: AsyncSession, subject: Subject, evaluation_id: int) -> EvaluationRead:
    loaded = await load(session, subject, evaluation_id, Action.EVALUATION_READ, with_evidence=True)
    return await to_read(session, loaded.evaluation, evidence=loaded.evidence)


async def list_evaluations(
    session: AsyncSession,
    subject: Subject,
    params: PageParams,
    *,
    org_unit_id: int | None,
    year: int | None,
    status: Status | None,
    person_id: int | None,
    title: Title | None = None,
) -> tuple[list[Sequence[Any]], int]:
    """The evaluations the caller sees (their scope for ``evaluation.read``, and their own), or those of
    ``org_unit_id``'s subtree, with the filters asked."""
    values: dict[str, Any] = {
        "year": year,
        "status": status.value if status is not None else None,
        "person_id": person_id,
        "title": title.value if title is not None else None,
    }
    if org_unit_id is not None:
        # The caller's roles for the action cover the unit, so its subtree is in their scope.
        await orgs.get_visible_life(session, subject, org_unit_id, Action.EVALUATION_READ)
        values["unit_id"] = org_unit_id
        scope: Shape | str = "unit"
        own = False
    else:
        if subject.person_id is None:
            require_any_role(subject, Action.EVALUATION_READ)
        cover = cover_of(subject, Action.EVALUATION_READ)
        values.update(cover.params, own_person=subject.person_id)
        scope, own = cover.shape, subject.person_id is not None
    filters = (year is not None, status is not None, person_id is not None, title is not None)
    return await repo.summary_page(session, _list_statement(scope, own, *filters), values, params)


@lru_cache(maxsize=256)
def _list_statement(
    scope: Shape | str, own: bool, year: bool, status: bool, person: bool, title: bool
) -> Paged:
    """:func:`list_evaluations`' statement, built once per shape, its values bound: ``scope`` is ``unit``
    (the subtree of the unit bound as ``unit_id``) or a cover shape (``auth/covers.Cover``); ``own``: the
    caller's own evaluations (``own_person``) are seen too."""
    if not isinstance(scope, Shape):
        where = [in_subtree(Evaluation.org_unit_id, "unit_id")]
    else:
        in_scope = in_cover(scope, Evaluation.org_unit_id)
        where = [own_or(in_scope, Evaluation.person_id == bindparam("own_person") if own else None)]
    if year:
        where.append(Evaluation.year == bindparam("year"))
    if status:
        where.append(Evaluation.status == bindparam("status"))
    if person:
        where.append(Evaluation.person_id == bindparam("person_id"))
    if title:
        where.append(Evaluation.title == bindparam("title"))
    return repo.summary_statement(where)


async def history(session: AsyncSession, subject: Subject, evaluation_id: int) -> list[HistoryEntry]:
    await load(session, subject, evaluation_id, Action.EVALUATION_READ)
    return [HistoryEntry.model_validate(e) for e in await audit.history(session, "evaluation", evaluation_id)]
