"""Rules of plans and targets: who may write them (org_admin of the plan's unit subtree), who may read
them, and what keeps a plan consistent (targets inside its period, a parent plan above it).

A plan applies to the whole subtree of its unit, so besides the usual scope (plans inside the subtrees
where the caller holds a role) a caller may also *read* the plans of the units above their own: those are
the targets their units are measured against. Writing them is a 403, not a 404, since they can be seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, or_
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Action
from app.auth.scope import Subject, ancestor_ids, authorize_reach, reach_filter, require_any_role, subtree_ids
from app.core import audit
from app.core.db import utcnow
from app.core.errors import Conflict, NotFound, ValidationFailed, validation_issues
from app.core.i18n import _
from app.core.pagination import PageParams
from app.core.schemas import check_version
from app.orgs.service import get_visible as get_visible_unit
from app.plans import repository as repo
from app.plans.models import Plan, Target
from app.plans.schemas import PlanCreate, PlanRead, PlanUpdate, TargetIn, TargetsReplace, check_targets


def read_filter(subject: Subject) -> ColumnElement[bool]:
    """Plans the subject may read: inside their subtrees, or at a unit above one of their units."""
    return reach_filter(subject, Action.PLAN_READ, Plan.org_unit_id)


async def get_visible(session: AsyncSession, subject: Subject, plan_id: int, action: Action) -> Plan:
    """The plan, if the subject may perform ``action`` on it: 404 when they cannot see it at all, 403 when
    they can (in their subtree without the role, or above their units) but may not do this."""
    missing = _("Plan {id} not found.", id=plan_id)
    plan = await repo.get(session, plan_id)
    if plan is None:
        raise NotFound(missing)
    above = _("This plan belongs to a unit above yours; only that unit's org_admin may change it.")
    await authorize_reach(
        session, subject, plan.org_unit_id, action, read=Action.PLAN_READ, missing=missing, above=above
    )
    return plan


async def reads(session: AsyncSession, plans: Sequence[Plan]) -> list[PlanRead]:
    targets = await repo.targets_of(session, [p.id for p in plans])
    return [
        PlanRead.model_validate(
            {
                **{f: getattr(p, f) for f in PlanRead.model_fields if f != "targets"},
                "targets": targets.get(p.id, []),
            }
        )
        for p in plans
    ]


def _snapshot(plan: Plan, targets: Sequence[TargetIn] | Sequence[Target] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": plan.title,
        "document_no": plan.document_no,
        "issued_on": plan.issued_on.isoformat() if plan.issued_on else None,
        "start_year": plan.start_year,
        "end_year": plan.end_year,
        "parent_plan_id": plan.parent_plan_id,
    }
    if targets is not None:
        data["targets"] = [[t.metric, t.year, str(t.value)] for t in targets]
    return data


async def _check_parent(session: AsyncSession, subject: Subject, parent_id: int, unit_id: int) -> None:
    parent = await get_visible(session, subject, parent_id, Action.PLAN_READ)
    if not await repo.is_strictly_above(session, parent.org_unit_id, unit_id):
        raise Conflict(
            _("The parent plan must belong to a unit above this plan's unit."),
            details={"field": "parent_plan_id"},
        )


def new_targets(plan: Plan, targets: Sequence[TargetIn]) -> list[Target]:
    return [Target(plan_id=plan.id, metric=t.metric, year=t.year, value=Decimal(t.value)) for t in targets]


async def create(session: AsyncSession, subject: Subject, data: PlanCreate) -> PlanRead:
    await get_visible_unit(session, subject, data.org_unit_id, Action.PLAN_WRITE)
    if data.parent_plan_id is not None:
        await _check_parent(session, subject, data.parent_plan_id, data.org_unit_id)
    plan = Plan(
        org_unit_id=data.org_unit_id,
        title=data.title,
        document_no=data.document_no,
        issued_on=data.issued_on,
        start_year=data.start_year,
        end_year=data.end_year,
        parent_plan_id=data.parent_plan_id,
        created_by=audit.user_id_of(subject),
    )
    session.add(plan)
    await session.flush()
    session.add_all(new_targets(plan, data.targets))
    await session.flush()
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="plan",
        entity_id=plan.id,
        action="created",
        after=_snapshot(plan, data.targets),
    )
    return (await reads(session, [plan]))[0]


async def get(session: AsyncSession, subject: Subject, plan_id: int) -> PlanRead:
    return (await reads(session, [await get_visible(session, subject, plan_id, Action.PLAN_READ)]))[0]


async def update(
    session: AsyncSession, subject: Subject, plan_id: int, data: PlanUpdate, if_match: int | None
) -> PlanRead:
    plan = await get_visible(session, subject, plan_id, Action.PLAN_WRITE)
    check_version(plan.version, data.version, if_match)
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    for required in ("title", "start_year", "end_year"):
        if required in changes and changes[required] is None:
            raise ValidationFailed(_("{field} cannot be empty.", field=required), details={"field": required})
    start = changes.get("start_year", plan.start_year)
    end = changes.get("end_year", plan.end_year)
    if start > end:
        raise ValidationFailed(_("start_year must not be after end_year."), details={"field": "start_year"})
    outside = await repo.years_outside(session, plan.id, start, end)
    if outside:
        raise Conflict(
            _(
                "The plan has targets for years outside {start}–{end}; change its targets first.",
                start=start,
                end=end,
            ),
            details={"target_years": outside},
        )
    if changes.get("parent_plan_id") is not None:
        await _check_parent(session, subject, changes["parent_plan_id"], plan.org_unit_id)
    before = _snapshot(plan)
    for field, value in changes.items():
        setattr(plan, field, value)
    await session.flush()
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="plan",
        entity_id=plan.id,
        action="updated",
        before=before,
        after=_snapshot(plan),
    )
    return (await reads(session, [plan]))[0]


async def replace_targets(
    session: AsyncSession, subject: Subject, plan_id: int, data: TargetsReplace, if_match: int | None
) -> PlanRead:
    plan = await get_visible(session, subject, plan_id, Action.PLAN_WRITE)
    if data.version is None and if_match is None:
        raise ValidationFailed(
            _("The plan's version is required (body field or If-Match)."), details={"field": "version"}
        )
    check_version(plan.version, data.version, if_match)
    problems = check_targets(data.targets, plan.start_year, plan.end_year)
    if problems:
        # The issues of a malformed body: each names its target as ``loc`` (as the create's validation does).
        issues = validation_issues(
            [
                {
                    "loc": ("body", "targets", p["index"]),
                    "msg": p["reason"],
                    "type": "value_error",
                    "ctx": {"error": p["reason"]},
                }
                for p in problems
            ]
        )
        raise ValidationFailed(_("Some targets are not valid; nothing was changed."), details=issues)
    before = (await repo.targets_of(session, [plan.id])).get(plan.id, [])
    before_snapshot = _snapshot(plan, before)["targets"]
    await repo.replace_targets(session, plan, new_targets(plan, data.targets))
    plan.updated_at = utcnow()  # the targets are part of the plan: a new version, checked against races
    await session.flush()
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="plan",
        entity_id=plan.id,
        action="targets_replaced",
        before={"targets": before_snapshot},
        after={"targets": _snapshot(plan, data.targets)["targets"]},
    )
    return (await reads(session, [plan]))[0]


async def delete(session: AsyncSession, subject: Subject, plan_id: int, if_match: int | None) -> None:
    plan = await get_visible(session, subject, plan_id, Action.PLAN_WRITE)
    check_version(plan.version, if_match)
    if await repo.count_children(session, plan.id):
        raise Conflict(_("Other plans name this plan as their parent; change them first."))
    before = _snapshot(plan, (await repo.targets_of(session, [plan.id])).get(plan.id, []))
    await repo.delete_plan(session, plan)
    await audit.record(
        session,
        actor_user_id=audit.user_id_of(subject),
        entity_type="plan",
        entity_id=plan_id,
        action="deleted",
        before=before,
    )


async def list_plans(
    session: AsyncSession,
    subject: Subject,
    params: PageParams,
    *,
    org_unit_id: int | None,
    above: bool,
) -> tuple[list[PlanRead], int]:
    where: list[ColumnElement[bool]] = [read_filter(subject)]
    if org_unit_id is not None:
        await get_visible_unit(session, subject, org_unit_id, Action.PLAN_READ)
        in_subtree = Plan.org_unit_id.in_(subtree_ids([org_unit_id]))
        where.append(
            or_(in_subtree, Plan.org_unit_id.in_(ancestor_ids([org_unit_id]))) if above else in_subtree
        )
    else:
        require_any_role(subject, Action.PLAN_READ)
    plans, total = await repo.page(session, where, params)
    return await reads(session, plans), total
