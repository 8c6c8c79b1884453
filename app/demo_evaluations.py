"""Demo evaluations in every status, driven through the real workflow services (so scores, evidence,
results, decisions and the audit trail are exactly what users would have produced). The helpers that
fill in, drive and recognise an evaluation serve the collective titles too (``demo_collectives``).

Separation of duties holds in the demo as in the API: a :class:`Committee` of three demo users — a clerk
who fills evaluations in for people, an assessor who reviews them and an approver who signs — does each
evaluation's three duties, so its history names three different users.
"""

from __future__ import annotations

import io
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from fastapi import UploadFile
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository as auth_repo
from app.auth.models import User
from app.auth.scope import Subject
from app.decisions import service as decisions
from app.decisions.schemas import DecisionCreate
from app.evaluations import evidence, reads, service
from app.evaluations import review as review_side
from app.evaluations.models import DigitalLevel, Evaluation, Status
from app.evaluations.schemas import (
    EvaluationCreate,
    EvaluationRead,
    Review,
    ScoreInput,
    SelfAssessment,
)
from app.evaluations.storage import EvidenceStore
from app.orgs.models import OrgKind, OrgUnit
from app.people.models import Group, Person

DEMO_PDF = b"%PDF-1.4\n% CDHT demo evidence\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ADULT_AGE = 15  # children do not register for the title (the metrics' adults: 15 or more)

Mix = list[tuple[Status, float]]
DIGITAL_LEVELS = (DigitalLevel.NONE, DigitalLevel.BASIC, DigitalLevel.PROFICIENT)
# Declared digital levels (none, basic, proficient): residents of the demo's rural communes are less at
# ease with digital services than staff and pupils; the committee confirms or lowers the declaration.
DIGITAL_WEIGHTS = {Group.RESIDENT.value: (30, 40, 30)}
DIGITAL_WEIGHTS_OTHERS = (15, 45, 40)

# Share of each status per unit (the rest stay draft): most recognised, a few in every other state.
MIX: Mix = [
    (Status.RECOGNISED, 0.55),
    (Status.REVIEWED, 0.1),
    (Status.IN_REVIEW, 0.07),
    (Status.SUBMITTED, 0.1),
    (Status.RETURNED, 0.05),
    (Status.WITHDRAWN, 0.03),
]


# A closed year: everyone's evaluation was reviewed, fewer were recognised than now.
CLOSED_YEAR_MIX: Mix = [(Status.RECOGNISED, 0.45), (Status.REVIEWED, 0.55)]


# The demo's committee (username, full name): they act with the reach of the subject running the demo and
# hold no role and no usable password (they cannot log in; they sign the history).
COMMITTEE_USERS = (
    ("demo.clerk", "Văn thư kê khai thay (demo)"),
    ("demo.assessor", "Tổ đánh giá (demo)"),
    ("demo.approver", "Lãnh đạo ký quyết định công nhận (demo)"),
)
NO_PASSWORD = "!"  # not a hash any verifier accepts


@dataclass(frozen=True)
class Committee:
    """Who does which duty of the demo's evaluations (phân tách nhiệm vụ): three different users."""

    clerk: Subject  # opens, self-assesses, adds evidence and submits on the person's behalf
    assessor: Subject  # reviews, returns, completes the review
    approver: Subject  # signs the recognition decisions


async def committee(session: AsyncSession, actor: Subject) -> Committee:
    """The committee (its users made on first use), each acting with ``actor``'s reach."""
    subjects: list[Subject] = []
    for username, full_name in COMMITTEE_USERS:
        user = await auth_repo.get_user_by_username(session, username)
        if user is None:
            user = User(username=username, password_hash=NO_PASSWORD, full_name=full_name, org_unit_id=None)
            session.add(user)
            await session.flush()
        subjects.append(
            Subject(user_id=user.id, username=username, is_admin=actor.is_admin, grants=actor.grants)
        )
    return Committee(*subjects)


def statuses(count: int, mix: Mix) -> list[Status]:
    """``count`` target statuses in the shares of ``mix`` (at least one of each), the rest draft."""
    planned: list[Status] = []
    for status, share in mix:
        planned += [status] * max(1, round(count * share))
    return (planned + [Status.DRAFT] * count)[:count]


async def self_assess(
    session: AsyncSession,
    actor: Subject,
    store: EvidenceStore,
    evaluation: EvaluationRead,
    scores: list[ScoreInput],
    digital_level: DigitalLevel | None = None,
) -> EvaluationRead:
    """The self-assessment, then one piece of evidence per indicator (as the person or unit would)."""
    assessment = SelfAssessment(version=evaluation.version, scores=scores, digital_level=digital_level)
    evaluation = await service.self_assess(session, actor, evaluation.id, assessment, None)
    files = [
        evidence.NewEvidence(
            score.indicator_id,
            UploadFile(io.BytesIO(DEMO_PDF), filename=f"minh-chung-chi-tieu-{score.number}.pdf"),
        )
        for score in evaluation.scores
    ]
    await evidence.upload_many(session, actor, store, len(DEMO_PDF), evaluation.id, files)
    return await reads.get(session, actor, evaluation.id)


async def _prepare(
    session: AsyncSession,
    actor: Subject,
    store: EvidenceStore,
    person: Person,
    rng: random.Random,
    strong: bool,
    year: int,
) -> EvaluationRead:
    evaluation = await service.create(session, actor, EvaluationCreate(person_id=person.id, year=year))
    low = 8 if strong else 4
    scores = [
        ScoreInput(indicator_id=s.indicator_id, score=Decimal(rng.randint(low * 2, 20)) / 2)
        for s in evaluation.scores
    ]
    weights = DIGITAL_WEIGHTS.get(person.group, DIGITAL_WEIGHTS_OTHERS)
    declared = rng.choices(DIGITAL_LEVELS, weights=weights)[0]
    return await self_assess(session, actor, store, evaluation, scores, declared)


