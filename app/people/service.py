"""Rules for person records: created in a unit the caller administers, visible to the person themself
and to the roles that work with person-level data in the subtree.

Every creation and change writes an audit row (``entity_type="person"``: ``created``, ``updated``, and
``citizen_id_changed`` on its own so it can be found), in the same transaction, with the fields before and
after. A citizen id is recorded masked as everywhere (``********1234``), never whole.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import counters
from app.auth.models import User
from app.auth.policy import Action
from app.auth.scope import Subject, authorize, own_or, require_any_role, subtree_ids, unit_filter
from app.core import audit
from app.core.dates import today
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.pagination import PageParams
from app.core.schemas import check_version
from app.core.search import contains
from app.orgs.service import ensure_open
from app.orgs.service import get_visible as get_visible_unit
from app.people import claims, transfers
from app.people import repository as repo
from app.people.models import Person
from app.people.schemas import PersonCreate, PersonUpdate, mask_citizen_id

# The fields a person's audit rows record (membership dates have their own rows: ``transfers``).
AUDITED_FIELDS = ("full_name", "org_unit_id", "group", "birth_year", "gender", "citizen_id", "user_id")


def _audited(person: Person) -> dict[str, Any]:
    values = {f: getattr(person, f) for f in AUDITED_FIELDS}
    # A claimed id is recorded as the record's own: its readers must not tell a claim apart (``claims``).
    values["citizen_id"] = mask_citizen_id(person.shown_citizen_id)
    return values


async def _record(
    session: AsyncSession,
    subject: Subject,
    person_id: int,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    await audit.record_by(session, subject, "person", person_id, action, before, after)


async def _record_changes(
    session: AsyncSession, subject: Subject, person: Person, before: dict[str, Any]
) -> None:
    """``updated`` with the fields that changed; a citizen id change as its own ``citizen_id_changed``.
    The raw citizen ids are compared (two ids may share their masked form) and recorded masked."""
    after = _audited(person)
    changed = [f for f in AUDITED_FIELDS if f != "citizen_id" and before[f] != after[f]]
    if changed:
        await _record(
            session,
            subject,
            person.id,
            "updated",
            {f: before[f] for f in changed},
            {f: after[f] for f in changed},
        )
    if before["raw_citizen_id"] != person.shown_citizen_id:
        await _record(
            session,
            subject,
            person.id,
            "citizen_id_changed",
            {"citizen_id": before["citizen_id"]},
            {"citizen_id": after["citizen_id"]},
        )


async def get_visible(session: AsyncSession, subject: Subject, person_id: int, action: Action) -> Person:
    """The person if ``subject`` may perform ``action`` on them; a member always reaches their own record
    for reading."""
    missing = f"Person {person_id} not found."
    person = await repo.get(session, person_id)
    if person is None:
        raise NotFound(missing)
    own = person.id == subject.person_id
    await authorize(session, subject, person.org_unit_id, action, own=own, missing=missing)
    return person


async def _ensure_user_linkable(session: AsyncSession, subject: Subject, user_id: int) -> None:
    missing = f"User {user_id} not found."
    user = await session.get(User, user_id)
    if user is None or user.org_unit_id is None:
        raise NotFound(missing)
    await authorize(session, subject, user.org_unit_id, Action.USER_WRITE, missing=missing)
    if user.is_service:
        raise ValidationFailed("A service account cannot be linked to a person.")
    if await repo.get_by_user(session, user_id) is not None:
        raise Conflict("That user is already linked to another person.")


async def create(session: AsyncSession, subject: Subject, data: PersonCreate) -> Person:
    unit = await get_visible_unit(session, subject, data.org_unit_id, Action.PERSON_WRITE)
    ensure_open(unit, "a person")
    if data.member_since is not None:
        transfers.check_not_future(data.member_since, "member_since")
        transfers.check_existed(unit, data.member_since)
    if data.user_id is not None:
        await _ensure_user_linkable(session, subject, data.user_id)
    person = Person(
        full_name=data.full_name,
        org_unit_id=data.org_unit_id,
        group=data.group.value,
        birth_year=data.birth_year,
        gender=data.gender.value if data.gender else None,
        user_id=data.user_id,
    )
    await claims.assign(session, subject, person, data.citizen_id, Action.PERSON_WRITE)
    session.add(person)
    await session.flush()
    await transfers.start_membership(session, person, data.member_since or transfers.default_start(unit))
    await _record(session, subject, person.id, "created", None, _audited(person))
    return person


async def update(
    session: AsyncSession, subject: Subject, person_id: int, data: PersonUpdate, if_match: int | None
) -> Person:
    person = await get_visible(session, subject, person_id, Action.PERSON_WRITE)
    check_version(person.version, data.version, if_match)
    before = {**_audited(person), "raw_citizen_id": person.shown_citizen_id}
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    for required in ("full_name", "group"):
        if required in changes and changes[required] is None:
            raise ValidationFailed(f"{required} cannot be empty.")
    if "citizen_id" in changes:
        await claims.assign(session, subject, person, changes.pop("citizen_id"), Action.PERSON_WRITE)
    new_group = changes.pop("group", None)
    if changes.get("member_since", True) is None:
        raise ValidationFailed("member_since cannot be empty.", details={"field": "member_since"})
    since = changes.pop("member_since", None)
    # The birth year decides from which year someone counts as an adult: recounted around the change.
    reborn = "birth_year" in changes and changes["birth_year"] != person.birth_year
    if reborn:
        await counters.people_counted(session, [person.id], -1)
    for field, value in changes.items():
        setattr(person, field, value.value if hasattr(value, "value") else value)
    await session.flush()
    if reborn:
        await counters.people_counted(session, [person.id], +1)
    if since is not None:
        await transfers.correct_start(session, subject, person, since)
    if new_group is not None and new_group.value != person.group:
        # A change of group is a transfer effective today: the years before keep the old group.
        await transfers.move(
            session, person, today(), person.org_unit_id, new_group.value, actor_user_id=subject.user_id
        )
    await _record_changes(session, subject, person, before)
    return person


async def list_people(
    session: AsyncSession,
    subject: Subject,
    params: PageParams,
    *,
    org_unit_id: int | None,
    group: str | None,
    q: str | None,
) -> tuple[list[Person], int]:
    own = Person.id == subject.person_id if subject.person_id is not None else None
    where: list[ColumnElement[bool]] = [
        own_or(unit_filter(subject, Action.PERSON_READ, Person.org_unit_id), own)
    ]
    if org_unit_id is not None:
        await get_visible_unit(session, subject, org_unit_id, Action.PERSON_READ)
        where.append(Person.org_unit_id.in_(subtree_ids([org_unit_id])))
    elif own is None:
        require_any_role(subject, Action.PERSON_READ)
    if group:
        where.append(Person.group == group)
    if q:
        where.append(contains(q, Person.full_name))
    return await repo.page(session, where, params)
