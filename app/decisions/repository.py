"""Every query of recognition decisions: one decision, a page of them, the evaluations each lists, and the
evaluations a decision is about to recognise (locked, within the signing unit's subtree)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.scope import subtree_ids
from app.core.pagination import PageParams, fetch_page
from app.decisions.models import DecisionItem, RecognitionDecision
from app.evaluations.models import Evaluation


async def get_decision(
    session: AsyncSession, decision_id: int, *, for_update: bool = False
) -> RecognitionDecision | None:
    stmt = select(RecognitionDecision).where(RecognitionDecision.id == decision_id)
    if for_update:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def find_decision(
    session: AsyncSession, org_unit_id: int, year: int, number: str
) -> RecognitionDecision | None:
    stmt = select(RecognitionDecision).where(
        RecognitionDecision.org_unit_id == org_unit_id,
        RecognitionDecision.year == year,
        RecognitionDecision.number == number,
    )
    return await session.scalar(stmt)


async def page_decisions(
    session: AsyncSession, where: list[ColumnElement[bool]], params: PageParams
) -> tuple[list[RecognitionDecision], int]:
    stmt = (
        select(RecognitionDecision)
        .where(*where)
        .order_by(RecognitionDecision.signed_on.desc(), RecognitionDecision.id)
    )
    return await fetch_page(session, stmt, params)


async def decision_items(session: AsyncSession, decision_ids: Sequence[int]) -> dict[int, list[int]]:
    result: dict[int, list[int]] = {d: [] for d in decision_ids}
    if decision_ids:
        stmt = (
            select(DecisionItem)
            .where(DecisionItem.decision_id.in_(decision_ids))
            .order_by(DecisionItem.evaluation_id)
        )
        for item in (await session.scalars(stmt)).all():
            result[item.decision_id].append(item.evaluation_id)
    return result


async def evaluations_by_ids(
    session: AsyncSession, ids: Sequence[int], *, within_unit: int | None = None, for_update: bool = False
) -> list[Evaluation]:
    """The evaluations with these ids — only those in ``within_unit``'s subtree when given, so nothing
    outside it is locked or read."""
    stmt = select(Evaluation).where(Evaluation.id.in_(list(ids))).order_by(Evaluation.id)
    if within_unit is not None:
        stmt = stmt.where(Evaluation.org_unit_id.in_(subtree_ids([within_unit])))
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return list((await session.scalars(stmt)).all())
