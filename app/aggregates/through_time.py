"""Which units' counts make a unit's year: the rules of ``basis`` (API.md "Counting through time").

- ``as_was``: the unit itself, in the years it existed (from the year of ``valid_from`` to the year of
  ``valid_to``); another year has no data.
- ``lineage``: the unit itself in the years it existed, plus — for each year — every predecessor
  (recursively) that still existed on that year's 31 December, that is, before the unit took it over;
  a predecessor that lay inside another counted unit that day is already in that unit's count and is
  left out, so nobody counts twice.

A (unit, year) has data when some unit counts for it and somebody in those subtrees was evaluated that
year (``evaluated`` cells); otherwise every metric is ``no_data``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates.metrics import Cells, Kind
from app.aggregates.repository import Tally
from app.aggregates.schemas import Basis
from app.core.dates import year_end
from app.orgs import history
from app.orgs.models import OrgUnit


class Lifetime(Protocol):
    """A unit's id and life: an ``OrgUnit``, or a lighter row with the same fields."""

    @property
    def id(self) -> int: ...
    @property
    def valid_from(self) -> date | None: ...
    @property
    def valid_to(self) -> date | None: ...


class Life(NamedTuple):
    id: int
    valid_from: date | None
    valid_to: date | None


def reference_day(unit: Lifetime, year: int) -> date | None:
    """The day a unit's year is counted on: 31 December, or its last day if it ended that year; None
    when it did not exist that year."""
    day = year_end(year)
    if unit.valid_to is not None:
        if unit.valid_to.year < year:
            return None
        day = min(day, unit.valid_to)
    if unit.valid_from is not None and unit.valid_from > day:
        return None
    return day


def _alive_at_year_end(unit: Lifetime, year: int) -> bool:
    day = year_end(year)
    return (unit.valid_from is None or unit.valid_from <= day) and (
        unit.valid_to is None or unit.valid_to >= day
    )


async def lives(session: AsyncSession, unit_ids: Iterable[int]) -> dict[int, Life]:
    ids = sorted(set(unit_ids))
    if not ids:
        return {}
    stmt = select(OrgUnit.id, OrgUnit.valid_from, OrgUnit.valid_to).where(OrgUnit.id.in_(ids))
    return {row[0]: Life(*row) for row in (await session.execute(stmt)).all()}


@dataclass
class Sources:
    """For each (root, year), the units whose counts add up to it."""

    members: dict[tuple[int, int], list[int]] = field(default_factory=lambda: defaultdict(list))

    def unit_ids(self) -> list[int]:
        return sorted({u for ids in self.members.values() for u in ids})

    def cells(self, tally: Tally, root: int, year: int) -> tuple[dict[Kind, Cells], bool]:
        """The cells of (root, year) and whether the year has data."""
        counted = self.members.get((root, year), [])
        cells = tally.combined(counted, year)
        evaluated = sum(cells.get(Kind.EVALUATED, {}).values())
        return cells, bool(counted) and evaluated > 0


async def sources(
    session: AsyncSession, roots: Sequence[Lifetime], years: Iterable[int], basis: Basis
) -> Sources:
    years = list(years)
    found = Sources()
    if basis == Basis.AS_WAS:
        for root in roots:
            for year in years:
                if reference_day(root, year) is not None:
                    found.members[(root.id, year)].append(root.id)
        return found
    graph = await history.predecessors_of(session, [r.id for r in roots])
    known = await lives(session, graph)
    nested = await history.lineage_links(session, sorted(known))
    for root in roots:
        lineage = _lineage(root.id, graph)
        for year in years:
            day = year_end(year)
            counted = [
                u
                for u in lineage
                if (u == root.id and reference_day(root, year))
                or (u != root.id and _alive_at_year_end(known[u], year))
            ]
            inside = {
                d
                for a, d, start, stop in nested
                if a in counted
                and d in counted
                and (start is None or start <= day)
                and (stop is None or stop >= day)
            }
            found.members[(root.id, year)] = [u for u in counted if u not in inside]
    return found


def _lineage(unit_id: int, graph: dict[int, list[int]]) -> list[int]:
    """The unit and all its predecessors, recursively."""
    seen = [unit_id]
    stack = list(graph.get(unit_id, []))
    while stack:
        unit = stack.pop()
        if unit not in seen:
            seen.append(unit)
            stack.extend(graph.get(unit, []))
    return seen
