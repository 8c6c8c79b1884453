"""Rules of training sessions: recorded by an org_admin of the holding unit's subtree, attended by people
of that subtree; the attendance lists are person-level data (not for viewers)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import counters
from app.auth.policy import Action
from app.auth.scope import Subject, authorize, require_any_role, subtree_ids, unit_filter
from app.core import audit
from app.core.db import utcnow
from app.core.errors import Conflict, NotFound
from app.core.pagination import PageParams
from app.core.schemas import check_version
from app.orgs.service import get_visible as get_visible_unit
from app.trainings import repository as repo
from app.trainings.models import TrainingSession
from app.trainings.schemas import AttendeesReplace, TrainingSessionCreate, TrainingSessionRead


async def get_visible(
    session: AsyncSession, subject: Subject, session_id: int, action: Action
) -> TrainingSession:
    missing = f"Training session {session_id} not found."
    training = await repo.get(session, session_id)
    if training is None:
        raise NotFound(missing)
    await authorize(session, subject, training.org_unit_id, action, missing=missing)
    return training


async def reads(session: AsyncSession, trainings: Sequence[TrainingSession]) -> list[TrainingSessionRead]:
    attendees = await repo.attendees_of(session, [t.id for t in trainings])
    return [
        TrainingSessionRead.model_validate(
            {
                **{
                    f: getattr(t, f)
                    for f in TrainingSessionRead.model_fields
                    if f not in ("attendee_ids", "attendee_count")
                },
                "attendee_ids": attendees.get(t.id, []),
                "attendee_count": len(attendees.get(t.id, [])),
            }
        )
        for t in trainings
    ]


async def _check_attendees(session: AsyncSession, unit_id: int, person_ids: list[int]) -> None:
    found = await repo.people_in_subtree(session, unit_id, person_ids)
    outside = [p for p in person_ids if p not in found]
    if outside:
        # The same answer for a person who does not exist and one elsewhere: nothing leaks across scopes.
        raise Conflict(
            "Some attendees are not people of this unit's subtree; nothing was changed.",
            details={"person_ids": outside},
        )


async def _replace_attendance(
    session: AsyncSession, training: TrainingSession, attendee_ids: list[int], before: list[int] | None = None
) -> None:
    """Replace the attendance and keep the ``trained`` counters right: a person counts once per year,
    however many sessions they attended."""
    affected = sorted(set(before or []) | set(attendee_ids))
    await counters.training_counted(session, training.id, affected, -1)
    await repo.replace_attendees(session, training.id, attendee_ids)
    await counters.training_counted(session, training.id, affected, +1)


async def create(session: AsyncSession, subject: Subject, data: TrainingSessionCreate) -> TrainingSessionRead:
    await get_visible_unit(session, subject, data.org_unit_id, Action.TRAINING_WRITE)
    await _check_attendees(session, data.org_unit_id, data.attendee_ids)
    training = TrainingSession(
        org_unit_id=data.org_unit_id,
        title=data.title,
        held_on=data.held_on,
        year=data.held_on.year,
        created_by=audit.user_id_of(subject),
    )
    session.add(training)
    await session.flush()
    await _replace_attendance(session, training, data.attendee_ids)
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="training_session",
        entity_id=training.id,
        action="created",
        after={"title": data.title, "held_on": data.held_on.isoformat(), "attendee_ids": data.attendee_ids},
    )
    return (await reads(session, [training]))[0]


async def get(session: AsyncSession, subject: Subject, session_id: int) -> TrainingSessionRead:
    return (await reads(session, [await get_visible(session, subject, session_id, Action.TRAINING_READ)]))[0]


async def replace_attendees(
    session: AsyncSession, subject: Subject, session_id: int, data: AttendeesReplace, if_match: int | None
) -> TrainingSessionRead:
    training = await get_visible(session, subject, session_id, Action.TRAINING_WRITE)
    check_version(training.version, data.version, if_match)
    await _check_attendees(session, training.org_unit_id, data.attendee_ids)
    before = (await repo.attendees_of(session, [training.id])).get(training.id, [])
    await _replace_attendance(session, training, data.attendee_ids, before)
    training.updated_at = utcnow()  # a new version: the attendance is part of the session
    await session.flush()
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="training_session",
        entity_id=training.id,
        action="attendees_replaced",
        before={"attendee_ids": before},
        after={"attendee_ids": sorted(data.attendee_ids)},
    )
    return (await reads(session, [training]))[0]


async def list_sessions(
    session: AsyncSession,
    subject: Subject,
    params: PageParams,
    *,
    org_unit_id: int | None,
    year: int | None,
) -> tuple[list[TrainingSessionRead], int]:
    where: list[ColumnElement[bool]] = [
        unit_filter(subject, Action.TRAINING_READ, TrainingSession.org_unit_id)
    ]
    if org_unit_id is not None:
        await get_visible_unit(session, subject, org_unit_id, Action.TRAINING_READ)
        where.append(TrainingSession.org_unit_id.in_(subtree_ids([org_unit_id])))
    else:
        require_any_role(subject, Action.TRAINING_READ)
    if year is not None:
        where.append(TrainingSession.year == year)
    trainings, total = await repo.page(session, where, params)
    return await reads(session, trainings), total
