"""People who move (điều chuyển): a dated change of unit and/or group, and the memberships it writes.

Rules:
- a transfer is effective today or in the past (a future date is a 422), never before the person's
  present placement began (409: periods only go forward), never into an ended unit or one that did not
  yet exist that day (409);
- the caller may write people both where the person is and where they go (404/403 as usual);
- the counters follow in the same transaction: everything the person counts in is taken out, the
  memberships change, and it is counted again — so only the years from the transfer's on change.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import counters
from app.auth.policy import Action
from app.auth.scope import Subject
from app.core.audit import record, user_id_of
from app.core.dates import ONE_DAY, today
from app.core.errors import Conflict, ValidationFailed
from app.core.pagination import PageParams
from app.orgs.models import OrgUnit
from app.orgs.service import ensure_open
from app.orgs.service import get_visible as get_visible_unit
from app.people import repository as repo
from app.people.models import Membership, Person, Transfer
from app.people.schemas import TransferCreate


def check_not_future(day: date, field: str) -> None:
    if day > today():
        raise ValidationFailed(f"{field} must not be in the future.", details={"field": field})


def check_existed(unit: OrgUnit, day: date) -> None:
    if unit.valid_from is not None and day < unit.valid_from:
        raise Conflict(
            f"{unit.name} began on {unit.valid_from.isoformat()}; "
            f"nobody belonged to it on {day.isoformat()}.",
            details={"org_unit_id": unit.id, "valid_from": unit.valid_from.isoformat()},
        )


def default_start(unit: OrgUnit) -> date:
    """Where a person registered without a date starts: 1 January of this year (or the unit's first day,
    if later). A registration is news about this year; a past year's numbers do not move for it."""
    start = date(today().year, 1, 1)
    return max(start, unit.valid_from) if unit.valid_from is not None else start


async def correct_start(session: AsyncSession, subject: Subject, person: Person, since: date) -> None:
    """Move the start of the person's first placement to ``since`` (a registration recorded late, or
    early): the years it adds or takes away count them, or stop counting them, there."""
    check_not_future(since, "member_since")
    first = await repo.first_membership(session, person.id)
    if first is None:
        return
    unit = await get_visible_unit(session, subject, first.org_unit_id, Action.PERSON_WRITE)
    check_existed(unit, since)
    if first.valid_to is not None and since > first.valid_to:
        raise Conflict(
            f"The person's first placement ended on {first.valid_to.isoformat()}; member_since cannot be "
            "after it.",
            details={"field": "member_since"},
        )
    before = first.valid_from
    await counters.people_counted(session, [person.id], -1)
    first.valid_from = since
    await session.flush()
    await counters.people_counted(session, [person.id], +1)
    await record(
        session,
        actor_user_id=user_id_of(subject),
        entity_type="person",
        entity_id=person.id,
        action="member_since_corrected",
        before={"member_since": before.isoformat() if before else None},
        after={"member_since": since.isoformat()},
    )


async def first_day(session: AsyncSession, person_id: int) -> date | None:
    """The first day the person belonged anywhere (None: always)."""
    return await repo.first_membership_day(session, person_id)


async def start_membership(session: AsyncSession, person: Person, since: date | None) -> None:
    session.add(
        Membership(person_id=person.id, org_unit_id=person.org_unit_id, group=person.group, valid_from=since)
    )
    await session.flush()
    await counters.people_counted(session, [person.id], +1)


async def move(
    session: AsyncSession,
    person: Person,
    on: date,
    unit_id: int,
    group: str,
    *,
    actor_user_id: int | None,
    reorganisation_id: int | None = None,
) -> Transfer:
    """Place ``person`` in ``unit_id`` with ``group`` from ``on`` (checks done by the caller)."""
    current = await repo.open_membership(session, person.id)
    if current is not None and current.valid_from is not None and on < current.valid_from:
        raise Conflict(
            f"The person's present placement began on {current.valid_from.isoformat()}; "
            "a transfer cannot be dated before it.",
            details={"field": "effective_on", "placed_since": current.valid_from.isoformat()},
        )
    transfer = Transfer(
        person_id=person.id,
        effective_on=on,
        from_unit_id=person.org_unit_id,
        to_unit_id=unit_id,
        from_group=person.group,
        to_group=group,
        reorganisation_id=reorganisation_id,
        created_by=actor_user_id or None,  # user id 0 is the system itself: no users row
    )
    session.add(transfer)
    await counters.people_counted(session, [person.id], -1)
    if current is not None and current.valid_from == on:
        current.org_unit_id, current.group = unit_id, group  # a second change the same day replaces the first
    else:
        if current is not None:
            current.valid_to = on - ONE_DAY
        session.add(Membership(person_id=person.id, org_unit_id=unit_id, group=group, valid_from=on))
    person.org_unit_id, person.group = unit_id, group
    await session.flush()
    await counters.people_counted(session, [person.id], +1)
    return transfer


async def transfer(session: AsyncSession, subject: Subject, person: Person, data: TransferCreate) -> Transfer:
    check_not_future(data.effective_on, "effective_on")
    unit_id = data.org_unit_id or person.org_unit_id
    group = data.group.value if data.group else person.group
    if unit_id == person.org_unit_id and group == person.group:
        raise ValidationFailed("The transfer changes neither the unit nor the group.")
    target = await get_visible_unit(session, subject, unit_id, Action.PERSON_WRITE)
    ensure_open(target, "a person")
    check_existed(target, data.effective_on)
    before = {"org_unit_id": person.org_unit_id, "group": person.group}
    done = await move(session, person, data.effective_on, unit_id, group, actor_user_id=subject.user_id)
    await record(
        session,
        actor_user_id=user_id_of(subject),
        entity_type="person",
        entity_id=person.id,
        action="transferred",
        before=before,
        after={"org_unit_id": unit_id, "group": group, "effective_on": data.effective_on.isoformat()},
    )
    return done


async def list_transfers(
    session: AsyncSession, person: Person, params: PageParams
) -> tuple[list[Transfer], int]:
    return await repo.transfers_page(session, person.id, params)
