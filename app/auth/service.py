"""Rules for users, role assignments and service accounts: who may create whom, grant what, where.

Security changes (an account created, a password changed or reset, an account (de)activated, a role
granted or removed, a service account created) each write an audit row in the change's transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository as repo
from app.auth.models import Role, RoleAssignment, User
from app.auth.policy import SERVICE_ACCOUNT_ROLES, Action
from app.auth.schemas import (
    MeRead,
    PersonBrief,
    RoleAssignmentCreate,
    RoleAssignmentRead,
    ServiceAccountCreate,
    ServiceAccountCreated,
    ServiceAccountRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from app.auth.scope import Subject, authorize, require_any_role, subtree_ids, unit_filter
from app.auth.throttle import LoginThrottle
from app.core import audit
from app.core.db import utcnow
from app.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.core.pagination import PageParams
from app.core.schemas import check_version, json_of
from app.core.search import contains
from app.core.security import digest, hash_password, verify_password
from app.orgs.service import ensure_open
from app.orgs.service import get_visible as get_visible_unit
from app.people.models import Person


async def _to_reads(session: AsyncSession, users: Sequence[User]) -> list[UserRead]:
    ids = [u.id for u in users]
    assignments = await repo.assignments_for(session, ids)
    persons = await repo.persons_for(session, ids)
    return [_read(user, assignments[user.id], persons.get(user.id)) for user in users]


def _read(user: User, assignments: Sequence[RoleAssignment], person: Person | None) -> UserRead:
    read = UserRead.model_validate(user)
    read.roles = [RoleAssignmentRead.model_validate(a) for a in assignments]
    read.person_id = person.id if person else None
    return read


async def _visible_user(session: AsyncSession, subject: Subject, user_id: int, action: Action) -> User:
    missing = f"User {user_id} not found."
    user = await repo.get_user(session, user_id)
    if user is None:
        raise NotFound(missing)
    if user.id == subject.user_id and action == Action.USER_READ:
        return user
    if user.org_unit_id is None:  # a system administrator: only admins see them
        if not subject.is_admin:
            raise NotFound(missing)
        return user
    await authorize(session, subject, user.org_unit_id, action, missing=missing)
    return user


async def _ensure_outranks(session: AsyncSession, subject: Subject, user: User) -> None:
    """Changing someone else's account (password, status, name) needs user rights over every unit where
    they hold a role: otherwise an org_admin could reset the password of a user who lives in their subtree
    but holds a role above it (or ``admin``) and so take those powers over."""
    if subject.is_admin:
        return
    refused = Forbidden("This user holds roles outside your scope; ask an administrator.")
    for assignment in (await repo.assignments_for(session, [user.id]))[user.id]:
        if assignment.org_unit_id is None:
            raise refused
        try:
            await authorize(session, subject, assignment.org_unit_id, Action.USER_WRITE)
        except (NotFound, Forbidden):
            raise refused from None


async def _audit(
    session: AsyncSession,
    subject: Subject,
    user: User,
    action: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    await audit.record_by(session, subject, "user", user.id, action, before, after)


def _grant_entry(assignment: RoleAssignment) -> dict[str, Any]:
    return {"assignment_id": assignment.id, "role": assignment.role, "org_unit_id": assignment.org_unit_id}


async def _link_person(session: AsyncSession, subject: Subject, user: User, person_id: int) -> None:
    missing = f"Person {person_id} not found."
    person = await session.get(Person, person_id)
    if person is None:
        raise NotFound(missing)
    await authorize(session, subject, person.org_unit_id, Action.PERSON_WRITE, missing=missing)
    if person.user_id is not None and person.user_id != user.id:
        raise Conflict("That person is already linked to another user.")
    person.user_id = user.id


async def create_user(session: AsyncSession, subject: Subject, data: UserCreate) -> UserRead:
    ensure_open(await get_visible_unit(session, subject, data.org_unit_id, Action.USER_WRITE), "a user")
    if await repo.get_user_by_username(session, data.username) is not None:  # whatever the case
        raise Conflict(f"Username {data.username!r} is taken.", details={"field": "username"})
    _refuse_username_as_password(data.password, data.username)
    user = User(
        username=data.username,
        password_hash=await hash_password(data.password),
        full_name=data.full_name,
        email=data.email,
        org_unit_id=data.org_unit_id,
    )
    session.add(user)
    await session.flush()
    if data.person_id is not None:
        await _link_person(session, subject, user, data.person_id)
        await session.flush()
    after = {"username": user.username, "org_unit_id": user.org_unit_id, "person_id": data.person_id}
    await _audit(session, subject, user, "created", after=after)
    return (await _to_reads(session, [user]))[0]


def _refuse_username_as_password(password: str, username: str) -> None:
    if password.strip().casefold() == username.strip().casefold():
        raise ValidationFailed("The password must not be the username.", details={"field": "password"})


async def get_user(session: AsyncSession, subject: Subject, user_id: int) -> UserRead:
    user = await _visible_user(session, subject, user_id, Action.USER_READ)
    return (await _to_reads(session, [user]))[0]


async def list_users(
    session: AsyncSession, subject: Subject, params: PageParams, org_unit_id: int | None, q: str | None
) -> tuple[list[UserRead], int]:
    where: list[ColumnElement[bool]] = [unit_filter(subject, Action.USER_READ, User.org_unit_id)]
    if org_unit_id is not None:
        await get_visible_unit(session, subject, org_unit_id, Action.USER_READ)
        where.append(User.org_unit_id.in_(subtree_ids([org_unit_id])))
    else:
        require_any_role(subject, Action.USER_READ)
    if q:
        where.append(contains(q, User.username, User.full_name))
    users, total = await repo.page_users(session, where, params)
    return await _to_reads(session, users), total


async def update_user(
    session: AsyncSession,
    subject: Subject,
    user_id: int,
    data: UserUpdate,
    if_match: int | None,
    *,
    throttle: LoginThrottle,
) -> UserRead:
    """Users change their own name, email and password (the password only with the current one);
    those with user rights over every unit of the user's roles also reset passwords and (de)activate."""
    changes = data.model_dump(exclude_unset=True, exclude={"version", "current_password"})
    is_self = user_id == subject.user_id
    if is_self and set(changes) <= {"full_name", "email", "password"}:
        user = await _visible_user(session, subject, user_id, Action.USER_READ)
    else:
        user = await _visible_user(session, subject, user_id, Action.USER_WRITE)
        if not is_self:
            await _ensure_outranks(session, subject, user)
    check_version(user.version, data.version, if_match)
    if changes.get("full_name", "") is None:
        raise ValidationFailed("full_name cannot be empty.")
    if "password" in changes:
        password = changes.pop("password")
        if password is None:
            raise ValidationFailed("password cannot be empty.")
        _refuse_username_as_password(password, user.username)
        if is_self:
            await _check_current_password(session, throttle, user, data.current_password)
        user.password_hash = await hash_password(password)
        await repo.revoke_all_for_user(session, user.id, utcnow())
        await _audit(session, subject, user, "password_changed" if is_self else "password_reset")
    if changes.get("is_active") is False:
        if is_self:
            raise Conflict("You cannot deactivate your own account.")
        await repo.revoke_all_for_user(session, user.id, utcnow())
    if changes.get("is_active") is not None and changes["is_active"] != user.is_active:
        await _audit(
            session,
            subject,
            user,
            "activated" if changes["is_active"] else "deactivated",
            before={"is_active": user.is_active},
            after={"is_active": changes["is_active"]},
        )
    for field, value in changes.items():
        if value is not None or field == "email":
            setattr(user, field, value)
    await session.flush()
    return (await _to_reads(session, [user]))[0]