async def drive(session: AsyncSession, team: Committee, evaluation: EvaluationRead, target: Status) -> None:
    """Take a self-assessed evaluation to ``target`` (up to reviewed; recognition is :func:`recognise`):
    the clerk submits or withdraws, the assessor reviews."""
    if target == Status.WITHDRAWN:
        await service.person_transition(session, team.clerk, evaluation.id, "withdraw", None)
        return
    evaluation = await service.submit(session, team.clerk, evaluation.id, None)
    if target == Status.SUBMITTED:
        return
    first = evaluation.scores[0]
    declared = evaluation.declared_digital_level  # personal titles only (None for collective ones)
    # One in five "proficient" declarations is judged basic on the evidence.
    lowered = declared == DigitalLevel.PROFICIENT and evaluation.id % 5 == 0
    review = Review(
        version=evaluation.version,
        scores=[
            ScoreInput(
                indicator_id=first.indicator_id,
                score=Decimal(str(first.self_score or 0)),  # as the request's JSON number would be read
                note="Đã đối chiếu",
            )
        ],
        digital_level=DigitalLevel.BASIC if lowered else declared,
    )
    reviewer = team.assessor
    evaluation = await review_side.review(session, reviewer, evaluation.id, review, None)
    if target == Status.IN_REVIEW:
        return
    if target == Status.RETURNED:
        await review_side.return_to_person(
            session, reviewer, evaluation.id, "Đề nghị bổ sung minh chứng.", None
        )
        return
    await review_side.complete_review(session, reviewer, evaluation.id, None)


async def recognise(
    session: AsyncSession,
    team: Committee,
    year: int,
    candidates: dict[int, list[int]],
    *,
    series: str = "",
    signed_on: date | None = None,
) -> None:
    """One decision per signing unit (``candidates``: evaluation ids by unit) for those that passed, signed
    by the committee's approver; ``series`` tells the decisions of one title from another's."""
    codes = dict((await session.execute(select(OrgUnit.id, OrgUnit.code))).all())
    for number, (unit_id, ids) in enumerate(sorted(candidates.items()), start=1):
        passed = (
            await session.scalars(
                select(Evaluation.id).where(Evaluation.id.in_(ids), Evaluation.passed.is_(True))
            )
        ).all()
        if passed:
            code = codes.get(unit_id) or str(unit_id)
            data = DecisionCreate(
                org_unit_id=unit_id,
                year=year,
                number=f"{number}/QĐ-{code}{series}",
                signed_on=signed_on or date(year, 12, 20),
                evaluation_ids=list(passed),
            )
            await decisions.create(session, team.approver, data)


async def signing_units(session: AsyncSession) -> dict[int, int]:
    """Who signs for people of each unit: the unit itself, but the commune for a village's residents."""
    rows = (await session.execute(select(OrgUnit.id, OrgUnit.kind, OrgUnit.parent_id))).all()
    return {i: p if kind == OrgKind.VILLAGE and p is not None else i for i, kind, p in rows}


async def load_demo_evaluations(
    session: AsyncSession,
    actor: Subject,
    store: EvidenceStore,
    skip_person_ids: set[int],
    year: int,
    mix: Mix = MIX,
) -> list[str]:
    """The year's personal evaluations of adults (``mix`` in each group of each unit) and the decisions
    recognising them (the commune signs for its villages' residents), by the :class:`Committee`."""
    team = await committee(session, actor)
    rng = random.Random(677 + year)  # noqa: S311 — demo data, not secrets
    adults = or_(
        Person.group != Group.RESIDENT.value,
        Person.birth_year.is_(None),
        Person.birth_year <= year - ADULT_AGE,
    )
    stmt = select(Person).where(Person.id.not_in(skip_person_ids), adults).order_by(Person.id)
    # The shares hold in each group of each unit (a school's pupils as well as its staff).
    by_unit: dict[tuple[int, str], list[Person]] = defaultdict(list)
    for person in (await session.scalars(stmt)).all():
        by_unit[person.org_unit_id, person.group].append(person)
    signer = await signing_units(session)
    to_recognise: dict[int, list[int]] = defaultdict(list)
    for (unit_id, _), members in by_unit.items():
        for person, target in zip(members, statuses(len(members), mix), strict=True):
            # Recognised ones must pass; about half of the merely reviewed ones fail the 80/5 rule.
            strong = target == Status.RECOGNISED or (target == Status.REVIEWED and rng.random() > 0.5)
            evaluation = await _prepare(session, team.clerk, store, person, rng, strong, year)
            if target == Status.DRAFT:
                continue
            await drive(session, team, evaluation, target)
            if target == Status.RECOGNISED:
                to_recognise[signer[unit_id]].append(evaluation.id)
    await recognise(session, team, year, to_recognise)
    return [
        f"Demo evaluations {year}: " + await count_statuses(session, year, Evaluation.person_id.is_not(None))
    ]


async def count_statuses(session: AsyncSession, year: int, which: ColumnElement[bool]) -> str:
    """The evaluations of ``year`` that ``which`` selects, by status: "recognised 86, reviewed 16, …"."""
    stmt = (
        select(Evaluation.status, func.count())
        .where(Evaluation.year == year, which)
        .group_by(Evaluation.status)
        .order_by(Evaluation.status)
    )
    counts = (await session.execute(stmt)).all()
    return ", ".join(f"{status} {n}" for status, n in counts) or "none"
