"""Every query of evaluations, scores and evidence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.covers import Cover, Shape, covered
from app.collectives.models import ClanHousehold, Collective, HouseholdMember
from app.core.db import rows_of
from app.core.pagination import Paged, PageParams, fetch_page_rows, paged
from app.evaluations.models import Evaluation, Evidence, Score, Title

# The statements every evaluation request runs (its load, its scores, its evidence) are built once with
# their values bound: building a statement costs more than running it from SQLAlchemy's compiled cache.
# The load, per shape of the caller's cover, whether it is for an update and whether it brings the
# evidence.
_GET: dict[tuple[Shape, bool, bool], Select[*tuple[Any, ...]]] = {}
_SCORES = select(Score).where(Score.evaluation_id == bindparam("evaluation_id"))
_SCORE_VALUES = select(
    Score.indicator_id, Score.self_halves, Score.review_halves, Score.note, Score.review_note
).where(Score.evaluation_id == bindparam("evaluation_id"))
_EVIDENCE_OF = (
    select(Evidence).where(Evidence.evaluation_id == bindparam("evaluation_id")).order_by(Evidence.id)
)


@dataclass(frozen=True, slots=True)
class Found:
    evaluation: Evaluation
    covered: bool  # the caller's cover reaches its unit (``covers.covered``)
    evidence: list[Evidence] | None  # by id, when asked for (the caller's right to see it not yet checked)


def _get_statement(shape: Shape, for_update: bool, with_evidence: bool) -> Select[*tuple[Any, ...]]:
    key = (shape, for_update, with_evidence)
    found = _GET.get(key)
    if found is not None:
        return found
    stmt: Select[*tuple[Any, ...]] = select(Evaluation, covered(shape, Evaluation.org_unit_id))
    stmt = stmt.where(Evaluation.id == bindparam("evaluation_id"))
    if with_evidence:
        # One row per piece of evidence (one with none for an evaluation without): a read's second round
        # trip saved, for the evaluation's columns repeated on a handful of rows.
        stmt = stmt.add_columns(Evidence).outerjoin(Evidence, Evidence.evaluation_id == Evaluation.id)
        stmt = stmt.order_by(Evidence.id)
    if for_update:
        stmt = stmt.with_for_update(of=Evaluation).execution_options(populate_existing=True)
    _GET[key] = stmt
    return stmt


async def get_covered(
    session: AsyncSession,
    evaluation_id: int,
    cover: Cover,
    *,
    for_update: bool = False,
    with_evidence: bool = False,
) -> Found | None:
    """The evaluation, whether ``cover`` reaches its unit and, ``with_evidence`` (reads only), its
    evidence: one statement. A load ``for_update`` locks the row: concurrent writers queue on PostgreSQL,
    and the later one then sees the new version (409)."""
    if for_update and with_evidence:
        # A load that waited for the lock gets the evaluation as the other writer left it, but joined rows
        # as they stood when the statement began (PostgreSQL's READ COMMITTED): a change reads the
        # evidence after the lock, in a statement of its own.
        raise ValueError("A load for an update reads the evidence apart, after the lock.")
    stmt = _get_statement(cover.shape, for_update, with_evidence)
    rows = (await session.execute(stmt, {"evaluation_id": evaluation_id, **cover.params})).all()
    if not rows:
        return None
    evidence = [row[2] for row in rows if row[2] is not None] if with_evidence else None
    return Found(rows[0][0], bool(rows[0][1]), evidence)


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
SUMMARY_COLUMNS = (
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
)  # in this order: ``reads.summary_of`` unpacks a row by position
_SUMMARY = select(*SUMMARY_COLUMNS)


def summary_statement(where: list[ColumnElement[bool]]) -> Paged:
    """The summaries ``where`` selects, the latest year first, to page through (built once per shape by
    the service, its values bound)."""
    return paged(_SUMMARY.where(*where).order_by(Evaluation.year.desc(), Evaluation.id))


async def summary_page(
    session: AsyncSession, stmt: Paged, values: dict[str, Any], params: PageParams
) -> tuple[list[Sequence[Any]], int]:
    """A page of :func:`summary_statement`'s rows, its bound ``values`` given."""
    return await fetch_page_rows(session, stmt, params, values)


async def scores_of(session: AsyncSession, evaluation_id: int) -> list[Score]:
    """The evaluation's scores, in no order (``reads.scored`` puts them in their indicators' order)."""
    return list((await session.scalars(_SCORES, {"evaluation_id": evaluation_id})).all())


class ScoreRow(NamedTuple):
    """A score's values, read as columns (:func:`score_rows`), with the attributes of a ``Score``."""

    indicator_id: int
    self_halves: int | None
    review_halves: int | None
    note: str | None
    review_note: str | None


async def score_rows(session: AsyncSession, evaluation_id: int) -> list[ScoreRow]:
    """The evaluation's scores as values, for a read that changes none of them: as columns, without the
    ORM's loading (~130 µs less a read of ten on PostgreSQL). Pending changes are flushed first."""
    return [ScoreRow(*row) for row in await rows_of(session, _SCORE_VALUES, {"evaluation_id": evaluation_id})]


async def evidence_of(session: AsyncSession, evaluation_id: int) -> list[Evidence]:
    return list((await session.scalars(_EVIDENCE_OF, {"evaluation_id": evaluation_id})).all())


async def get_evidence(session: AsyncSession, evidence_id: int) -> Evidence | None:
    return await session.get(Evidence, evidence_id)


async def stored_keys(session: AsyncSession, keys: list[str]) -> set[str]:
    """Of ``keys``, the storage keys that an evidence row holds."""
    stmt = select(Evidence.storage_key).where(Evidence.storage_key.in_(keys))
    return set((await session.scalars(stmt)).all())