async def _check_current_password(
    session: AsyncSession, throttle: LoginThrottle, user: User, current: str | None
) -> None:
    """Changing one's own password takes the current one, guessed no more often than at the login: the
    attempt counts on the username's login counter (a 429 when it is locked) before the hash is checked,
    and a wrong one is kept although the request fails."""
    if current is None:
        raise ValidationFailed(
            "current_password is required to change your own password.",
            details={"field": "current_password"},
        )
    await throttle.attempt(session, user.username, None)
    if not await verify_password(current, user.password_hash):
        raise Forbidden(
            "The current password is wrong.", details={"field": "current_password"}, keep_changes=True
        )
    await throttle.succeeded(session, user.username, None)


async def grant_role(
    session: AsyncSession, subject: Subject, user_id: int, data: RoleAssignmentCreate
) -> RoleAssignment:
    user = await _visible_user(session, subject, user_id, Action.USER_WRITE)
    if user.id == subject.user_id:
        # Separation of duties: one person cannot make themself assessor and approver of their own work.
        raise Forbidden("Nobody grants a role to themself: ask another org_admin or a system administrator.")
    if data.role == Role.ADMIN:
        if not subject.is_admin:
            raise Forbidden("Only a system administrator may grant admin.")
        if data.org_unit_id is not None:
            raise ValidationFailed("admin is not held at a unit; omit org_unit_id.")
    else:
        if data.org_unit_id is None:
            raise ValidationFailed("org_unit_id is required for this role.")
        unit = await get_visible_unit(session, subject, data.org_unit_id, Action.USER_WRITE)
        ensure_open(unit, "a role")
    if user.is_service and data.role not in SERVICE_ACCOUNT_ROLES:
        raise ValidationFailed("Service accounts hold only integration or viewer roles.")
    if await repo.find_assignment(session, user.id, data.role.value, data.org_unit_id) is not None:
        raise Conflict("The user already holds this role at this unit.")
    assignment = RoleAssignment(
        user_id=user.id, role=data.role.value, org_unit_id=data.org_unit_id, granted_by=subject.user_id
    )
    session.add(assignment)
    await session.flush()
    await _audit(session, subject, user, "role_granted", after=_grant_entry(assignment))
    return assignment


