"""Every query of the reporting cycle: submissions, the due dates that apply to units, and the counted
numbers a submission is compared with."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import through_time, versions
from app.aggregates.metrics import CHANGE_KINDS, METRICS, Kind
from app.aggregates.models import AggregateCount
from app.aggregates.repository import Child
from app.core.dates import covers, earlier_of, year_end
from app.orgs import history
from app.orgs.models import OrgUnit, OrgUnitLink
from app.reporting.models import ReportingCalendar, ReportSubmission, SubmissionStatus

COUNTED_KINDS = frozenset().union(*(m.kinds for m in METRICS)) | {Kind.EVALUATED}


@dataclass(frozen=True)
class SubmissionState:
    """The current (latest) submission of a unit for a year, as completeness and alerts read it."""

    id: int
    version: int
    status: str
    submitted_at: datetime
    counts_sha256: str
    counts_version: int | None


@dataclass(frozen=True)
class Due:
    due_on: date
    # The unit that set the date (the level the report goes to, or one above it).
    set_by: int


async def current_submissions(
    session: AsyncSession, unit_ids: Sequence[int], year: int
) -> dict[int, SubmissionState]:
    """Each unit's latest submission for ``year`` (units that never submitted are absent)."""
    if not unit_ids:
        return {}
    # The latest version is the one not superseded (``submit`` supersedes the others in its transaction):
    # a plain filter on (year, org_unit_id), where "no later version" or a GROUP BY joined back were
    # planned as loops over the year's every submission (25–250 ms for a province's 300).
    stmt = select(
        ReportSubmission.org_unit_id,
        ReportSubmission.id,
        ReportSubmission.version,
        ReportSubmission.status,
        ReportSubmission.submitted_at,
        ReportSubmission.counts_sha256,
        ReportSubmission.counts_version,
    ).where(
        ReportSubmission.year == literal(year, literal_execute=True),
        ReportSubmission.org_unit_id.in_(
            bindparam("units", list(unit_ids), expanding=True, literal_execute=True)
        ),
        ReportSubmission.status != SubmissionStatus.SUPERSEDED.value,
    )
    return {row[0]: SubmissionState(*row[1:]) for row in (await session.execute(stmt)).all()}


async def due_dates(session: AsyncSession, unit_ids: Sequence[int], year: int) -> dict[int, Due]:
    """The due date of ``year``'s report for each unit that has one: of the calendar entries set above
    the unit — for its setter's direct children (``kind`` empty) or for every unit of the unit's kind
    below the setter — the nearest setter's; at one setter the entry for the kind first. "Above" is the
    tree as it stood on the unit's reference day of the year (31 December, or its last day): a commune
    merged in 2025 still reports its 2024 to its district."""
    if not unit_ids:
        return {}
    # Two small index-driven reads rather than one join: the units' ancestors that day (a few each,
    # through (descendant_id, ancestor_id)), then the calendar entries those ancestors set. As one join,
    # PostgreSQL drove it from the setters and read the nation's whole subtree of links (~30 ms for 35
    # units). Values are written into the SQL: with bound parameters it switches to a generic plan after
    # five calls (that plan took ~1 s for a province's 300 units).
    reference_day = earlier_of(OrgUnit.valid_to, literal(year_end(year), Date(), literal_execute=True))
    above = (
        select(OrgUnitLink.descendant_id, OrgUnitLink.ancestor_id, OrgUnitLink.depth, OrgUnit.kind)
        .join(OrgUnit, OrgUnit.id == OrgUnitLink.descendant_id)
        .where(
            OrgUnitLink.descendant_id.in_(
                bindparam("units", list(unit_ids), expanding=True, literal_execute=True)
            ),
            OrgUnitLink.depth > 0,
            covers(OrgUnitLink.valid_from, OrgUnitLink.valid_to, reference_day),
        )
    )
    ancestors = (await session.execute(above)).all()
    if not ancestors:
        return {}
    setters = sorted({row.ancestor_id for row in ancestors})
    entries = select(ReportingCalendar.org_unit_id, ReportingCalendar.kind, ReportingCalendar.due_on).where(
        ReportingCalendar.year == literal(year, literal_execute=True),
        ReportingCalendar.org_unit_id.in_(
            bindparam("setters", setters, expanding=True, literal_execute=True)
        ),
    )
    set_by: dict[int, list[tuple[str, date]]] = {}
    for setter, kind, due_on in (await session.execute(entries)).all():
        set_by.setdefault(setter, []).append((kind, due_on))
    best: dict[int, tuple[tuple[int, bool], Due]] = {}
    for unit_id, setter, depth, unit_kind in ancestors:
        for kind, due_on in set_by.get(setter, ()):
            if not (kind == unit_kind or (kind == "" and depth == 1)):
                continue
            rank = (depth, kind == "")
            if unit_id not in best or rank < best[unit_id][0]:
                best[unit_id] = (rank, Due(due_on, setter))
    return {unit_id: due for unit_id, (_, due) in best.items()}


