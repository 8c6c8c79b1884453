"""Citizen ids held outside the caller's reach: a claim, never an oracle, never a second identity.

A citizen id (CCCD) names one person in the whole country, but a commune's admin sees only their commune.
If registering an id that a record elsewhere holds were refused ("already exists"), every ``POST /people``
and every import dry run would tell a commune which ids exist anywhere in the country. The rule:

- **Held by a record the caller may edit** (``person:write`` over its unit; for imports, ``import:write``):
  a conflict as always (409 on ``POST``/``PATCH``; an import updates that record) — the caller sees it.
- **Held by a record the caller may not edit**: the answer is exactly that of a new id. The record is
  created (or changed) with what the caller gave and nothing of the other record: its ``citizen_id`` stays
  empty and the id is kept as ``claimed_citizen_id``, shown to its readers as its own (masked, like every
  citizen id) and written in its audit rows as a citizen id is. Two records then name the same id: the
  person may have moved, or the id was mistyped. Until someone decides, both are counted where they are
  (one person may count twice above both units), and the holder's record is untouched.
- **Who decides**: an org_admin whose scope covers both records (the nearest common level, or anyone
  above) lists them (``GET /people/citizen-id-claims``) and resolves each
  (``POST /people/{claimant_id}/citizen-id-claim``):
  - ``same_person: true`` — the holder's record (with its history and evaluations) moves to the
    claimant's unit and group from the claimant's first day there (or its own present placement's start
    if later), and the claimant's record is removed: one person, counted once. Refused (409) while the
    claimant's record has evaluations, trainings, a household or a login of its own.
  - ``same_person: false`` — the claim is dropped: the claimant's record keeps no citizen id.
  For anyone who cannot see the holder, a claimant is a person like any other: the resolution answers 409
  "no claim you can resolve", as it does for a record without a claim.
- When a holder's id is changed or removed, the oldest claimant of the old id receives it.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.aggregates import counters
from app.auth.policy import Action
from app.auth.scope import Subject, allows, require_any_role, subtree_ids, unit_filter
from app.collectives.models import HouseholdMember
from app.core import audit
from app.core.dates import today
from app.core.errors import Conflict
from app.core.pagination import PageParams, fetch_page
from app.evaluations.models import Evaluation
from app.orgs.service import get_visible as get_visible_unit
from app.people import repository as repo
from app.people import transfers
from app.people.models import Person
from app.people.schemas import mask_citizen_id
from app.trainings.models import Attendance

TAKEN = "A person with this citizen id already exists."
NO_CLAIM = "This person has no citizen id claim that you can resolve."


async def assign(
    session: AsyncSession, subject: Subject, person: Person, citizen_id: str | None, action: Action
) -> None:
    """Give ``person`` the citizen id, or a claim to it (module rule); ``action`` is the right that lets
    the caller edit the record that may hold it. Raises 409 when a record the caller may edit holds it."""
    previous = person.citizen_id
    holder = await repo.get_by_citizen_id(session, citizen_id) if citizen_id is not None else None
    if holder is None or holder.id == person.id:
        person.citizen_id, person.claimed_citizen_id = citizen_id, None
    elif await allows(session, subject, holder.org_unit_id, action):
        raise Conflict(TAKEN, details={"field": "citizen_id"})
    else:
        if await _claimed_within(session, subject, citizen_id, person.id, action):
            raise Conflict(TAKEN, details={"field": "citizen_id"})
        person.citizen_id, person.claimed_citizen_id = None, citizen_id
    if previous is not None and previous != person.citizen_id:
        await session.flush()
        await _hand_down(session, previous)


async def _claimed_within(
    session: AsyncSession, subject: Subject, citizen_id: str | None, person_id: int | None, action: Action
) -> bool:
    """Whether another record the caller may edit already claims the id (their own duplicate)."""
    stmt = select(Person.org_unit_id).where(Person.claimed_citizen_id == citizen_id)
    if person_id is not None:
        stmt = stmt.where(Person.id != person_id)
    for unit_id in (await session.scalars(stmt)).all():
        if await allows(session, subject, unit_id, action):
            return True
    return False


async def _hand_down(session: AsyncSession, citizen_id: str) -> None:
    """The id is free again: the oldest record claiming it becomes its holder."""
    heir = await session.scalar(
        select(Person).where(Person.claimed_citizen_id == citizen_id).order_by(Person.id).limit(1)
    )
    if heir is not None:
        heir.citizen_id, heir.claimed_citizen_id = citizen_id, None
        await session.flush()


def _both_editable(subject: Subject) -> list[ColumnElement[bool]]:
    holder = aliased(Person)
    return [
        unit_filter(subject, Action.PERSON_WRITE, Person.org_unit_id),
        exists().where(
            holder.citizen_id == Person.claimed_citizen_id,
            unit_filter(subject, Action.PERSON_WRITE, holder.org_unit_id),
        ),
    ]


async def list_claims(
    session: AsyncSession, subject: Subject, params: PageParams, *, org_unit_id: int | None
) -> tuple[list[tuple[Person, Person]], int]:
    """(claimant, holder) pairs where the caller may edit both, oldest claimant first; with
    ``org_unit_id``, the claimants in its subtree."""
    where = [Person.claimed_citizen_id.is_not(None), *_both_editable(subject)]
    if org_unit_id is not None:
        await get_visible_unit(session, subject, org_unit_id, Action.PERSON_WRITE)
        where.append(Person.org_unit_id.in_(subtree_ids([org_unit_id])))
    else:
        require_any_role(subject, Action.PERSON_WRITE)
    claimants, total = await fetch_page(session, select(Person).where(*where).order_by(Person.id), params)
    ids = {p.claimed_citizen_id for p in claimants if p.claimed_citizen_id}
    holders = {
        h.citizen_id: h
        for h in (await session.scalars(select(Person).where(Person.citizen_id.in_(sorted(ids))))).all()
    }
    return [(p, holders[p.claimed_citizen_id]) for p in claimants if p.claimed_citizen_id in holders], total


async def resolve(session: AsyncSession, subject: Subject, claimant: Person, same_person: bool) -> Person:
    """Decide a claim (module rule): the record that remains."""
    citizen_id = claimant.claimed_citizen_id
    holder = await repo.get_by_citizen_id(session, citizen_id) if citizen_id is not None else None
    if (
        citizen_id is None
        or holder is None
        or not await allows(session, subject, holder.org_unit_id, Action.PERSON_WRITE)
    ):
        raise Conflict(NO_CLAIM)
    masked = {"citizen_id": mask_citizen_id(citizen_id)}
    if not same_person:
        claimant.claimed_citizen_id = None
        await session.flush()
        await audit.record_by(
            session, subject, "person", claimant.id, "citizen_id_claim_rejected", masked, None
        )
        return claimant
    await _ensure_removable(session, claimant)
    on = await _moving_day(session, claimant, holder)
    before = {"org_unit_id": holder.org_unit_id, "group": holder.group}
    if (holder.org_unit_id, holder.group) != (claimant.org_unit_id, claimant.group):
        await transfers.move(
            session, holder, on, claimant.org_unit_id, claimant.group, actor_user_id=subject.user_id
        )
    await counters.people_counted(session, [claimant.id], -1)
    await session.delete(claimant)
    await session.flush()
    after = {"org_unit_id": holder.org_unit_id, "group": holder.group, "merged_person_id": claimant.id}
    await audit.record_by(session, subject, "person", holder.id, "citizen_id_claim_merged", before, after)
    await audit.record_by(session, subject, "person", claimant.id, "deleted", masked, None)
    return holder


async def _ensure_removable(session: AsyncSession, claimant: Person) -> None:
    held = [
        ("evaluations", exists().where(Evaluation.person_id == claimant.id)),
        ("trainings", exists().where(Attendance.person_id == claimant.id)),
        ("a household", exists().where(HouseholdMember.person_id == claimant.id)),
    ]
    found = [name for name, clause in held if await session.scalar(select(clause))]
    if claimant.user_id is not None:
        found.append("a login")
    if found:
        raise Conflict(
            f"The claimant's record has {', '.join(found)} of its own: move them to the holder's record "
            "(or remove them) before merging the two.",
            details={"held": found},
        )


async def _moving_day(session: AsyncSession, claimant: Person, holder: Person) -> date:
    """From when the holder belongs where the claimant was registered: the claimant's first day there,
    not before the holder's present placement began (history is not rewritten), never after today."""
    first = await repo.first_membership_day(session, claimant.id)
    current = await repo.open_membership(session, holder.id)
    starts = [d for d in (first, current.valid_from if current else None) if d is not None]
    return min(max(starts), today()) if starts else today()
