"""The dates of households and clans: when a collective is placed, and how its set (people in a household,
households in a clan) changes over time — as app/people/transfers.py does for a person's placement.

Rules:
- a date is today or earlier and not before 2000 (else 422, in the schema); a collective is placed from
  1 January of this year unless told otherwise (as a person is registered), never before its unit began
  (409);
- a set is replaced as a whole from a day: those who leave end on the day before (a period that began
  on or after that day is removed instead: it never took effect), those who join begin on it; periods
  only go forward, so the day is not before the set's last change (409), nor before the collective
  itself began (409);
- a member belongs to one owner at a time: a person already in another household (a household in
  another clan) on or after the day is a 409 naming it.

The counters are the caller's (service.py): −1 before and +1 after, around :func:`replace`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from app.collectives import repository as repo
from app.collectives.models import Collective, CollectivePlace
from app.collectives.repository import Relation
from app.core.dates import ONE_DAY
from app.core.errors import Conflict
from app.orgs.models import OrgUnit
from app.people.transfers import check_existed, default_start

__all__ = ["Change", "check_existed", "check_free", "default_start", "place", "replace"]


@dataclass
class Change:
    """What a replacement did: who joined and who left (by member id)."""

    joined: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)

    @property
    def touched(self) -> list[int]:
        return sorted({*self.joined, *self.left})


def _label(rel: Relation) -> tuple[str, str]:
    return ("Person", "household") if rel is repo.MEMBERS else ("Household", "clan")


async def check_free(
    session: AsyncSession, rel: Relation, member_ids: Sequence[int], on: date, *, besides: int | None
) -> None:
    """409 when one of ``member_ids`` belongs to another owner on ``on`` or later."""
    if not member_ids:
        return
    clashes = await repo.belonging_from(session, rel, member_ids, on, besides=besides)
    if not clashes:
        return
    row = clashes[0]
    member_id, owner_id = getattr(row, rel.member.key), getattr(row, rel.owner.key)
    member, owner = _label(rel)
    if row.valid_to is None:
        message = f"{member} {member_id} already belongs to {owner} {owner_id}."
    else:
        message = (
            f"{member} {member_id} belongs to {owner} {owner_id} until {row.valid_to.isoformat()}; "
            f"it cannot join another {owner} from {on.isoformat()}."
        )
    raise Conflict(message, details={f"{member.lower()}_id": member_id, f"{owner}_id": owner_id})


async def replace(
    session: AsyncSession, rel: Relation, owner: Collective, wanted: Sequence[int], on: date
) -> Change:
    """Make ``wanted`` the owner's set from ``on`` (checks of the joiners done by the caller)."""
    _, kind = _label(rel)
    if owner.valid_from is not None and on < owner.valid_from:
        raise Conflict(
            f"The {kind} began on {owner.valid_from.isoformat()}; a change cannot be dated before it.",
            details={"field": "effective_on", "valid_from": owner.valid_from.isoformat()},
        )
    last = await repo.last_change(session, rel, owner.id)
    current = {getattr(row, rel.member.key): row for row in await repo.open_rows(session, rel, owner.id)}
    change = Change(joined=sorted(set(wanted) - current.keys()), left=sorted(current.keys() - set(wanted)))
    if not change.touched:
        return change
    if last is not None and on < last:
        raise Conflict(
            f"The {kind}'s members last changed on {last.isoformat()}; a change cannot be dated before it.",
            details={"field": "effective_on", "last_change": last.isoformat()},
        )
    for member_id in change.left:
        row = current[member_id]
        if row.valid_from is not None and row.valid_from >= on:
            await session.delete(row)
        else:
            row.valid_to = on - ONE_DAY
    # The leavers' open rows are closed before the joiners' are added (one open row per member).
    await session.flush()
    session.add_all(rel.row(owner.id, member_id, on) for member_id in change.joined)
    await session.flush()
    return change


async def place(session: AsyncSession, collective: Collective, unit: OrgUnit, on: date) -> None:
    """Place ``collective`` at ``unit`` from ``on`` (the caller counts it out before and in after)."""
    current = await repo.open_place(session, collective.id)
    if current is not None and current.valid_from is not None and on < current.valid_from:
        raise Conflict(
            f"The present placement began on {current.valid_from.isoformat()}; a move cannot be dated "
            "before it.",
            details={"placed_since": current.valid_from.isoformat()},
        )
    if current is not None and current.valid_from == on:
        current.org_unit_id = unit.id  # a second move the same day replaces the first
    else:
        if current is not None:
            current.valid_to = on - ONE_DAY
        session.add(CollectivePlace(collective_id=collective.id, org_unit_id=unit.id, valid_from=on))
    collective.org_unit_id = unit.id
    await session.flush()
