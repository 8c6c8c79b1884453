"""How an evaluation reads: its scores with effective values, its evidence, the stored result and the
running result the rules give right now; plus lists and the history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Action
from app.auth.scope import Subject, own_or, require_any_role, subtree_ids, unit_filter
from app.core import audit
from app.core.pagination import PageParams
from app.criteria import service as criteria
from app.criteria.models import CriteriaSet, Indicator
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
    EvaluationSummary,
    EvidenceRead,
    HistoryEntry,
    ResultRead,
    ScoreRead,
)
from app.evaluations.scoring import Grade, IndicatorRule, Outcome, SetRule, evaluate, to_points
from app.evaluations.workflow import load
from app.orgs import service as orgs


def _rules(criteria_set: CriteriaSet) -> SetRule:
    return SetRule(
        pass_total=criteria_set.pass_total,
        min_indicator=criteria_set.min_indicator,
        digital_basic_halves=criteria_set.digital_basic_halves,
        digital_proficient_halves=criteria_set.digital_proficient_halves,
        grades=tuple(Grade(**g) for g in criteria_set.grades or ()),
        personal=criteria_set.recognises == Title.LEARNING_CITIZEN,
    )


def claimed_level(evaluation: Evaluation) -> DigitalLevel | None:
    """The digital level put forward: the assessor's, else the person's own declaration."""
    claimed = evaluation.reviewed_digital_level or evaluation.declared_digital_level
    return DigitalLevel(claimed) if claimed else None


async def outcome_of(
    session: AsyncSession, evaluation: Evaluation
) -> tuple[Outcome, list[tuple[Score, Indicator]], list[Evidence]]:
    pairs = await repo.scores_with_indicators(session, evaluation.id)
    evidence = await repo.evidence_of(session, evaluation.id)
    criteria_set = await criteria.get_set(session, evaluation.criteria_set_id)
    outcome = evaluate(
        _rules(criteria_set),
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


def stored_result(evaluation: Evaluation | Row[Any]) -> ResultRead | None:
    """The result the completed review stored (an evaluation, or a row of its columns)."""
    if evaluation.total_halves is None:
        return None
    digital = evaluation.digital_level if evaluation.person_id is not None else None
    return ResultRead(
        total=evaluation.total_halves / 2,
        passed=bool(evaluation.passed),
        failing_indicators=list(evaluation.failing_indicators or []),
        digital_level=DigitalLevel(digital) if digital is not None else None,
        level=evaluation.grade,
    )


def summary_of(row: Row[Any]) -> EvaluationSummary:
    """A list's item, from a row of ``repository.summary_page``."""
    return EvaluationSummary(
        id=row.id,
        title=row.title,
        person_id=row.person_id,
        household_id=collective_as(Title.LEARNING_FAMILY, row.title, row.collective_id),
        clan_id=collective_as(Title.LEARNING_CLAN, row.title, row.collective_id),
        org_unit_id=row.org_unit_id,
        year=row.year,
        criteria_set_id=row.criteria_set_id,
        status=row.status,
        version=row.version,
        result=stored_result(row),
        decision_id=row.decision_id,
        updated_at=row.updated_at,
    )


async def to_read(session: AsyncSession, evaluation: Evaluation) -> EvaluationRead:
    outcome, pairs, evidence = await outcome_of(session, evaluation)
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
    loaded = await load(session, subject, evaluation_id, Action.EVALUATION_READ)
    return await to_read(session, loaded.evaluation)


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
) -> tuple[list[Row[Any]], int]:
    own = Evaluation.person_id == subject.person_id if subject.person_id is not None else None
    where: list[ColumnElement[bool]] = [
        own_or(unit_filter(subject, Action.EVALUATION_READ, Evaluation.org_unit_id), own)
    ]
    if org_unit_id is not None:
        await orgs.get_visible(session, subject, org_unit_id, Action.EVALUATION_READ)
        where.append(Evaluation.org_unit_id.in_(subtree_ids([org_unit_id])))
    elif own is None:
        require_any_role(subject, Action.EVALUATION_READ)
    if year is not None:
        where.append(Evaluation.year == year)
    if status is not None:
        where.append(Evaluation.status == status.value)
    if person_id is not None:
        where.append(Evaluation.person_id == person_id)
    if title is not None:
        where.append(Evaluation.title == title.value)
    return await repo.summary_page(session, where, params)


async def history(session: AsyncSession, subject: Subject, evaluation_id: int) -> list[HistoryEntry]:
    await load(session, subject, evaluation_id, Action.EVALUATION_READ)
    return [HistoryEntry.model_validate(e) for e in await audit.history(session, "evaluation", evaluation_id)]