async def revoke_role(session: AsyncSession, subject: Subject, user_id: int, assignment_id: int) -> None:
    user = await _visible_user(session, subject, user_id, Action.USER_WRITE)
    assignment = await repo.get_assignment(session, assignment_id)
    if assignment is None or assignment.user_id != user.id:
        raise NotFound(f"Role assignment {assignment_id} not found.")
    if assignment.org_unit_id is None:
        if not subject.is_admin:
            raise Forbidden("Only a system administrator may remove admin.")
    else:
        await get_visible_unit(session, subject, assignment.org_unit_id, Action.USER_WRITE)
    before = _grant_entry(assignment)
    await session.delete(assignment)
    await session.flush()
    await _audit(session, subject, user, "role_revoked", before=before)


async def create_service_account(
    session: AsyncSession, subject: Subject, data: ServiceAccountCreate
) -> ServiceAccountCreated:
    ensure_open(await get_visible_unit(session, subject, data.org_unit_id, Action.USER_WRITE), "an account")
    roles = sorted(set(data.roles))
    if any(role not in SERVICE_ACCOUNT_ROLES for role in roles):
        raise ValidationFailed("Service accounts hold only integration or viewer roles.")
    client_id = "sa_" + secrets.token_hex(8)
    client_secret = secrets.token_urlsafe(32)
    user = User(
        username=client_id,
        password_hash=digest(client_secret),  # high-entropy secret: a fast digest is enough
        full_name=data.name,
        org_unit_id=data.org_unit_id,
        is_service=True,
    )
    session.add(user)
    await session.flush()
    for role in roles:
        session.add(
            RoleAssignment(
                user_id=user.id, role=role.value, org_unit_id=data.org_unit_id, granted_by=subject.user_id
            )
        )
    await session.flush()
    after = {"client_id": user.username, "org_unit_id": user.org_unit_id, "roles": [r.value for r in roles]}
    await _audit(session, subject, user, "service_account_created", after=after)
    read = (await _service_account_reads(session, [user]))[0]
    return ServiceAccountCreated(**read.model_dump(), client_secret=client_secret)


async def _service_account_reads(session: AsyncSession, users: Sequence[User]) -> list[ServiceAccountRead]:
    assignments = await repo.assignments_for(session, [u.id for u in users])
    return [
        ServiceAccountRead(
            id=user.id,
            name=user.full_name,
            org_unit_id=user.org_unit_id or 0,
            client_id=user.username,
            roles=[RoleAssignmentRead.model_validate(a) for a in assignments[user.id]],
            is_active=user.is_active,
        )
        for user in users
    ]


async def list_service_accounts(
    session: AsyncSession, subject: Subject, params: PageParams
) -> tuple[list[ServiceAccountRead], int]:
    where = [User.is_service.is_(True), unit_filter(subject, Action.USER_READ, User.org_unit_id)]
    users, total = await repo.page_users(session, where, params)
    return await _service_account_reads(session, users), total


def me_json(found: repo.MeRows) -> bytes:
    """``GET /me``'s body (``MeRead`` as FastAPI writes it) from the rows its subject was read from
    (``auth/deps.get_me``, which keeps it with the subject)."""
    read = _read(found.user, found.assignments, found.person)
    person = PersonBrief.model_validate(found.person) if found.person else None
    return json_of(MeRead(user=read, person=person, roles=read.roles))
