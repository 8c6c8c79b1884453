"""Rules for households (hộ gia đình) and clans (dòng họ): person-level data, so read with ``person:read``
and written with ``person:write`` at the unit where the collective is placed (404 outside the caller's
scope, 403 inside without the role). Members must be readable by the caller: a person (a household) the
caller cannot read answers exactly as one that does not exist.

Every change keeps the counters exact in its own transaction: a collective's own cells around its
placement (``collectives_counted``), and the people whose household or clan changes around the change
(``people_counted``): −1 before, +1 after."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import counters
from app.auth.policy import Action
from app.auth.scope import Subject, authorize, require_any_role, subtree_ids, unit_filter
from app.collectives import periods
from app.collectives import repository as repo
from app.collectives.models import Collective, CollectiveKind, CollectivePlace
from app.collectives.repository import CLAN_HOUSEHOLDS, MEMBERS, Relation
from app.collectives.schemas import (
    ClanCreate,
    ClanRead,
    CollectiveUpdate,
    HouseholdCreate,
    HouseholdPeriod,
    HouseholdRead,
    HouseholdsReplace,
    MemberPeriod,
    MembersReplace,
)
from app.core.audit import record, user_id_of
from app.core.dates import today
from app.core.db import utcnow
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.pagination import PageParams
from app.core.schemas import check_version
from app.core.search import contains
from app.orgs.models import OrgUnit
from app.orgs.service import ensure_open
from app.orgs.service import get_visible as get_visible_unit
from app.people import service as people

HOUSEHOLD, CLAN = CollectiveKind.HOUSEHOLD.value, CollectiveKind.CLAN.value
_TITLE = {HOUSEHOLD: "Household", CLAN: "Clan"}
_SET = {HOUSEHOLD: MEMBERS, CLAN: CLAN_HOUSEHOLDS}
Read = HouseholdRead | ClanRead


async def get_visible(
    session: AsyncSession, subject: Subject, kind: str, collective_id: int, action: Action
) -> Collective:
    """The household or clan if ``subject`` may perform ``action`` on it (404 as if missing outside the
    caller's scope, 403 inside without the role)."""
    missing = f"{_TITLE[kind]} {collective_id} not found."
    collective = await repo.get(session, collective_id, kind)
    if collective is None:
        raise NotFound(missing)
    await authorize(session, subject, collective.org_unit_id, action, missing=missing)
    return collective


# --- reads ----------------------------------------------------------------------------------------------


def _today_ids(rows: Sequence[Any], key: str) -> list[int]:
    day = today()
    return sorted(
        getattr(r, key)
        for r in rows
        if (r.valid_from is None or r.valid_from <= day) and (r.valid_to is None or r.valid_to >= day)
    )


async def to_reads(session: AsyncSession, collectives: Sequence[Collective]) -> list[Read]:
    """Read models with today's set and every period, in two queries per kind."""
    households = [c.id for c in collectives if c.kind == HOUSEHOLD]
    clans = [c.id for c in collectives if c.kind == CLAN]
    sets: dict[int, list[Any]] = {}
    for rel, owners in ((MEMBERS, households), (CLAN_HOUSEHOLDS, clans)):
        for row in await repo.periods_of(session, rel, owners):
            sets.setdefault(getattr(row, rel.owner.key), []).append(row)
    clan_of = await repo.open_owner_of(session, CLAN_HOUSEHOLDS, households)
    reads: list[Read] = []
    for c in collectives:
        base = {
            f: getattr(c, f)
            for f in ("id", "code", "name", "org_unit_id", "valid_from", "valid_to", "version")
        } | {"created_at": c.created_at, "updated_at": c.updated_at}
        rows = sets.get(c.id, [])
        if c.kind == HOUSEHOLD:
            reads.append(
                HouseholdRead(
                    **base,
                    member_ids=_today_ids(rows, "person_id"),
                    members=[MemberPeriod.model_validate(r) for r in rows],
                    clan_id=clan_of.get(c.id),
                )
            )
        else:
            reads.append(
                ClanRead(
                    **base,
                    household_ids=_today_ids(rows, "household_id"),
                    households=[HouseholdPeriod.model_validate(r) for r in rows],
                )
            )
    return reads


async def to_read(session: AsyncSession, collective: Collective) -> Read:
    return (await to_reads(session, [collective]))[0]


async def get(session: AsyncSession, subject: Subject, kind: str, collective_id: int) -> Read:
    return await to_read(
        session, await get_visible(session, subject, kind, collective_id, Action.PERSON_READ)
    )


async def list_collectives(
    session: AsyncSession,
    subject: Subject,
    kind: str,
    params: PageParams,
    *,
    org_unit_id: int | None,
    q: str | None,
) -> tuple[list[Read], int]:
    where: list[ColumnElement[bool]] = [
        Collective.kind == kind,
        unit_filter(subject, Action.PERSON_READ, Collective.org_unit_id),
    ]
    if org_unit_id is not None:
        await get_visible_unit(session, subject, org_unit_id, Action.PERSON_READ)
        where.append(Collective.org_unit_id.in_(subtree_ids([org_unit_id])))
    else:
        require_any_role(subject, Action.PERSON_READ)
    if q:
        where.append(contains(q, Collective.name, Collective.code))
    items, total = await repo.page(session, where, params)
    return await to_reads(session, items), total


# --- writes ---------------------------------------------------------------------------------------------


async def _ensure_code_free(session: AsyncSession, kind: str, code: str | None, own_id: int | None) -> None:
    if code is None:
        return
    existing = await repo.get_by_code(session, kind, code)
    if existing is not None and existing.id != own_id:
        noun = _TITLE[kind].lower()
        raise Conflict(f"Code {code!r} is already used by another {noun}.", details={"field": "code"})


async def _check_members(
    session: AsyncSession, subject: Subject, rel: Relation, ids: Sequence[int], on: date, owner_id: int | None
) -> None:
    """Each joiner is readable by the caller (else the 404 of a missing one) and free from ``on``."""
    for member_id in ids:
        if rel is MEMBERS:
            await people.get_visible(session, subject, member_id, Action.PERSON_READ)
        else:
            await get_visible(session, subject, HOUSEHOLD, member_id, Action.PERSON_READ)
    await periods.check_free(session, rel, ids, on, besides=owner_id)


async def people_behind(session: AsyncSession, rel: Relation, member_ids: Sequence[int]) -> list[int]:
    """The people whose belonging changes when ``member_ids`` join or leave a set of ``rel``: the people
    themselves, or everyone who was ever in the households."""
    if rel is MEMBERS:
        return sorted(set(member_ids))
    return await repo.people_of_households(session, member_ids)


async def change_set(
    session: AsyncSession,
    rel: Relation,
    owner: Collective,
    wanted: Sequence[int],
    on: date,
    *,
    new_version: bool = True,
) -> periods.Change:
    """Replace the owner's set from ``on``, with the people concerned counted out and in again; a change
    gives the owner a new version (the set is part of what clients edit), unless it was just made."""
    current = {getattr(r, rel.member.key) for r in await repo.open_rows(session, rel, owner.id)}
    concerned = await people_behind(session, rel, sorted(current ^ set(wanted)))
    await counters.people_counted(session, concerned, -1)
    change = await periods.replace(session, rel, owner, wanted, on)
    await counters.people_counted(session, concerned, +1)
    if change.touched and new_version:
        owner.updated_at = utcnow()
        await session.flush()
    return change


async def _create(
    session: AsyncSession,
    subject: Subject,
    kind: str,
    data: HouseholdCreate | ClanCreate,
    wanted: list[int],
) -> Read:
    unit = await get_visible_unit(session, subject, data.org_unit_id, Action.PERSON_WRITE)
    noun = _TITLE[kind].lower()
    ensure_open(unit, f"a {noun}")
    on = data.effective_on or periods.default_start(unit)
    periods.check_existed(unit, on)
    await _ensure_code_free(session, kind, data.code, None)
    rel = _SET[kind]
    await _check_members(session, subject, rel, wanted, on, None)
    collective = await insert(session, subject, kind, data.name, data.code, unit, on)
    await change_set(session, rel, collective, wanted, on, new_version=False)
    read = await to_read(session, collective)
    await record(
        session,
        actor_user_id=user_id_of(subject),
        entity_type=kind,
        entity_id=collective.id,
        action="created",
        after=read.model_dump(mode="json", exclude={"created_at", "updated_at"}),
    )
    return read


async def insert(
    session: AsyncSession,
    subject: Subject,
    kind: str,
    name: str,
    code: str | None,
    unit: OrgUnit,
    on: date,
) -> Collective:
    """A new collective placed at ``unit`` from ``on``, and counted there (checks done by the caller)."""
    collective = Collective(
        kind=kind,
        code=code,
        name=name,
        org_unit_id=unit.id,
        valid_from=on,
        created_by=user_id_of(subject),
    )
    session.add(collective)
    await session.flush()
    session.add(CollectivePlace(collective_id=collective.id, org_unit_id=unit.id, valid_from=on))
    await session.flush()
    await counters.collectives_counted(session, [collective.id], +1)
    return collective


async def create_household(session: AsyncSession, subject: Subject, data: HouseholdCreate) -> Read:
    return await _create(session, subject, HOUSEHOLD, data, data.member_ids)


async def create_clan(session: AsyncSession, subject: Subject, data: ClanCreate) -> Read:
    return await _create(session, subject, CLAN, data, data.household_ids)


async def update(
    session: AsyncSession,
    subject: Subject,
    kind: str,
    collective_id: int,
    data: CollectiveUpdate,
    if_match: int | None,
) -> Read:
    collective = await get_visible(session, subject, kind, collective_id, Action.PERSON_WRITE)
    check_version(collective.version, data.version, if_match)
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    if "name" in changes and changes["name"] is None:
        raise ValidationFailed("name cannot be empty.", details={"field": "name"})
    if "code" in changes:
        await _ensure_code_free(session, kind, changes["code"], collective.id)
    changes = {k: v for k, v in changes.items() if getattr(collective, k) != v}
    if changes:
        before = {k: getattr(collective, k) for k in changes}
        for key, value in changes.items():
            setattr(collective, key, value)
        await session.flush()
        await record(
            session,
            actor_user_id=user_id_of(subject),
            entity_type=kind,
            entity_id=collective.id,
            action="updated",
            before=before,
            after=changes,
        )
    return await to_read(session, collective)


async def replace_set(
    session: AsyncSession,
    subject: Subject,
    kind: str,
    collective_id: int,
    data: MembersReplace | HouseholdsReplace,
    if_match: int | None,
) -> Read:
    collective = await get_visible(session, subject, kind, collective_id, Action.PERSON_WRITE)
    check_version(collective.version, data.version, if_match)
    wanted = data.member_ids if isinstance(data, MembersReplace) else data.household_ids
    on = data.effective_on or today()
    rel = _SET[kind]
    current = {getattr(r, rel.member.key) for r in await repo.open_rows(session, rel, collective.id)}
    await _check_members(session, subject, rel, sorted(set(wanted) - current), on, collective.id)
    change = await change_set(session, rel, collective, wanted, on)
    if change.touched:
        field = "member_ids" if rel is MEMBERS else "household_ids"
        await record(
            session,
            actor_user_id=user_id_of(subject),
            entity_type=kind,
            entity_id=collective.id,
            action="members_changed" if rel is MEMBERS else "households_changed",
            before={field: sorted(current)},
            after={
                field: sorted(wanted),
                "joined": change.joined,
                "left": change.left,
                "effective_on": on.isoformat(),
            },
        )
    return await to_read(session, collective)
