"""The evaluation state machine and its access rule: the :data:`TRANSITIONS` table, loading an evaluation
for an action (404 when the caller cannot see it, 403 when they see it without the role — their own
included —, 403 for reviewing one's own, 409 when separation of duties forbids it), and the audit entry
every change writes.

Separation of duties (phân tách nhiệm vụ): on one evaluation, the user who fills it in for the person (or
collective), the user who reviews it and the user who signs its recognition are three different users,
whatever roles each holds — an org_admin who is also assessor and approver cannot carry an evaluation
from self-assessment to recognition alone, and neither can an admin. Who did which duty is read from the
evaluation's own audit rows (:data:`DUTIES`), so it holds across returns, resubmissions and revoked
decisions; a violation is 409 ``conflict`` raised before anything changes. Changes made without a user
(the ``cdht`` command's system subject) are not attributable and not checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.covers import cover_of
from app.auth.policy import Action
from app.auth.scope import Subject, authorize, authorize_above
from app.core import audit
from app.core.db import utcnow
from app.core.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from app.core.schemas import check_version
from app.evaluations import repository as repo
from app.evaluations.models import Evaluation, Evidence, Status

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


class Duty(StrEnum):
    """The three duties that separation of duties keeps apart."""

    EDIT = "edit"  # filling in for the person: self-assessment, evidence, submit, withdraw, reopen
    REVIEW = "review"  # the committee: review scores, return, complete the review
    SIGN = "sign"  # the recognition decision


# Each duty's audit actions, with how the message names what the user did.
DUTIES: dict[Duty, dict[str, str]] = {
    Duty.EDIT: {
        "self_assessed": "self-assessed",
        "submitted": "submitted",
        "evidence_added": "added evidence to",
        "evidence_deleted": "removed evidence from",
        "withdrawn": "withdrew",
        "reopened": "reopened",
    },
    Duty.REVIEW: {
        "reviewed": "reviewed",
        "returned": "returned",
        "review_completed": "completed the review of",
    },
    Duty.SIGN: {"recognised": "signed the recognition of"},
}
_DUTY_OF = {Action.EVALUATION_EDIT: Duty.EDIT, Action.EVALUATION_REVIEW: Duty.REVIEW}
_WANTS = {
    Duty.EDIT: "fill it in for the person",
    Duty.REVIEW: "review it",
    Duty.SIGN: "sign its recognition",
}
SEPARATION_RULE = (
    "Separation of duties: the user who fills in an evaluation for the person, the user who reviews it "
    "and the user who signs its recognition must be three different users."
)


def _others(duty: Duty) -> dict[str, tuple[Duty, str]]:
    """The audit actions of the duties other than ``duty``: action → (its duty, what it says was done)."""
    return {
        action: (d, done) for d, actions in DUTIES.items() if d != duty for action, done in actions.items()
    }


# Per duty, built once with the evaluations and the user bound: every edit and review runs it.
_SEPARATION = {
    duty: select(audit.AuditEntry.entity_id, audit.AuditEntry.action)
    .where(
        audit.AuditEntry.entity_type == "evaluation",
        audit.AuditEntry.entity_id.in_(bindparam("evaluation_ids", expanding=True)),
        audit.AuditEntry.actor_user_id == bindparam("user_id"),
        audit.AuditEntry.action.in_(list(_others(duty))),
    )
    .order_by(audit.AuditEntry.id)
    .limit(1)
    for duty in Duty
}


async def separate_duties(
    session: AsyncSession, subject: Subject, evaluation_ids: Sequence[int], duty: Duty
) -> None:
    """409 if ``subject`` did another duty on any of ``evaluation_ids`` (one query over the audit rows)."""
    if not subject.user_id or not evaluation_ids:
        return
    params = {"evaluation_ids": list(evaluation_ids), "user_id": subject.user_id}
    found = (await session.execute(_SEPARATION[duty], params)).first()
    if found is None:
        return
    evaluation_id, action = found
    other, done = _others(duty)[action]
    raise Conflict(
        f"{SEPARATION_RULE} You {done} evaluation {evaluation_id}, so you cannot also {_WANTS[duty]}.",
        details={
            "rule": "separation_of_duties",
            "evaluation_id": evaluation_id,
            "duty": duty.value,  # not "step": ErrorDetails.step is a reorganisation step number
            "done_by_you": {"duty": other.value, "action": action},
        },
    )


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


async def audit_step(
    session: AsyncSession,
    subject: Subject,
    evaluation_id: int,
    action: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Write the audit row of one step of an evaluation (who did what, the fields before and after)."""
    await audit.record_by(session, subject, "evaluation", evaluation_id, action, before, after)


@dataclass
class Loaded:
    evaluation: Evaluation
    own: bool
    evidence: list[Evidence] | None = None  # read with it, when asked for (``with_evidence``)


async def load(
    session: AsyncSession,
    subject: Subject,
    evaluation_id: int,
    action: Action,
    *,
    for_update: bool = False,
    with_evidence: bool = False,
) -> Loaded:
    """The evaluation if the subject may perform ``action``: 404 when they cannot see it, 403 when they
    see it without the role. The person themself may read and edit their own (a member of a household,
    or of a household of a clan, their family's or clan's), so any other action on it is 403, never 404
    (:func:`app.auth.scope.authorize`); reviewing one's own is 403 even for an assessor. A community or
    learning unit is reviewed by the level above: a role held at the unit itself does not review it
    (403). A load ``for_update`` is a load for a change: an edit or review that separation of duties
    forbids is 409. A load ``with_evidence`` brings the evaluation's evidence in the same statement."""
    missing = f"Evaluation {evaluation_id} not found."
    found = await repo.get_covered(
        session, evaluation_id, cover_of(subject, action), for_update=for_update, with_evidence=with_evidence
    )
    if found is None:
        raise NotFound(missing)
    evaluation = found.evaluation
    own = await is_own(session, subject, evaluation)
    await authorize(
        session, subject, evaluation.org_unit_id, action, own=own, missing=missing, allowed=found.covered
    )
    if own and action == Action.EVALUATION_REVIEW:
        raise Forbidden("An assessor never reviews their own evaluation.")
    if action == Action.EVALUATION_REVIEW and evaluation.subject_unit_id is not None:
        await authorize_above(session, subject, evaluation.subject_unit_id, action)
    if for_update and action in _DUTY_OF:
        await separate_duties(session, subject, [evaluation.id], _DUTY_OF[action])
    return Loaded(evaluation, own, found.evidence)


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
    after = {"status": evaluation.status, **recorded}
    await audit_step(session, subject, evaluation.id, AUDITED_AS.get(name, name), {"status": before}, after)
    await session.flush()  # the change and its audit row in one flush
