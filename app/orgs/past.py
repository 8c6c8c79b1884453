"""A page of units as the tree stood on each unit's day (``?as_of=``, and a past year's report): parents,
levels, former names and successions, read in one statement from the dated tree that ``history.py``
writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Date,
    Integer,
    String,
    literal,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import rows_of
from app.core.slots import bound, one_of, width
from app.orgs.models import FormerName, OrgUnitLink, Succession


@dataclass
class AsOf:
    """What :func:`as_of` finds for each unit on its day."""

    parents: dict[int, int] = field(default_factory=dict)  # absent: a root on that day
    depths: dict[int, int] = field(default_factory=dict)
    names: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # only units called otherwise
    predecessors: dict[int, list[int]] = field(default_factory=dict)
    successors: dict[int, list[int]] = field(default_factory=dict)


async def as_of(session: AsyncSession, days: dict[int, date]) -> AsOf:
    """Each unit's parent, level, (name, code) and successions on its given day, in one statement: the
    dated links, former names and successions of ``days``' units, as one union of rows tagged by kind."""
    ids = list(days)
    found = AsOf(
        depths=dict.fromkeys(ids, 0),
        predecessors={u: [] for u in ids},
        successors={u: [] for u in ids},
    )
    if not ids:
        return found
    rows = await rows_of(session, _as_of_statement(width(len(ids))), bound("ids", ids))
    names: list[tuple[date, int, str, str | None]] = []
    successions: list[tuple[int, int, int]] = []
    # Unpacked by position (the union's columns, :func:`_branch`): a Row's columns read by name cost
    # ~0.3 µs each, and a page of 50 units brings hundreds of rows.
    for kind, a, b, c, name, code, start, stop in rows:
        if kind == "link":
            if (start is None or start <= days[a]) and (stop is None or stop >= days[a]):
                found.depths[a] = max(found.depths[a], c)
                if c == 1:
                    found.parents[a] = b
        elif kind == "name":
            names.append((stop, a, name, code))
        else:
            successions.append((c, a, b))
    # The earliest period still covering the day wins: latest ends first, so it is written last.
    for stop, a, name, code in sorted(names, key=itemgetter(0), reverse=True):
        if stop >= days[a]:
            found.names[a] = (name, code)
    for _, a, b in sorted(successions, key=itemgetter(0)):  # in the order recorded
        if b in found.predecessors:
            found.predecessors[b].append(a)
        if a in found.successors:
            found.successors[a].append(b)
    return found


@lru_cache(maxsize=16)
def _as_of_statement(slots: int) -> CompoundSelect[Any]:
    """:func:`as_of`'s union, built once per width of the ids (``core/slots.py``; building it costs more
    than running it; the ids are bound)."""
    link, former, succession = OrgUnitLink, FormerName, Succession
    dated = {"start": link.valid_from, "stop": link.valid_to}
    links = select(*_branch("link", link.descendant_id, link.ancestor_id, link.depth, **dated)).where(
        one_of(link.descendant_id, "ids", slots)
    )
    named = {"name": former.name, "code": former.code, "stop": former.valid_to}
    names = select(*_branch("name", former.org_unit_id, **named)).where(
        one_of(former.org_unit_id, "ids", slots)
    )
    successions = select(
        *_branch("succ", succession.predecessor_id, succession.successor_id, succession.id)
    ).where(
        or_(one_of(succession.predecessor_id, "ids", slots), one_of(succession.successor_id, "ids", slots))
    )
    return union_all(links, names, successions)


def _branch(kind: str, a: Any, b: Any = None, c: Any = None, **named: Any) -> list[Any]:
    """The columns of one branch of :func:`as_of`'s union: its own columns as they are, typed NULLs where
    it has none (no CAST of a real column: SQLite would read a date cast to DATE as a number)."""
    given = {"a": a, "b": b, "c": c, **named}
    typed_nulls: dict[str, Any] = {
        "a": type_coerce(null(), Integer()),
        "b": type_coerce(null(), Integer()),
        "c": type_coerce(null(), Integer()),
        "name": type_coerce(null(), String()),
        "code": type_coerce(null(), String()),
        "start": type_coerce(null(), Date()),
        "stop": type_coerce(null(), Date()),
    }
    columns = [literal(kind, String()).label("kind")]
    for label, empty in typed_nulls.items():
        value = given.get(label)
        columns.append((empty if value is None else value).label(label))
    return columns
