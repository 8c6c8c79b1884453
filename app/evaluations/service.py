"""The evaluation workflow: who may do what to an evaluation, in which status, and what it leaves in the
audit trail. Transitions are the table :data:`TRANSITIONS`; scoring rules live in ``scoring.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Action
from app.auth.scope import Subject, authorize, own_or, require_any_role, subtree_ids, unit_filter
from app.core import audit
from app.core.db import utcnow
from app.core.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from app.core.pagination import PageParams
from app.core.schemas import check_version
from app.criteria import repository as criteria_repo
from app.criteria import service as criteria
from app.criteria.models import CriteriaSet, Indicator
from app.evaluations import repository as repo
from app.evaluations.models import Evaluation, Evidence, Score, Status
from app.evaluations.schemas import (
    EvaluationCreate,
    EvaluationRead,
    EvidenceRead,
    HistoryEntry,
    ResultRead,
    Review,
    ScoreInput,
    ScoreRead,
    SelfAssessment,
)
from app.evaluations.scoring import IndicatorRule, Outcome, SetRule, evaluate, to_halves, to_points
from app.orgs import repository as orgs_repo
from app.people import service as people

S = Status
TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    "submit": (frozenset({S.DRAFT, S.RETURNED}), S.SUBMITTED),
    "withdraw": (frozenset({S.DRAFT, S.SUBMITTED, S.RETURNED}), S.WITHDRAWN),
    "reopen": (frozenset({S.WITHDRAWN}), S.DRAFT),
    "review": (frozenset({S.SUBMITTED, S.IN_REVIEW}), S.IN_REVIEW),
    "return": (frozenset({S.SUBMITTED, S.IN_REVIEW}), S.RETURNED),
    "complete_review": (frozenset({S.SUBMITTED, S.IN_REVIEW}), S.REVIEWED),
    "recognise": (frozenset({S.REVIEWED}), S.RECOGNISED),
    "revoke_recognition": (frozenset({S.RECOGNISED}), S.REVIEWED),
}
EDITABLE = frozenset({S.DRAFT, S.RETURNED})


def transition(evaluation: Evaluation, name: str) -> None:
    allowed, target = TRANSITIONS[name]
    if evaluation.status not in allowed:
        raise InvalidTransition(
            f"Cannot {name.replace('_', ' ')} an evaluation that is {evaluation.status}.",
            details={"status": evaluation.status, "allowed_from": sorted(allowed)},
        )
    evaluation.status = target.value
    evaluation.updated_at = utcnow()


def log(
    session: AsyncSession,
    subject: Subject,
    evaluation_id: int,
    action: str,
    before: Any = None,
    after: Any = None,
) -> Any:
    return audit.record(
        session,
        actor_user_id=subject.user_id or None,
        entity_type="evaluation",
        entity_id=evaluation_id,
        action=action,
        before=before,
        after=after,
    )


@dataclass
class Loaded:
    evaluation: Evaluation
    own: bool


async def load(
    session: AsyncSession, subject: Subject, evaluation_id: int, action: Action, *, for_update: bool = False
) -> Loaded:
    """The evaluation if the subject may perform ``action``: 404 outside scope, 403 without the role.
    The person themself may read and edit their own; reviewing or signing one's own is 403."""
    missing = f"Evaluation {evaluation_id} not found."
    evaluation = await repo.get(session, evaluation_id, for_update=for_update)
    if evaluation is None:
        raise NotFound(missing)
    own = subject.person_id is not None and evaluation.person_id == subject.person_id
    own_allowed = own and action in (Action.EVALUATION_READ, Action.EVALUATION_EDIT)
    await authorize(session, subject, evaluation.org_unit_id, action, own=own_allowed, missing=missing)
    if own and action == Action.EVALUATION_REVIEW:
        raise Forbidden("An assessor never reviews their own evaluation.")
    return Loaded(evaluation, own)


# --- reading -----------------------------------------------------------------------------------------


def _rules(criteria_set: CriteriaSet) -> SetRule:
    return SetRule(
        pass_total=criteria_set.pass_total,
        min_indicator=criteria_set.min_indicator,
        digital_basic_halves=criteria_set.digital_basic_halves,
        digital_proficient_halves=criteria_set.digital_proficient_halves,
    )


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
    )
    return outcome, pairs, evidence


def _result(outcome: Outcome) -> ResultRead:
    return ResultRead(
        total=outcome.total_halves / 2,
        passed=outcome.passed,
        failing_indicators=outcome.failing_indicators,
        digital_level=outcome.digital_level,
    )


