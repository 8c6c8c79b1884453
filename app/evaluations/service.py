"""The person's side of the evaluation workflow: opening the year's evaluation, self-assessing, submitting,
withdrawing and reopening (the person, or an org_admin on their behalf). Shared score bookkeeping for the
committee's side lives here too (``apply_scores``)."""

from __future__ import annotations

from datetime import date
from typing import Any, TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import counters
from app.auth.policy import Action
from app.auth.scope import Subject, authorize
from app.core.audit import user_id_of
from app.core.dates import today
from app.core.db import utcnow
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.criteria import repository as criteria_repo
from app.criteria import service as criteria
from app.evaluations import repository as repo
from app.evaluations.models import (
    COLLECTIVE_RECORD_TITLES,
    UNIT_TITLE_KINDS,
    DigitalLevel,
    Evaluation,
    Score,
    Status,
    Title,
)
from app.evaluations.reads import Scored, scored, to_read
from app.evaluations.schemas import EvaluationCreate, EvaluationRead, ScoreInput, SelfAssessment
from app.evaluations.scoring import to_halves, to_points
from app.evaluations.workflow import EDITABLE, audit_step, begin, move, require_editable, require_version
from app.orgs import repository as orgs_repo
from app.orgs import service as orgs
from app.orgs.service import ensure_open
from app.people import service as people
from app.people import transfers

# The first criteria set of the programme (244/QĐ-KHVN, 2022, which 324/QĐ-KHVN of 2023 replaced) was in
# force from 2022: no evaluation is of an earlier year, nor of a year that has not begun.
FIRST_EVALUATION_YEAR = 2022


def check_year(year: int) -> None:
    if not FIRST_EVALUATION_YEAR <= year <= today().year:
        raise ValidationFailed(
            f"The year must lie between {FIRST_EVALUATION_YEAR} (the first criteria set in force) and "
            f"the current year {today().year}.",
            details={"field": "year"},
        )


async def create(session: AsyncSession, subject: Subject, data: EvaluationCreate) -> EvaluationRead:
    check_year(data.year)
    if data.title == Title.LEARNING_CITIZEN:
        evaluation = await _personal(session, subject, data)
    elif data.title in COLLECTIVE_RECORD_TITLES:
        evaluation = await _of_collective(session, subject, data)
    else:
        evaluation = await _of_unit(session, subject, data)
    await criteria_repo.freeze(session, evaluation.criteria_set_id)
    session.add(evaluation)
    await session.flush()
    for indicator in await criteria_repo.indicators_of(session, evaluation.criteria_set_id):
        session.add(Score(evaluation_id=evaluation.id, indicator_id=indicator.id))
    await session.flush()
    await counters.evaluation_created(session, evaluation)
    await audit_step(
        session,
        subject,
        evaluation.id,
        "created",
        after={"year": data.year, "title": data.title.value, "criteria_set_id": evaluation.criteria_set_id},
    )
    return await to_read(session, evaluation)


def _new(subject: Subject, data: EvaluationCreate, org_unit_id: int, criteria_set_id: int) -> Evaluation:
    return Evaluation(
        title=data.title.value,
        org_unit_id=org_unit_id,
        year=data.year,
        criteria_set_id=criteria_set_id,
        status=Status.DRAFT.value,
        created_by=user_id_of(subject),
    )


async def _personal(session: AsyncSession, subject: Subject, data: EvaluationCreate) -> Evaluation:
    person = await people.get_visible(session, subject, data.subject_id, Action.PERSON_READ)
    await authorize(
        session,
        subject,
        person.org_unit_id,
        Action.EVALUATION_EDIT,
        own=person.id == subject.person_id,
        missing=f"Person {person.id} not found.",
    )
    unit = await orgs_repo.get(session, person.org_unit_id)
    assert unit is not None
    ensure_open(unit, "an evaluation of that year", data.year)
    first = await transfers.first_day(session, person.id)
    if first is not None and first > date(data.year, 12, 31):
        raise Conflict(
            f"Person {person.id} belongs to the programme's records from {first.isoformat()}; an evaluation "
            f"of {data.year} needs them to have belonged on 31 December {data.year}: correct member_since "
            f"(PATCH /people/{person.id}) if they did.",
            details={"field": "year", "member_since": first.isoformat()},
        )
    if await repo.get_for_person_year(session, person.id, data.year) is not None:
        raise Conflict(f"Person {person.id} already has an evaluation for {data.year}.")
    criteria_set = await criteria.set_for_person(session, person.group, person.org_unit_id)
    evaluation = _new(subject, data, person.org_unit_id, criteria_set.id)
    evaluation.person_id = person.id
    return evaluation


async def _of_collective(session: AsyncSession, subject: Subject, data: EvaluationCreate) -> Evaluation:
    """A learning family (a household) or a learning clan: prepared by an org_admin of its unit or by a
    member on the family's behalf."""
    kind = "household" if data.title == Title.LEARNING_FAMILY else "clan"
    missing = f"{kind.capitalize()} {data.subject_id} not found."
    collective = await repo.get_collective(session, data.subject_id, kind)
    if collective is None:
        raise NotFound(missing)
    probe = Evaluation(title=data.title.value, collective_id=collective.id)
    own = subject.person_id is not None and await repo.is_member_today(session, subject.person_id, probe)
    await authorize(
        session, subject, collective.org_unit_id, Action.EVALUATION_EDIT, own=own, missing=missing
    )
    _ensure_alive(collective.name, collective.valid_to, data.year, {f"{kind}_id": collective.id})
    if collective.valid_from is not None and collective.valid_from > date(data.year, 12, 31):
        raise Conflict(
            f"{collective.name} is recorded from {collective.valid_from.isoformat()}; it has no evaluation "
            f"of {data.year}.",
            details={f"{kind}_id": collective.id, "valid_from": collective.valid_from.isoformat()},
        )
    unit = await orgs_repo.get(session, collective.org_unit_id)
    assert unit is not None
    ensure_open(unit, "an evaluation of that year", data.year)
    label = f"{kind.capitalize()} {collective.id}"
    evaluation = await _collective_new(session, subject, data, collective.org_unit_id, label)
    evaluation.collective_id = collective.id
    return evaluation