_CHANGES = sorted(k.value for k in CHANGE_KINDS)
_PER_YEAR = sorted(k.value for k in COUNTED_KINDS - CHANGE_KINDS)
# A second weight on the birth year, so that moving counts between birth years cannot keep both sums.
_BORN_WEIGHT_MODULUS = 10007


async def _counted(
    session: AsyncSession, units: Sequence[through_time.Lifetime], year: int
) -> dict[int, tuple[str, bool]]:
    """(fingerprint, has data) of each unit's subtree for ``year``: the counters the aggregates read for
    the unit that year (``as_was``; a unit that did not exist that year has none), summed by the database
    per (kind, group, level) with two checksums over the birth year, then hashed. Equal exactly when the
    counted numbers are (up to changes that keep every count and both checksums — not a real edit). One
    indexed read whatever the number of units; the rows per unit are tens, not one per birth year."""
    alive = [u.id for u in units if through_time.reference_day(u, year) is not None]
    found = {u.id: (_digest([]), False) for u in units}
    if not alive:
        return found
    c = AggregateCount
    this_year = literal(year, literal_execute=True)
    stmt = (
        select(
            c.org_unit_id,
            c.kind,
            c.grp,
            c.level,
            func.sum(c.n),
            func.sum(c.n * c.born),
            func.sum(c.n * ((c.born * 7919) % _BORN_WEIGHT_MODULUS)),
        )
        .where(
            c.org_unit_id.in_(bindparam("units", alive, expanding=True, literal_execute=True)),
            or_(
                and_(c.kind.in_(_PER_YEAR), c.year == this_year),
                and_(c.kind.in_(_CHANGES), c.year <= this_year),
            ),
        )
        .group_by(c.org_unit_id, c.kind, c.grp, c.level)
    )
    rows: dict[int, list[tuple[Any, ...]]] = {u: [] for u in alive}
    for unit_id, kind, grp, level, n, by_born, by_weight in (await session.execute(stmt)).all():
        if n or by_born or by_weight:
            rows[unit_id].append((kind, grp, level or "", int(n), int(by_born), int(by_weight)))
    for unit_id, cells in rows.items():
        evaluated = sum(r[3] for r in cells if r[0] == Kind.EVALUATED.value)
        found[unit_id] = (_digest(cells), evaluated > 0)
    return found


