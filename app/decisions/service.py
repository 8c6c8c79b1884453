"""Recognition decisions (quyết định công nhận): the unit head recognises reviewed, passed evaluations of
their subtree in one all-or-nothing act, and may later revoke it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import counters
from app.auth.policy import Action
from app.auth.scope import Subject, authorize, require_any_role, subtree_ids, unit_filter
from app.core import audit
from app.core.dates import today
from app.core.db import utcnow
from app.core.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from app.core.pagination import PageParams
from app.decisions import repository as repo
from app.decisions.models import DecisionItem, RecognitionDecision
from app.decisions.schemas import DecisionCreate, DecisionRead
from app.evaluations.models import Evaluation, Status
from app.evaluations.workflow import Duty, audit_step, is_own, separate_duties, transition
from app.orgs import service as orgs
from app.webhooks import outbox
from app.webhooks.models import EventType


async def _reads(session: AsyncSession, decisions: Sequence[RecognitionDecision]) -> list[DecisionRead]:
    items = await repo.decision_items(session, [d.id for d in decisions])
    return [
        DecisionRead.model_validate(
            {
                **{c: getattr(d, c) for c in DecisionRead.model_fields if c != "evaluation_ids"},
                "evaluation_ids": items[d.id],
            }
        )
        for d in decisions
    ]


def _problems(data: DecisionCreate, in_subtree: list[Evaluation]) -> list[dict[str, object]]:
    found = {e.id: e for e in in_subtree}
    problems: list[dict[str, object]] = []
    for evaluation_id in data.evaluation_ids:
        evaluation = found.get(evaluation_id)
        if evaluation is None:
            problems.append({"evaluation_id": evaluation_id, "reason": "not found in this unit's subtree"})
        elif evaluation.year != data.year:
            problems.append(
                {"evaluation_id": evaluation_id, "reason": f"is for {evaluation.year}, not {data.year}"}
            )
        elif evaluation.subject_unit_id == data.org_unit_id:
            problems.append(
                {"evaluation_id": evaluation_id, "reason": "a unit is recognised by the level above it"}
            )
        elif evaluation.status != Status.REVIEWED:
            problems.append(
                {"evaluation_id": evaluation_id, "reason": f"is {evaluation.status}, not reviewed"}
            )
        elif not evaluation.passed:
            problems.append({"evaluation_id": evaluation_id, "reason": "did not pass"})
    return problems


async def _announce(
    session: AsyncSession, type: EventType, decision: RecognitionDecision, evaluations: Sequence[Evaluation]
) -> None:
    """The webhook event (outbox, same transaction): the decision and what it recognises, counted by title —
    never who (no names, no person ids)."""
    data = {
        "decision_id": decision.id,
        "org_unit_id": decision.org_unit_id,
        "year": decision.year,
        "number": decision.number,
        "signed_on": decision.signed_on.isoformat(),
        "status": decision.status,
        "evaluation_count": len(evaluations),
        "titles": sorted({e.title for e in evaluations}),
    }
    await outbox.emit(session, type, decision.org_unit_id, data)


def check_signed_on(data: DecisionCreate) -> None:
    """A decision of year Y is signed from 1 January of Y, and not in the future."""
    if not date(data.year, 1, 1) <= data.signed_on <= today():
        raise ValidationFailed(
            f"signed_on must lie between {data.year}-01-01 and today.", details={"field": "signed_on"}
        )


async def create(session: AsyncSession, subject: Subject, data: DecisionCreate) -> DecisionRead:
    check_signed_on(data)
    await orgs.get_visible(session, subject, data.org_unit_id, Action.DECISION_SIGN)
    if len(set(data.evaluation_ids)) != len(data.evaluation_ids):
        raise Conflict("An evaluation is listed twice.")
    if await repo.find_decision(session, data.org_unit_id, data.year, data.number) is not None:
        raise Conflict(f"Decision {data.number!r} for {data.year} exists already at this unit.")
    evaluations = await repo.evaluations_by_ids(
        session, data.evaluation_ids, within_unit=data.org_unit_id, for_update=True
    )
    for evaluation in evaluations:
        if await is_own(session, subject, evaluation):
            raise Forbidden("An approver never signs a decision for their own evaluation.")
    await separate_duties(session, subject, [e.id for e in evaluations], Duty.SIGN)
    problems = _problems(data, evaluations)
    if problems:
        raise Conflict(
            "Some evaluations cannot be recognised; nothing was changed.", details={"evaluations": problems}
        )
    decision = RecognitionDecision(
        org_unit_id=data.org_unit_id,
        year=data.year,
        number=data.number,
        signed_on=data.signed_on,
        signed_by=audit.user_id_of(subject),
    )
    session.add(decision)
    await session.flush()

    async def recognise() -> None:
        for evaluation in evaluations:
            session.add(DecisionItem(decision_id=decision.id, evaluation_id=evaluation.id))
            transition(evaluation, "recognise")
            evaluation.decision_id = decision.id
            await audit_step(
                session,
                subject,
                evaluation.id,
                "recognised",
                {"status": Status.REVIEWED.value},
                {"status": evaluation.status, "decision_id": decision.id, "number": data.number},
            )

    await counters.recognitions_changed(session, evaluations, +1, recognise)
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="recognition_decision",
        entity_id=decision.id,
        action="signed",
        after={"number": data.number, "evaluation_ids": sorted(data.evaluation_ids)},
    )
    await _announce(session, EventType.DECISION_SIGNED, decision, evaluations)
    return (await _reads(session, [decision]))[0]


async def _visible(
    session: AsyncSession, subject: Subject, decision_id: int, action: Action, *, for_update: bool = False
) -> RecognitionDecision:
    missing = f"Recognition decision {decision_id} not found."
    decision = await repo.get_decision(session, decision_id, for_update=for_update)
    if decision is None:
        raise NotFound(missing)
    await authorize(session, subject, decision.org_unit_id, action, missing=missing)
    return decision


async def get(session: AsyncSession, subject: Subject, decision_id: int) -> DecisionRead:
    return (await _reads(session, [await _visible(session, subject, decision_id, Action.DECISION_READ)]))[0]


async def list_decisions(
    session: AsyncSession, subject: Subject, params: PageParams, org_unit_id: int | None, year: int | None
) -> tuple[list[DecisionRead], int]:
    where: list[ColumnElement[bool]] = [
        unit_filter(subject, Action.DECISION_READ, RecognitionDecision.org_unit_id)
    ]
    if org_unit_id is not None:
        await orgs.get_visible(session, subject, org_unit_id, Action.DECISION_READ)
        where.append(RecognitionDecision.org_unit_id.in_(subtree_ids([org_unit_id])))
    else:
        require_any_role(subject, Action.DECISION_READ)
    if year is not None:
        where.append(RecognitionDecision.year == year)
    decisions, total = await repo.page_decisions(session, where, params)
    return await _reads(session, decisions), total


async def revoke(session: AsyncSession, subject: Subject, decision_id: int, reason: str) -> DecisionRead:
    decision = await _visible(session, subject, decision_id, Action.DECISION_SIGN, for_update=True)
    if decision.status != "active":
        raise InvalidTransition("The decision is already revoked.", details={"status": decision.status})
    item_ids = (await repo.decision_items(session, [decision.id]))[decision.id]
    recognised = [
        e
        for e in await repo.evaluations_by_ids(session, item_ids, for_update=True)
        if e.decision_id == decision.id and e.status == Status.RECOGNISED
    ]

    async def withdraw() -> None:
        decision.status = "revoked"
        decision.revoked_at = utcnow()
        decision.revoked_by = audit.user_id_of(subject)
        decision.revoke_reason = reason
        for evaluation in recognised:
            transition(evaluation, "revoke_recognition")
            evaluation.decision_id = None
            await audit_step(
                session,
                subject,
                evaluation.id,
                "recognition_revoked",
                {"status": Status.RECOGNISED.value, "decision_id": decision.id},
                {"status": evaluation.status, "reason": reason},
            )

    await counters.recognitions_changed(session, recognised, -1, withdraw)
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="recognition_decision",
        entity_id=decision.id,
        action="revoked",
        after={"reason": reason},
    )
    await _announce(session, EventType.DECISION_REVOKED, decision, recognised)
    return (await _reads(session, [decision]))[0]
