"""The ``import.finished`` webhook event: an import applied in its request, or a job finished (done —
applied, dry run or refused for row errors — or failed). Written through the outbox in the import's own
transaction. Counts only; never the rows or their errors.

An import has no single unit: the event is about the highest unit where the sender may import (their
``import:write`` grant nearest the root), so subscriptions there and above it hear of it; for a system
administrator, who is held nowhere, the sender's home unit, else the root of the tree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import RoleAssignment, User
from app.auth.policy import Action, roles_for
from app.imports.schemas import ImportSummary
from app.orgs.models import OrgUnit
from app.webhooks import outbox
from app.webhooks.models import EventType


async def _unit_of(session: AsyncSession, user_id: int | None) -> int | None:
    if user_id is not None:
        roles = [role.value for role in roles_for(Action.IMPORT_WRITE)]
        granted = await session.scalar(
            select(RoleAssignment.org_unit_id)
            .join(OrgUnit, OrgUnit.id == RoleAssignment.org_unit_id)
            .where(RoleAssignment.user_id == user_id, RoleAssignment.role.in_(roles))
            .order_by(OrgUnit.depth, OrgUnit.id)
            .limit(1)
        )
        if granted is not None:
            return granted
        home = await session.scalar(select(User.org_unit_id).where(User.id == user_id))
        if home is not None:
            return home
    return await session.scalar(
        select(OrgUnit.id).where(OrgUnit.parent_id.is_(None)).order_by(OrgUnit.id).limit(1)
    )


async def announce(
    session: AsyncSession,
    *,
    actor_user_id: int | None,
    kind: str,
    dry_run: bool,
    summary: ImportSummary | None = None,
    job_id: int | None = None,
    error_code: str | None = None,
) -> None:
    """Queue ``import.finished`` (nothing when the tree is still empty: no unit to announce it at)."""
    unit_id = await _unit_of(session, actor_user_id)
    if unit_id is None:
        return
    data: dict[str, Any] = {
        "import_id": summary.import_id if summary else None,
        "job_id": job_id,
        "kind": kind,
        "dry_run": dry_run,
        "status": "failed" if summary is None else "done",
        "applied": bool(summary and not dry_run and not summary.error_count),
        "created": summary.created if summary else 0,
        "updated": summary.updated if summary else 0,
        "unchanged": summary.unchanged if summary else 0,
        "error_count": summary.error_count if summary else 0,
        "error_code": error_code,
    }
    await outbox.emit(session, EventType.IMPORT_FINISHED, unit_id, data)