def stored_result(evaluation: Evaluation) -> ResultRead | None:
    if evaluation.total_halves is None:
        return None
    return ResultRead(
        total=evaluation.total_halves / 2,
        passed=bool(evaluation.passed),
        failing_indicators=list(evaluation.failing_indicators or []),
        digital_level=evaluation.digital_level or "none",
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
        running_result=_result(outcome),
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
) -> tuple[list[Evaluation], int]:
    own = Evaluation.person_id == subject.person_id if subject.person_id is not None else None
    where: list[ColumnElement[bool]] = [
        own_or(unit_filter(subject, Action.EVALUATION_READ, Evaluation.org_unit_id), own)
    ]
    if org_unit_id is not None:
        unit = await orgs_repo.get(session, org_unit_id)
        missing = f"Org unit {org_unit_id} not found."
        if unit is None:
            raise NotFound(missing)
        await authorize(session, subject, unit.id, Action.EVALUATION_READ, missing=missing)
        where.append(Evaluation.org_unit_id.in_(subtree_ids([org_unit_id])))
    elif own is None:
        require_any_role(subject, Action.EVALUATION_READ)
    if year is not None:
        where.append(Evaluation.year == year)
    if status is not None:
        where.append(Evaluation.status == status.value)
    if person_id is not None:
        where.append(Evaluation.person_id == person_id)
    return await repo.page(session, where, params)


async def history(session: AsyncSession, subject: Subject, evaluation_id: int) -> list[HistoryEntry]:
    await load(session, subject, evaluation_id, Action.EVALUATION_READ)
    return [HistoryEntry.model_validate(e) for e in await audit.history(session, "evaluation", evaluation_id)]


# --- the person's side -------------------------------------------------------------------------------


async def create(session: AsyncSession, subject: Subject, data: EvaluationCreate) -> EvaluationRead:
    person = await people.get_visible(session, subject, data.person_id, Action.PERSON_READ)
    await authorize(
        session,
        subject,
        person.org_unit_id,
        Action.EVALUATION_EDIT,
        own=person.id == subject.person_id,
        missing=f"Person {person.id} not found.",
    )
    if await repo.get_for_person_year(session, person.id, data.year) is not None:
        raise Conflict(f"Person {person.id} already has an evaluation for {data.year}.")
    criteria_set = await criteria.set_for_person(session, person.group, person.org_unit_id)
    await criteria_repo.freeze(session, criteria_set.id)
    evaluation = Evaluation(
        person_id=person.id,
        org_unit_id=person.org_unit_id,
        year=data.year,
        criteria_set_id=criteria_set.id,
        status=Status.DRAFT.value,
        created_by=subject.user_id or None,
    )
    session.add(evaluation)
    await session.flush()
    for indicator in await criteria_repo.indicators_of(session, criteria_set.id):
        session.add(Score(evaluation_id=evaluation.id, indicator_id=indicator.id))
    await session.flush()
    await log(
        session,
        subject,
        evaluation.id,
        "created",
        after={"year": data.year, "criteria_set_id": criteria_set.id},
    )
    return await to_read(session, evaluation)


def _require_version(body_version: int | None, if_match: int | None) -> None:
    if body_version is None and if_match is None:
        raise ValidationFailed(
            "Send the evaluation's version (body field or If-Match) so edits cannot overwrite each other."
        )


async def _apply_scores(
    session: AsyncSession, evaluation: Evaluation, inputs: list[ScoreInput], *, review: bool
) -> dict[str, dict[int, Any]]:
    pairs = {i.id: (s, i) for s, i in await repo.scores_with_indicators(session, evaluation.id)}
    seen: set[int] = set()
    before: dict[int, Any] = {}
    after: dict[int, Any] = {}
    for item in inputs:
        if item.indicator_id not in pairs:
            raise ValidationFailed(
                f"Indicator {item.indicator_id} is not part of this evaluation's criteria set.",
                details={"indicator_id": item.indicator_id},
            )
        if item.indicator_id in seen:
            raise ValidationFailed(f"Indicator {item.indicator_id} is scored twice.")
        seen.add(item.indicator_id)
        score, indicator = pairs[item.indicator_id]
        halves = to_halves(item.score)
        if halves is None or halves > indicator.max_points * 2:
            raise ValidationFailed(
                f"Indicator {indicator.number}: a score is 0 to {indicator.max_points} in steps of 0.5.",
                details={"indicator_id": indicator.id, "number": indicator.number},
            )
        field, note_field = ("review_halves", "review_note") if review else ("self_halves", "note")
        old = (to_points(getattr(score, field)), getattr(score, note_field))
        setattr(score, field, halves)
        if item.note is not None:
            setattr(score, note_field, item.note)
        new = (to_points(halves), getattr(score, note_field))
        if old != new:
            before[indicator.number] = {"score": old[0], "note": old[1]}
            after[indicator.number] = {"score": new[0], "note": new[1]}
    evaluation.updated_at = utcnow()
    return {"before": before, "after": after}


