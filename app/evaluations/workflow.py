"""The evaluation state machine and its access rule: the :data:`TRANSITIONS` table, loading an evaluation
for an action (404 outside scope, 403 without the role, 403 for reviewing one's own), and the audit
entry every change writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Action
from app.auth.scope import Subject, authorize, authorize_above
from app.core import audit
from app.core.db import utcnow
from app.core.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from app.core.schemas import check_version
from app.evaluations import repository as repo
from app.evaluations.models import Evaluation, Status

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
# How each transition reads in the history.
AUDITED_AS = {
    "submit": "submitted",
    "withdraw": "withdrawn",
    "reopen": "reopened",
    "return": "returned",
    "complete_review": "review_completed",
}
# Scores and evidence change only while the person holds the evaluation.
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


def require_editable(evaluation: Evaluation, what: str) -> None:
    if evaluation.status not in EDITABLE:
        raise InvalidTransition(
            f"{what} can change only in draft or returned; the evaluation is {evaluation.status}.",
            details={"status": evaluation.status},
        )


def require_version(body_version: int | None, if_match: int | None) -> None:
    if body_version is None and if_match is None:
        raise ValidationFailed(
            "Send the evaluation's version (body field or If-Match) so edits cannot overwrite each other."
        )


async def log(
    session: AsyncSession,
    subject: Subject,
    evaluation_id: int,
    action: str,
    before: Any = None,
    after: Any = None,
) -> None:
    await audit.record(
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
    The person themself may read and edit their own (a member of a household, or of a household of a
    clan, their family's or clan's); reviewing one's own is 403. A community or learning unit is
    reviewed by the level above: a role held at the unit itself does not review it (403)."""
    missing = f"Evaluation {evaluation_id} not found."
    evaluation = await repo.get(session, evaluation_id, for_update=for_update)
    if evaluation is None:
        raise NotFound(missing)
    own = await is_own(session, subject, evaluation)
    own_allowed = own and action in (Action.EVALUATION_READ, Action.EVALUATION_EDIT)
    await authorize(session, subject, evaluation.org_unit_id, action, own=own_allowed, missing=missing)
    if own and action == Action.EVALUATION_REVIEW:
        raise Forbidden("An assessor never reviews their own evaluation.")
    if action == Action.EVALUATION_REVIEW and evaluation.subject_unit_id is not None:
        await authorize_above(session, subject, evaluation.subject_unit_id, action)
    return Loaded(evaluation, own)


async def is_own(session: AsyncSession, subject: Subject, evaluation: Evaluation) -> bool:
    """The subject's own evaluation: theirs, or their household's or clan's (as a member today)."""
    if subject.person_id is None:
        return False
    if evaluation.person_id is not None:
        return evaluation.person_id == subject.person_id
    return await repo.is_member_today(session, subject.person_id, evaluation)


async def begin(
    session: AsyncSession, subject: Subject, evaluation_id: int, action: Action, *versions: int | None
) -> Evaluation:
    """Load for a change: the row is locked (concurrent writers queue) and a stale version is 409."""
    evaluation = (await load(session, subject, evaluation_id, action, for_update=True)).evaluation
    check_version(evaluation.version, *versions)
    return evaluation


async def move(
    session: AsyncSession,
    subject: Subject,
    evaluation: Evaluation,
    name: str,
    **recorded: Any,
) -> None:
    """Apply transition ``name`` and audit it (status before and after, plus ``recorded``)."""
    before = evaluation.status
    transition(evaluation, name)
    await session.flush()
    after = {"status": evaluation.status, **recorded}
    await log(session, subject, evaluation.id, AUDITED_AS.get(name, name), {"status": before}, after)