async def _of_unit(session: AsyncSession, subject: Subject, data: EvaluationCreate) -> Evaluation:
    """A learning community (a village) or a learning unit (an agency, school or enterprise): the unit
    self-assesses (its org_admin); the level above reviews and recognises it."""
    unit = await orgs.get_visible(session, subject, data.subject_id, Action.EVALUATION_EDIT)
    kinds = UNIT_TITLE_KINDS[data.title]
    if unit.kind not in kinds:
        raise ValidationFailed(
            f"A {data.title.value} evaluation is of a unit of kind {', '.join(sorted(kinds))}; "
            f"{unit.name} is a {unit.kind}.",
            details={"field": "org_unit_id", "kinds": sorted(kinds)},
        )
    ensure_open(unit, "an evaluation of that year", data.year)
    evaluation = await _collective_new(session, subject, data, unit.id, unit.name, unit_subject=True)
    evaluation.subject_unit_id = unit.id
    return evaluation


async def _collective_new(
    session: AsyncSession,
    subject: Subject,
    data: EvaluationCreate,
    unit_id: int,
    label: str,
    *,
    unit_subject: bool = False,
) -> Evaluation:
    """A new collective evaluation (one per subject and year: 409 otherwise) with its title's set."""
    column = Evaluation.subject_unit_id if unit_subject else Evaluation.collective_id
    if await repo.get_for_subject_year(session, column, data.subject_id, data.year):
        raise Conflict(f"{label} already has a {data.title.value} evaluation for {data.year}.")
    criteria_set = await criteria.set_for_title(session, data.title.value, unit_id)
    return _new(subject, data, unit_id, criteria_set.id)


def _ensure_alive(name: str, valid_to: date | None, year: int, details: dict[str, Any]) -> None:
    if valid_to is not None and valid_to.year < year:
        raise Conflict(
            f"{name} ended on {valid_to.isoformat()}; it has no evaluation of {year}.",
            details={**details, "valid_to": valid_to.isoformat()},
        )


class Change(TypedDict):
    """What a step changed, for its audit row (JSON): each indicator's score and note keyed by its
    number as a string (the key JSON stores), beside fields such as ``status`` keyed by name."""

    before: dict[str, Any]
    after: dict[str, Any]


async def apply_scores(
    session: AsyncSession, evaluation: Evaluation, inputs: list[ScoreInput], *, review: bool
) -> tuple[Change, list[Scored]]:
    """Set the scores given; what changed, and every score (the ones set included) with its indicator,
    by number, for the step's answer (``reads.to_read``)."""
    pairs = {i.id: (s, i) for s, i in await scored(session, evaluation)}
    seen: set[int] = set()
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
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
            before[str(indicator.number)] = {"score": old[0], "note": old[1]}
            after[str(indicator.number)] = {"score": new[0], "note": new[1]}
    evaluation.updated_at = utcnow()
    return Change(before=before, after=after), list(pairs.values())


def set_digital_level(evaluation: Evaluation, field: str, level: DigitalLevel, change: Change) -> None:
    """The person's declaration or the assessor's confirmation of the digital level (personal titles)."""
    if not evaluation.personal:
        raise ValidationFailed(
            "A digital level belongs to personal evaluations only.", details={"field": "digital_level"}
        )
    before = getattr(evaluation, field)
    if before != level.value:
        setattr(evaluation, field, level.value)
        change["before"][field], change["after"][field] = before, level.value


async def self_assess(
    session: AsyncSession, subject: Subject, evaluation_id: int, data: SelfAssessment, if_match: int | None
) -> EvaluationRead:
    require_version(data.version, if_match)
    evaluation = await begin(session, subject, evaluation_id, Action.EVALUATION_EDIT, data.version, if_match)
    require_editable(evaluation, "Self-assessment")
    change, pairs = await apply_scores(session, evaluation, data.scores, review=False)
    if data.digital_level is not None:
        set_digital_level(evaluation, "declared_digital_level", data.digital_level, change)
    await audit_step(session, subject, evaluation.id, "self_assessed", change["before"], change["after"])
    await session.flush()  # with its audit row: one flush; the answer shows the new version
    return await to_read(session, evaluation, pairs)


async def submit(
    session: AsyncSession, subject: Subject, evaluation_id: int, version: int | None
) -> EvaluationRead:
    evaluation = await begin(session, subject, evaluation_id, Action.EVALUATION_EDIT, version)
    pairs = await scored(session, evaluation)
    missing = [i.number for s, i in pairs if s.self_halves is None]
    if missing and evaluation.status in EDITABLE:
        raise Conflict(
            "Every indicator needs a self score before submitting.", details={"missing_indicators": missing}
        )
    evaluation.submitted_at = utcnow()
    evaluation.return_reason = None
    await move(session, subject, evaluation, "submit")
    return await to_read(session, evaluation, pairs)


async def person_transition(
    session: AsyncSession, subject: Subject, evaluation_id: int, name: str, version: int | None
) -> EvaluationRead:
    """withdraw / reopen, by the person or an org_admin on their behalf."""
    evaluation = await begin(session, subject, evaluation_id, Action.EVALUATION_EDIT, version)
    await move(session, subject, evaluation, name)
    return await to_read(session, evaluation)