async def self_assess(
    session: AsyncSession, subject: Subject, evaluation_id: int, data: SelfAssessment, if_match: int | None
) -> EvaluationRead:
    _require_version(data.version, if_match)
    evaluation = (
        await load(session, subject, evaluation_id, Action.EVALUATION_EDIT, for_update=True)
    ).evaluation
    check_version(evaluation.version, data.version, if_match)
    if evaluation.status not in EDITABLE:
        raise InvalidTransition(
            f"Self-assessment can change only in draft or returned; the evaluation is {evaluation.status}.",
            details={"status": evaluation.status},
        )
    change = await _apply_scores(session, evaluation, data.scores, review=False)
    await session.flush()
    await log(session, subject, evaluation.id, "self_assessed", change["before"], change["after"])
    return await to_read(session, evaluation)


async def submit(
    session: AsyncSession, subject: Subject, evaluation_id: int, version: int | None
) -> EvaluationRead:
    evaluation = (
        await load(session, subject, evaluation_id, Action.EVALUATION_EDIT, for_update=True)
    ).evaluation
    check_version(evaluation.version, version)
    before = evaluation.status
    transition(evaluation, "submit")
    missing = [
        i.number
        for s, i in await repo.scores_with_indicators(session, evaluation.id)
        if s.self_halves is None
    ]
    if missing:
        raise Conflict(
            "Every indicator needs a self score before submitting.", details={"missing_indicators": missing}
        )
    evaluation.submitted_at = utcnow()
    evaluation.return_reason = None
    await session.flush()
    await log(session, subject, evaluation.id, "submitted", {"status": before}, {"status": evaluation.status})
    return await to_read(session, evaluation)


async def person_transition(
    session: AsyncSession, subject: Subject, evaluation_id: int, name: str, version: int | None
) -> EvaluationRead:
    """withdraw / reopen, by the person or an org_admin on their behalf."""
    evaluation = (
        await load(session, subject, evaluation_id, Action.EVALUATION_EDIT, for_update=True)
    ).evaluation
    check_version(evaluation.version, version)
    before = evaluation.status
    transition(evaluation, name)
    await session.flush()
    await log(session, subject, evaluation.id, name, {"status": before}, {"status": evaluation.status})
    return await to_read(session, evaluation)


# --- the committee's side ----------------------------------------------------------------------------


async def review(
    session: AsyncSession, subject: Subject, evaluation_id: int, data: Review, if_match: int | None
) -> EvaluationRead:
    _require_version(data.version, if_match)
    evaluation = (
        await load(session, subject, evaluation_id, Action.EVALUATION_REVIEW, for_update=True)
    ).evaluation
    check_version(evaluation.version, data.version, if_match)
    before_status = evaluation.status
    transition(evaluation, "review")
    change = await _apply_scores(session, evaluation, data.scores, review=True)
    change["before"]["status"], change["after"]["status"] = before_status, evaluation.status
    if data.rejected_evidence_ids is not None:
        evidence = await repo.evidence_of(session, evaluation.id)
        known = {e.id for e in evidence}
        unknown = sorted(set(data.rejected_evidence_ids) - known)
        if unknown:
            raise ValidationFailed(
                "Some evidence ids do not belong to this evaluation.", details={"evidence_ids": unknown}
            )
        wanted = set(data.rejected_evidence_ids)
        before_rejected = sorted(e.id for e in evidence if e.rejected)
        for piece in evidence:
            piece.rejected = piece.id in wanted
        if before_rejected != sorted(wanted):
            change["before"]["rejected_evidence_ids"] = before_rejected
            change["after"]["rejected_evidence_ids"] = sorted(wanted)
    await session.flush()
    await log(session, subject, evaluation.id, "reviewed", change["before"], change["after"])
    return await to_read(session, evaluation)


async def return_to_person(
    session: AsyncSession, subject: Subject, evaluation_id: int, reason: str, version: int | None
) -> EvaluationRead:
    evaluation = (
        await load(session, subject, evaluation_id, Action.EVALUATION_REVIEW, for_update=True)
    ).evaluation
    check_version(evaluation.version, version)
    before = evaluation.status
    transition(evaluation, "return")
    evaluation.return_reason = reason
    await session.flush()
    await log(
        session,
        subject,
        evaluation.id,
        "returned",
        {"status": before},
        {"status": evaluation.status, "reason": reason},
    )
    return await to_read(session, evaluation)


async def complete_review(
    session: AsyncSession, subject: Subject, evaluation_id: int, version: int | None
) -> EvaluationRead:
    evaluation = (
        await load(session, subject, evaluation_id, Action.EVALUATION_REVIEW, for_update=True)
    ).evaluation
    check_version(evaluation.version, version)
    before = evaluation.status
    transition(evaluation, "complete_review")
    outcome, _, _ = await outcome_of(session, evaluation)
    evaluation.total_halves = outcome.total_halves
    evaluation.passed = outcome.passed
    evaluation.failing_indicators = outcome.failing_indicators
    evaluation.digital_level = outcome.digital_level.value
    evaluation.reviewed_at = utcnow()
    await session.flush()
    result = _result(outcome).model_dump(mode="json")
    await log(
        session,
        subject,
        evaluation.id,
        "review_completed",
        {"status": before},
        {"status": evaluation.status, "result": result},
    )
    return await to_read(session, evaluation)
