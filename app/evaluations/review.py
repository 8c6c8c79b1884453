"""The committee's side (Tổ đánh giá): review scores and evidence, return to the person, complete the
review and record the result. An assessor never reviews their own evaluation (``workflow.load``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Action
from app.auth.scope import Subject
from app.core.db import utcnow
from app.core.errors import ValidationFailed
from app.evaluations import repository as repo
from app.evaluations.models import Evaluation, Evidence
from app.evaluations.reads import outcome_of, result_of, to_read
from app.evaluations.schemas import EvaluationRead, Review
from app.evaluations.service import Change, apply_scores, set_digital_level
from app.evaluations.workflow import audit_step, begin, move, require_version, transition


async def _set_rejections(
    session: AsyncSession, evaluation: Evaluation, rejected_ids: list[int], change: Change
) -> list[Evidence]:
    """``rejected_ids`` is the full set of unsuitable evidence; every other piece becomes accepted. The
    evidence, as now marked (the step's answer shows it)."""
    evidence = await repo.evidence_of(session, evaluation.id)
    unknown = sorted(set(rejected_ids) - {e.id for e in evidence})
    if unknown:
        raise ValidationFailed(
            "Some evidence ids do not belong to this evaluation.", details={"evidence_ids": unknown}
        )
    wanted = sorted(set(rejected_ids))
    before = sorted(e.id for e in evidence if e.rejected)
    for piece in evidence:
        piece.rejected = piece.id in wanted
    if before != wanted:
        change["before"]["rejected_evidence_ids"] = before
        change["after"]["rejected_evidence_ids"] = wanted
    return evidence


async def review(
    session: AsyncSession, subject: Subject, evaluation_id: int, data: Review, if_match: int | None
) -> EvaluationRead:
    require_version(data.version, if_match)
    evaluation = await begin(
        session, subject, evaluation_id, Action.EVALUATION_REVIEW, data.version, if_match
    )
    before_status = evaluation.status
    transition(evaluation, "review")
    change, pairs = await apply_scores(session, evaluation, data.scores, review=True)
    change["before"]["status"], change["after"]["status"] = before_status, evaluation.status
    if data.digital_level is not None:
        set_digital_level(evaluation, "reviewed_digital_level", data.digital_level, change)
    evidence: list[Evidence] | None = None
    if data.rejected_evidence_ids is not None:
        evidence = await _set_rejections(session, evaluation, data.rejected_evidence_ids, change)
    await audit_step(session, subject, evaluation.id, "reviewed", change["before"], change["after"])
    await session.flush()  # with its audit row: one flush; the answer shows the new version
    return await to_read(session, evaluation, pairs, evidence)


async def return_to_person(
    session: AsyncSession, subject: Subject, evaluation_id: int, reason: str, version: int | None
) -> EvaluationRead:
    evaluation = await begin(session, subject, evaluation_id, Action.EVALUATION_REVIEW, version)
    evaluation.return_reason = reason
    await move(session, subject, evaluation, "return", reason=reason)
    return await to_read(session, evaluation)


async def complete_review(
    session: AsyncSession, subject: Subject, evaluation_id: int, version: int | None
) -> EvaluationRead:
    evaluation = await begin(session, subject, evaluation_id, Action.EVALUATION_REVIEW, version)
    outcome, pairs, evidence = await outcome_of(session, evaluation)
    evaluation.total_halves = outcome.total_halves
    evaluation.passed = outcome.passed
    evaluation.failing_indicators = outcome.failing_indicators
    evaluation.digital_level = outcome.digital_level.value if outcome.digital_level else None
    evaluation.grade = outcome.grade.code if outcome.grade else None
    evaluation.reviewed_at = utcnow()
    await move(
        session, subject, evaluation, "complete_review", result=result_of(outcome).model_dump(mode="json")
    )
    return await to_read(session, evaluation, pairs, evidence)
