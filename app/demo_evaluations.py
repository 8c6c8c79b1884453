"""Demo evaluations in every status, driven through the real workflow services (so scores, evidence,
results, decisions and the audit trail are exactly what users would have produced)."""

from __future__ import annotations

import io
import random
from collections import defaultdict
from datetime import date

from fastapi import UploadFile
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.scope import Subject
from app.evaluations import decisions, evidence, reads, service
from app.evaluations import review as committee
from app.evaluations.models import Evaluation, Status
from app.evaluations.schemas import (
    DecisionCreate,
    EvaluationCreate,
    EvaluationRead,
    Review,
    ScoreInput,
    SelfAssessment,
)
from app.evaluations.storage import EvidenceStore
from app.orgs.models import OrgUnit
from app.people.models import Person

DEMO_PDF = b"%PDF-1.4\n% CDHT demo evidence\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

Mix = list[tuple[Status, float]]

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


def _plan(count: int, mix: Mix) -> list[Status]:
    statuses: list[Status] = []
    for status, share in mix:
        statuses += [status] * max(1, round(count * share))
    return (statuses + [Status.DRAFT] * count)[:count]


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
        ScoreInput(indicator_id=s.indicator_id, score=rng.randint(low * 2, 20) / 2) for s in evaluation.scores
    ]
    evaluation = await service.self_assess(
        session, actor, evaluation.id, SelfAssessment(version=evaluation.version, scores=scores), None
    )
    for score in evaluation.scores:
        upload = UploadFile(io.BytesIO(DEMO_PDF), filename=f"minh-chung-chi-tieu-{score.number}.pdf")
        await evidence.upload(
            session, actor, store, len(DEMO_PDF), evaluation.id, score.indicator_id, upload, None
        )
    return await reads.get(session, actor, evaluation.id)


async def _drive(session: AsyncSession, actor: Subject, evaluation: EvaluationRead, target: Status) -> None:
    if target == Status.WITHDRAWN:
        await service.person_transition(session, actor, evaluation.id, "withdraw", None)
        return
    evaluation = await service.submit(session, actor, evaluation.id, None)
    if target == Status.SUBMITTED:
        return
    first = evaluation.scores[0]
    review = Review(
        version=evaluation.version,
        scores=[
            ScoreInput(indicator_id=first.indicator_id, score=first.self_score or 0, note="Đã đối chiếu")
        ],
    )
    evaluation = await committee.review(session, actor, evaluation.id, review, None)
    if target == Status.IN_REVIEW:
        return
    if target == Status.RETURNED:
        await committee.return_to_person(session, actor, evaluation.id, "Đề nghị bổ sung minh chứng.", None)
        return
    await committee.complete_review(session, actor, evaluation.id, None)


async def load_demo_evaluations(
    session: AsyncSession,
    actor: Subject,
    store: EvidenceStore,
    skip_person_ids: set[int],
    year: int,
    mix: Mix = MIX,
) -> list[str]:
    rng = random.Random(677 + year)  # noqa: S311 — demo data, not secrets
    people = (
        await session.scalars(select(Person).where(Person.id.not_in(skip_person_ids)).order_by(Person.id))
    ).all()
    by_unit: dict[int, list[Person]] = defaultdict(list)
    for person in people:
        by_unit[person.org_unit_id].append(person)
    to_recognise: dict[int, list[int]] = defaultdict(list)
    for unit_id, members in by_unit.items():
        for person, target in zip(members, _plan(len(members), mix), strict=True):
            # Recognised ones must pass; about half of the merely reviewed ones fail the 80/5 rule.
            strong = target == Status.RECOGNISED or (target == Status.REVIEWED and rng.random() > 0.5)
            evaluation = await _prepare(session, actor, store, person, rng, strong, year)
            if target == Status.DRAFT:
                continue
            await _drive(session, actor, evaluation, target)
            if target == Status.RECOGNISED:
                to_recognise[unit_id].append(evaluation.id)
    codes = dict((await session.execute(select(OrgUnit.id, OrgUnit.code))).tuples().all())
    for number, (unit_id, ids) in enumerate(sorted(to_recognise.items()), start=1):
        passed = (
            await session.scalars(select(Evaluation.id).where(Evaluation.id.in_(ids), Evaluation.passed))
        ).all()
        if passed:
            code = codes.get(unit_id) or str(unit_id)
            data = DecisionCreate(
                org_unit_id=unit_id,
                year=year,
                number=f"{number}/QĐ-{code}",
                signed_on=date(year, 12, 20),
                evaluation_ids=list(passed),
            )
            await decisions.create(session, actor, data)
    stmt = (
        select(Evaluation.status, func.count())
        .where(Evaluation.year == year)
        .group_by(Evaluation.status)
        .order_by(Evaluation.status)
    )
    counts = (await session.execute(stmt)).all()
    return [f"Demo evaluations {year}: " + ", ".join(f"{status} {n}" for status, n in counts)]
