"""Person-level CSV exports, streamed: every evaluation of a subtree and year, and the people of a decision.

- Scope is checked **before** the response starts (``export:read``: org_admin or integration; 404 outside
  the caller's subtrees, 403 for a viewer), by the request's own session.
- The rows are produced while the response streams, by a session the generator opens itself from
  ``app.state.sessionmaker``: the request's session is function-scoped and is closed once the endpoint has
  returned. Evaluations are read in keyset batches of 1,000 (``id > last``), so memory holds one batch and
  no cursor stays open between batches; each batch's scores and evidence are two more queries.
- Format: the service's one CSV writer (``app.core.csvout``): UTF-8 **with a BOM** (Excel then opens
  Vietnamese names correctly), comma-separated, CRLF, one header row of stable English column names for
  scripts, and every text cell neutralised against formula injection (a name starting with ``= + - @``, a
  tab or a line break gets a leading ``'``). Citizen ids are masked as everywhere in the API.
- Scores: ``indicator_1`` … ``indicator_10`` are the *effective* scores (review score, else self score; 0
  without evidence that was not rejected: ``evaluations.scoring.effective_halves``); ``total``, ``passed``
  and ``digital_level`` are the stored result, empty until the review is complete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.policy import Action
from app.auth.scope import Subject, authorize
from app.core import csvout
from app.core.csvout import Cell
from app.core.errors import NotFound
from app.decisions import repository as decisions_repo
from app.decisions.models import RecognitionDecision
from app.evaluations.scoring import effective_halves
from app.orgs.service import get_visible as get_visible_unit
from app.people.schemas import mask_citizen_id
from app.reports import repository as repo

BATCH = 1000
INDICATORS = 10
EVALUATION_COLUMNS = (
    "evaluation_id",
    "person_id",
    "citizen_id",
    "full_name",
    "unit_code",
    "group",
    "year",
    "status",
    *(f"indicator_{n}" for n in range(1, INDICATORS + 1)),
    "total",
    "passed",
    "digital_level",
    "decision_number",
)
RECOGNISED_COLUMNS = (
    "decision_number",
    "signed_on",
    "decision_status",
    "evaluation_id",
    "person_id",
    "citizen_id",
    "full_name",
    "birth_year",
    "gender",
    "unit_code",
    "group",
    "year",
    "total",
    "digital_level",
)


def _points(halves: int | None) -> str:
    return "" if halves is None else f"{halves / 2:g}"


async def check_unit(session: AsyncSession, subject: Subject, unit_id: int) -> None:
    await get_visible_unit(session, subject, unit_id, Action.EXPORT_READ)


def evaluations_csv(
    sessionmaker: async_sessionmaker[AsyncSession], unit_id: int, year: int
) -> AsyncIterator[bytes]:
    return csvout.stream(EVALUATION_COLUMNS, _evaluation_batches(sessionmaker, unit_id, year))


async def _evaluation_batches(
    sessionmaker: async_sessionmaker[AsyncSession], unit_id: int, year: int
) -> AsyncIterator[list[list[Cell]]]:
    async with sessionmaker() as session:
        last = 0
        while batch := await repo.evaluations_batch(session, unit_id, year, last, BATCH):
            last = batch[-1][0]
            scores, evidence = await repo.scores_of(session, [r[0] for r in batch])
            effective: dict[int, dict[int, int]] = {}
            for evaluation_id, indicator_id, number, own, review in scores:
                has_evidence = (evaluation_id, indicator_id) in evidence
                effective.setdefault(evaluation_id, {})[number] = effective_halves(own, review, has_evidence)
            yield [_evaluation_row(r, effective.get(r[0], {})) for r in batch]


def _evaluation_row(row: Any, scores: dict[int, int]) -> list[Cell]:
    (eid, person_id, citizen_id, name, code, group, year, status, total, passed, level, number) = row
    return [
        eid,
        person_id,
        mask_citizen_id(citizen_id),
        name,
        code,
        group,
        year,
        status,
        *(_points(scores.get(n)) for n in range(1, INDICATORS + 1)),
        _points(total),
        passed,
        level,
        number,
    ]


async def visible_decision(session: AsyncSession, subject: Subject, decision_id: int) -> RecognitionDecision:
    missing = f"Recognition decision {decision_id} not found."
    decision = await decisions_repo.get_decision(session, decision_id)
    if decision is None:
        raise NotFound(missing)
    await authorize(session, subject, decision.org_unit_id, Action.EXPORT_READ, missing=missing)
    return decision


def recognised_csv(
    sessionmaker: async_sessionmaker[AsyncSession], decision: RecognitionDecision
) -> AsyncIterator[bytes]:
    return csvout.stream(RECOGNISED_COLUMNS, _recognised_batches(sessionmaker, decision))


async def _recognised_batches(
    sessionmaker: async_sessionmaker[AsyncSession], decision: RecognitionDecision
) -> AsyncIterator[list[list[Cell]]]:
    async with sessionmaker() as session:
        rows = await repo.decision_people(session, decision.id)
    head: list[Cell] = [decision.number, decision.signed_on.isoformat(), decision.status]
    for start in range(0, len(rows), BATCH):
        yield [[*head, *_recognised_row(row)] for row in rows[start : start + BATCH]]


def _recognised_row(row: Any) -> list[Cell]:
    eid, person_id, citizen_id, name, birth_year, gender, code, group, year, total, level, _ = row
    return [
        eid,
        person_id,
        mask_citizen_id(citizen_id),
        name,
        birth_year,
        gender,
        code,
        group,
        year,
        _points(total),
        level,
    ]