def _digest(rows: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(json.dumps(sorted(rows), separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Frozen:
    """What a submission froze of its unit's counted numbers."""

    counts_sha256: str
    counts_version: int | None


async def changed(
    session: AsyncSession, units: Sequence[through_time.Lifetime], year: int, frozen: dict[int, Frozen]
) -> dict[int, bool]:
    """Whether each unit's live counted numbers for ``year`` differ from those its submission froze
    (``frozen``, by unit id). A unit whose counter versions still sum to the submission's is unchanged
    without a recount (``aggregates.versions``); the others are fingerprinted and compared."""
    now = await versions.totals(session, [u.id for u in units], year)
    unsure = [u for u in units if frozen[u.id].counts_version != now[u.id]]
    live = await _counted(session, unsure, year)
    return {u.id: u.id in live and live[u.id][0] != frozen[u.id].counts_sha256 for u in units}


async def counted(session: AsyncSession, unit: OrgUnit, year: int) -> tuple[int, str, bool]:
    """(counts_version, fingerprint, has data) of the unit's subtree for ``year``: the version read
    first, so that a change committed in between shows as a different version later."""
    version = (await versions.totals(session, [unit.id], year))[unit.id]
    fingerprint, has_data = (await _counted(session, [unit], year))[unit.id]
    return version, fingerprint, has_data


async def units(session: AsyncSession, unit_ids: Sequence[int]) -> list[OrgUnit]:
    if not unit_ids:
        return []
    return list((await session.scalars(select(OrgUnit).where(OrgUnit.id.in_(sorted(set(unit_ids)))))).all())


def children_ids(parent_id: int) -> Select[int]:
    """The units that are or ever were direct children of a unit (a district's communes before 2025)."""
    return select(OrgUnitLink.descendant_id).where(
        OrgUnitLink.ancestor_id == parent_id, OrgUnitLink.depth == 1
    )


async def next_version(session: AsyncSession, unit_id: int, year: int) -> int:
    stmt = select(func.coalesce(func.max(ReportSubmission.version), 0)).where(
        ReportSubmission.org_unit_id == unit_id, ReportSubmission.year == year
    )
    return int(await session.scalar(stmt) or 0) + 1


async def supersede(session: AsyncSession, unit_id: int, year: int) -> None:
    """The unit's earlier submissions of the year stop being current."""
    await session.execute(
        update(ReportSubmission)
        .where(
            ReportSubmission.org_unit_id == unit_id,
            ReportSubmission.year == year,
            ReportSubmission.status != SubmissionStatus.SUPERSEDED.value,
        )
        .values(status=SubmissionStatus.SUPERSEDED.value)
    )


async def get(session: AsyncSession, submission_id: int) -> ReportSubmission | None:
    return await session.get(ReportSubmission, submission_id)


def listing(where: Sequence[ColumnElement[bool]]) -> Any:
    return (
        select(ReportSubmission)
        .where(*where)
        .order_by(ReportSubmission.year.desc(), ReportSubmission.org_unit_id, ReportSubmission.version.desc())
    )


async def calendar_entry(
    session: AsyncSession, unit_id: int, year: int, kind: str
) -> ReportingCalendar | None:
    stmt = select(ReportingCalendar).where(
        ReportingCalendar.org_unit_id == unit_id,
        ReportingCalendar.year == year,
        ReportingCalendar.kind == kind,
    )
    return (await session.scalars(stmt)).one_or_none()


async def calendar_entries(session: AsyncSession, unit_id: int, year: int | None) -> list[ReportingCalendar]:
    stmt = select(ReportingCalendar).where(ReportingCalendar.org_unit_id == unit_id)
    if year is not None:
        stmt = stmt.where(ReportingCalendar.year == year)
    return list((await session.scalars(stmt.order_by(ReportingCalendar.year, ReportingCalendar.kind))).all())


async def codes(session: AsyncSession, unit_ids: Sequence[int]) -> dict[int, str | None]:
    if not unit_ids:
        return {}
    rows = await session.execute(select(OrgUnit.id, OrgUnit.code).where(OrgUnit.id.in_(list(unit_ids))))
    return {unit_id: code for unit_id, code in rows.all()}


async def descendants_of_kind(session: AsyncSession, unit_id: int, day: date, kind: str) -> list[Child]:
    """The units of ``kind`` below ``unit_id`` as the tree stood on ``day``, with the names they had then."""
    name = history.name_on(day).label("name")
    stmt = (
        select(OrgUnit.id, name, OrgUnit.kind, OrgUnit.valid_from, OrgUnit.valid_to)
        .where(history.descendants_on(unit_id, day), OrgUnit.kind == kind)
        .order_by(name, OrgUnit.id)
    )
    return [Child(*row) for row in (await session.execute(stmt)).all()]
