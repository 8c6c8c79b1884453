"""What scoring needs of a criteria set — its thresholds, grades and indicators — kept per process.

Every read of an evaluation scores it against its set (``evaluations/reads.outcome_of``), and every upload
checks the indicator against the set's. A set an evaluation uses is frozen (``repository.freeze``): no
code changes it afterwards, so a process keeps a frozen set's terms and reads them again only when the
``criteria`` generation moves (a committed write to ``criteria_sets``, ``criteria`` or ``indicators``,
such as ``cdht seed``; a restore, ``core/generations.py``) or after ``CDHT_CACHE_MAX_AGE_SECONDS``
(``core/kept.py``). A set that is not frozen is read each time.

The app's sessions carry their process's copies in ``session.info`` (:func:`keep_in`, installed with the
app's state); a session without them (a command, a worker, a test's own session) reads each time.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from app.core import generations
from app.core.errors import NotFound
from app.core.kept import Kept, carried_by
from app.criteria import repository as repo
from app.criteria.models import CriteriaSet, Indicator, StoredGrade

KEPT = "cdht.criteria_terms"  # session.info: this process's Kept[int, SetTerms]
READ = "cdht.criteria_terms_read"  # session.info: the terms this transaction has read, by set id
MAX_KEPT = 10_000  # sets per process


@dataclass(frozen=True, slots=True)
class IndicatorTerms:
    id: int
    number: int
    max_points: int
    digital: bool


@dataclass(frozen=True, slots=True)
class SetTerms:
    id: int
    recognises: str
    pass_total: int
    min_indicator: int
    digital_basic_halves: int | None
    digital_proficient_halves: int | None
    grades: tuple[StoredGrade, ...]
    indicators: tuple[IndicatorTerms, ...]  # by number

    @classmethod
    def of(cls, criteria_set: CriteriaSet, indicators: list[Indicator]) -> SetTerms:
        return cls(
            id=criteria_set.id,
            recognises=criteria_set.recognises,
            pass_total=criteria_set.pass_total,
            min_indicator=criteria_set.min_indicator,
            digital_basic_halves=criteria_set.digital_basic_halves,
            digital_proficient_halves=criteria_set.digital_proficient_halves,
            grades=tuple(criteria_set.grades or ()),
            indicators=tuple(
                IndicatorTerms(i.id, i.number, i.max_points, i.digital)
                for i in sorted(indicators, key=lambda i: i.number)
            ),
        )


@event.listens_for(Session, "after_transaction_end")
def _forget_read(session: Session, transaction: SessionTransaction) -> None:
    """Terms read in one transaction are read again in the next (unless kept)."""
    if transaction.parent is None:
        session.info.pop(READ, None)


def keep_in(sessionmaker: async_sessionmaker[AsyncSession], max_age: float) -> Kept[int, SetTerms]:
    """Give the sessions of ``sessionmaker`` a fresh table of kept terms (the app's state, once per
    process), and return it."""
    return carried_by(sessionmaker, KEPT, Kept[int, SetTerms](generations.CRITERIA, max_age, MAX_KEPT))


async def terms_of(session: AsyncSession, set_id: int) -> SetTerms:
    """The scoring terms of set ``set_id``: kept if frozen and unchanged, else read (two statements, once
    per transaction: a step that scores and then answers asks twice)."""
    read: dict[int, SetTerms] = session.info.setdefault(READ, {})
    if set_id in read:
        return read[set_id]
    kept: Kept[int, SetTerms] | None = session.info.get(KEPT)
    generation = kept.generation() if kept is not None else 0
    if kept is not None and (found := kept.get(set_id, generation)) is not None:
        return found[0]
    criteria_set = await repo.get(session, set_id)
    if criteria_set is None:
        raise NotFound(f"Criteria set {set_id} not found.")
    terms = read[set_id] = SetTerms.of(criteria_set, await repo.indicators_of(session, set_id))
    if kept is not None and criteria_set.frozen:
        kept.put(set_id, terms, generation)
    return terms
