"""Every query of evaluations, scores and evidence."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Row, Select, SQLColumnExpression, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.scope import Cover, covered
from app.collectives.models import ClanHousehold, Collective, HouseholdMember
from app.core.pagination import PageParams, fetch_page_rows
from app.evaluations.models import Evaluation, Evidence, Score, Title

# The statements every evaluation request runs (its load, its scores, its evidence) are built once with
# their values bound: building a statement costs more than running it from SQLAlchemy's compiled cache.
# The load, per shape of the caller's cover and whether it is for an update.
_GET: dict[tuple[str, bool], Select[Evaluation, bool]] = {}
_SCORES = select(Score).where(Score.evaluation_id == bindparam("evaluation_id"))
_EVIDENCE_OF = (
    select(Evidence).where(Evidence.evaluation_id == bindparam("evaluation_id")).order_by(Evidence.id)
)


async def get_covered(
    session: AsyncSession, evaluation_id: int, cover: Cover, *, for_update: bool = False
) -> tuple[Evaluation, bool] | None:
    """The evaluation and whether ``cover`` reaches its unit (``scope.covered``), in one statement; a load
    ``for_update`` locks the row: concurrent writers queue on PostgreSQL, and the later one then sees the
    new version (409)."""
    key = (cover.shape, for_update)
    stmt = _GET.get(key)
    if stmt is None:
        stmt = select(Evaluation, covered(cover.shape, Evaluation.org_unit_id)).where(
            Evaluation.id == bindparam("evaluation_id")
        )
        if for_update:
            stmt = stmt.with_for_update(of=Evaluation).execution_options(populate_existing=True)
        _GET[key] = stmt
    row = (await session.execute(stmt, {"evaluation_id": evaluation_id, **cover.params})).first()
    return None if row is None else (row[0], bool(row[1]))


async def get_for_person_year(session: AsyncSession, person_id: int, year: int) -> Evaluation | None:
    return await session.scalar(
        select(Evaluation).where(Evaluation.person_id == person_id, Evaluation.year == year)
    )


async def get_for_subject_year(
    session: AsyncSession, column: SQLColumnExpression[int | None], subject_id: int, year: int
) -> Evaluation | None:
    """The evaluation of a collective subject (``Evaluation.collective_id`` or ``subject_unit_id``)."""
    stmt = select(Evaluation).where(column == subject_id, Evaluation.year == year)
    return (await session.scalars(stmt)).first()


async def get_collective(session: AsyncSession, collective_id: int, kind: str) -> Collective | None:
    stmt = select(Collective).where(Collective.id == collective_id, Collective.kind == kind)
    return (await session.scalars(stmt)).first()


async def is_member_today(session: AsyncSession, person_id: int, evaluation: Evaluation) -> bool:
    """Whether the person belongs today to the household evaluated, or to a household of the clan."""
    if evaluation.collective_id is None:
        return False
    household = select(HouseholdMember.household_id).where(
        HouseholdMember.person_id == person_id, HouseholdMember.valid_to.is_(None)
    )
    if evaluation.title == Title.LEARNING_FAMILY:
        stmt = household.where(HouseholdMember.household_id == evaluation.collective_id)
    else:
        stmt = select(ClanHousehold.id).where(
            ClanHousehold.clan_id == evaluation.collective_id,
            ClanHousehold.valid_to.is_(None),
            ClanHousehold.household_id.in_(household.scalar_subquery()),
        )
    return (await session.scalar(select(exists(stmt)))) or False


# What a list shows of each evaluation (``reads.summary_of``): columns, not entities, so a page of them
# costs no identity map and no ORM object per row.
_SUMMARY = select(
    Evaluation.id,
    Evaluation.title,
    Evaluation.person_id,
    Evaluation.collective_id,
    Evaluation.org_unit_id,
    Evaluation.year,
    Evaluation.criteria_set_id,
    Evaluation.status,
    Evaluation.version,
    Evaluation.decision_id,
    Evaluation.updated_at,
    Evaluation.total_halves,
    Evaluation.passed,
    Evaluation.failing_indicators,
    Evaluation.digital_level,
    Evaluation.grade,
)


async def summary_page(
    session: AsyncSession, where: list[ColumnElement[bool]], params: PageParams
) -> tuple[list[Row[Any]], int]:
    stmt = _SUMMARY.where(*where).order_by(Evaluation.year.desc(), Evaluation.id)
    return await fetch_page_rows(session, stmt, params)


async def scores_of(session: AsyncSession, evaluation_id: int) -> list[Score]:
    """The evaluation's scores, in no order (``reads.scored`` puts them in their indicators' order)."""
    return list((await session.scalars(_SCORES, {"evaluation_id": evaluation_id})).all())


async def evidence_of(session: AsyncSession, evaluation_id: int) -> list[Evidence]:
    return list((await session.scalars(_EVIDENCE_OF, {"evaluation_id": evaluation_id})).all())


async def get_evidence(session: AsyncSession, evidence_id: int) -> Evidence | None:
    return await session.get(Evidence, evidence_id)


async def stored_keys(session: AsyncSession, keys: list[str]) -> set[str]:
    """Of ``keys``, the storage keys that an evidence row holds."""
    stmt = select(Evidence.storage_key).where(Evidence.storage_key.in_(keys))
    return set((await session.scalars(stmt)).all())
