"""Every query of users, role assignments and refresh tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import RefreshToken, RoleAssignment, User
from app.core.db import UTCDateTime
from app.core.pagination import PageParams, fetch_page
from app.people.models import Person


@dataclass(frozen=True)
class SubjectRow:
    """What a request needs of its caller, read in one statement (:func:`subject_rows`)."""

    username: str
    is_active: bool
    is_service: bool
    person_id: int | None
    assignment_id: int | None
    role: str | None
    org_unit_id: int | None
    # The user's last write mark and the primary's clock, both from the database: how long ago the user
    # wrote is measured on one clock (read replicas' read-your-writes).
    last_write_at: datetime | None
    now: datetime


# Built once: every authenticated request runs it, and building a statement costs more than compiling
# it (which SQLAlchemy caches).
_SUBJECT = (
    select(
        User.username,
        User.is_active,
        User.is_service,
        Person.id,
        RoleAssignment.id,
        RoleAssignment.role,
        RoleAssignment.org_unit_id,
        User.last_write_at,
        func.now(type_=UTCDateTime),
    )
    .outerjoin(Person, Person.user_id == User.id)
    .outerjoin(RoleAssignment, RoleAssignment.user_id == User.id)
    .where(User.id == bindparam("user_id"))
    .order_by(RoleAssignment.id)
)


async def subject_rows(session: AsyncSession, user_id: int) -> list[SubjectRow]:
    """The user, their person and their role assignments in one statement (one row per assignment, or
    one without): every authenticated request reads this, so it is one round trip, not three. Run on the
    session's connection: plain rows need nothing of the ORM's execution."""
    result = await (await session.connection()).execute(_SUBJECT, {"user_id": user_id})
    return [SubjectRow(*row) for row in result.all()]


# Built once, as _SUBJECT: GET /me reads its caller this way instead (auth/deps.get_me), the full rows
# with the primary's clock, so its subject and its answer come from one statement.
_ME = (
    select(User, Person, RoleAssignment, func.now(type_=UTCDateTime))
    .outerjoin(Person, Person.user_id == User.id)
    .outerjoin(RoleAssignment, RoleAssignment.user_id == User.id)
    .where(User.id == bindparam("user_id"))
    .order_by(RoleAssignment.id)
)


@dataclass(frozen=True)
class MeRows:
    """A user, their person and their role assignments (``GET /me``), and the primary's clock."""

    user: User
    person: Person | None
    assignments: list[RoleAssignment]
    now: datetime

    def subject_rows(self) -> list[SubjectRow]:
        """The same as :func:`subject_rows` would read."""
        user, person_id = self.user, self.person.id if self.person else None

        def row(a: RoleAssignment | None) -> SubjectRow:
            return SubjectRow(
                username=user.username,
                is_active=user.is_active,
                is_service=user.is_service,
                person_id=person_id,
                assignment_id=a.id if a else None,
                role=a.role if a else None,
                org_unit_id=a.org_unit_id if a else None,
                last_write_at=user.last_write_at,
                now=self.now,
            )

        return [row(a) for a in self.assignments] or [row(None)]


async def me_rows(session: AsyncSession, user_id: int) -> MeRows | None:
    """A user, their person and their role assignments in one statement (``GET /me``)."""
    rows = (await session.execute(_ME, {"user_id": user_id})).all()
    if not rows:
        return None
    return MeRows(rows[0][0], rows[0][1], [row[2] for row in rows if row[2] is not None], rows[0][3])


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def set_password_hash(session: AsyncSession, user_id: int, password_hash: str) -> None:
    await session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))


async def get_user_by_username(session: AsyncSession, username: str) -> User | None:
    """Whatever the case it is typed in (``Alice`` is ``alice``): through the unique index on the
    database's ``lower(username)``."""
    return await session.scalar(select(User).where(User.username_lower == username.strip().lower()))


async def page_users(
    session: AsyncSession, where: list[ColumnElement[bool]], params: PageParams
) -> tuple[list[User], int]:
    return await fetch_page(session, select(User).where(*where).order_by(User.username), params)


async def assignments_for(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, list[RoleAssignment]]:
    result: dict[int, list[RoleAssignment]] = {uid: [] for uid in user_ids}
    if not user_ids:
        return result
    stmt = select(RoleAssignment).where(RoleAssignment.user_id.in_(user_ids)).order_by(RoleAssignment.id)
    for assignment in (await session.scalars(stmt)).all():
        result[assignment.user_id].append(assignment)
    return result


async def persons_for(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, Person]:
    if not user_ids:
        return {}
    stmt = select(Person).where(Person.user_id.in_(user_ids))
    return {p.user_id: p for p in (await session.scalars(stmt)).all() if p.user_id is not None}


async def get_assignment(session: AsyncSession, assignment_id: int) -> RoleAssignment | None:
    return await session.get(RoleAssignment, assignment_id)


async def find_assignment(
    session: AsyncSession, user_id: int, role: str, org_unit_id: int | None
) -> RoleAssignment | None:
    unit_clause = (
        RoleAssignment.org_unit_id.is_(None)
        if org_unit_id is None
        else RoleAssignment.org_unit_id == org_unit_id
    )
    return await session.scalar(
        select(RoleAssignment).where(
            RoleAssignment.user_id == user_id, RoleAssignment.role == role, unit_clause
        )
    )


async def get_refresh_token(session: AsyncSession, token_digest: str) -> RefreshToken | None:
    stmt = select(RefreshToken).where(RefreshToken.token_digest == token_digest)
    return await session.scalar(stmt.with_for_update())


async def revoke_family(session: AsyncSession, family: str, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def revoke_all_for_user(session: AsyncSession, user_id: int, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
