"""Rules for criteria sets: reading them, deriving local variants, and choosing the set for a person
(their group's set; the nearest variant at or above their unit wins over the national one)."""

from __future__ import annotations

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Action
from app.auth.scope import Subject
from app.core.errors import Conflict, NotFound
from app.core.pagination import PageParams
from app.criteria import repository as repo
from app.criteria.models import CriteriaSet, Criterion, Indicator
from app.criteria.schemas import (
    CriteriaSetRead,
    CriteriaVariantCreate,
    CriterionRead,
    DigitalThresholds,
    GradeRead,
    IndicatorRead,
)
from app.orgs import repository as orgs_repo
from app.orgs import service as orgs


async def get_set(session: AsyncSession, set_id: int) -> CriteriaSet:
    found = await repo.get(session, set_id)
    if found is None:
        raise NotFound(f"Criteria set {set_id} not found.")
    return found


async def read(session: AsyncSession, set_id: int) -> CriteriaSetRead:
    """Criteria sets are programme data, readable by every signed-in user."""
    criteria_set = await get_set(session, set_id)
    criteria = await repo.criteria_of(session, set_id)
    indicators = await repo.indicators_of(session, set_id)
    return CriteriaSetRead(
        **{
            k: getattr(criteria_set, k)
            for k in CriteriaSetRead.model_fields
            if hasattr(criteria_set, k) and k != "grades"
        },
        digital_thresholds=DigitalThresholds(
            basic=criteria_set.digital_basic_halves / 2,
            proficient=(criteria_set.digital_proficient_halves or criteria_set.digital_basic_halves) / 2,
        )
        if criteria_set.digital_basic_halves is not None
        else None,
        grades=[GradeRead.model_validate(g) for g in criteria_set.grades] if criteria_set.grades else None,
        criteria=[
            CriterionRead(
                number=c.number,
                title=c.title,
                indicators=[IndicatorRead.model_validate(i) for i in indicators if i.criterion_id == c.id],
            )
            for c in criteria
        ],
    )


async def list_sets(
    session: AsyncSession,
    params: PageParams,
    group: str | None,
    org_unit_id: int | None,
    recognises: str | None = None,
) -> tuple[list[CriteriaSet], int]:
    where: list[ColumnElement[bool]] = []
    if recognises:
        where.append(CriteriaSet.recognises == recognises)
    if group:
        where.append(CriteriaSet.group == group)
    if org_unit_id is not None:
        where.append(CriteriaSet.org_unit_id == org_unit_id)
    return await repo.page(session, where, params)


async def create_variant(
    session: AsyncSession, subject: Subject, data: CriteriaVariantCreate
) -> CriteriaSetRead:
    unit = await orgs.get_visible(session, subject, data.org_unit_id, Action.CRITERIA_WRITE)
    parent = await get_set(session, data.parent_id)
    if await repo.get_by_code(session, data.code) is not None:
        raise Conflict(f"A criteria set with code {data.code!r} exists already.", details={"field": "code"})
    parent_indicators = {i.number: i for i in await repo.indicators_of(session, parent.id)}
    replacements: dict[int, Indicator] = {}
    for sub in data.substitutions:
        if sub.number not in parent_indicators:
            raise Conflict(f"The parent set has no indicator {sub.number}.")
        source_number = sub.source_number or sub.number
        source = {i.number: i for i in await repo.indicators_of(session, sub.source_set_id)}.get(
            source_number
        )
        if source is None:
            raise Conflict(f"Set {sub.source_set_id} has no indicator {source_number}.")
        replacements[sub.number] = source
    variant = CriteriaSet(
        code=data.code,
        version=1,
        title=data.title,
        recognises=parent.recognises,
        group=parent.group,
        source=f"Biến thể của {parent.code} v{parent.version}; thay chỉ tiêu "
        + ", ".join(str(n) for n in sorted(replacements)),
        needs_verification=parent.needs_verification,
        max_total=parent.max_total,
        pass_total=parent.pass_total,
        min_indicator=parent.min_indicator,
        digital_basic_halves=parent.digital_basic_halves,
        digital_proficient_halves=parent.digital_proficient_halves,
        grades=parent.grades,
        parent_id=parent.id,
        org_unit_id=unit.id,
        created_by=subject.user_id,
    )
    session.add(variant)
    await session.flush()
    criterion_ids: dict[int, int] = {}
    for criterion in await repo.criteria_of(session, parent.id):
        copy = Criterion(set_id=variant.id, number=criterion.number, title=criterion.title)
        session.add(copy)
        await session.flush()
        criterion_ids[criterion.id] = copy.id
    total = 0
    for number, original in sorted(parent_indicators.items()):
        chosen = replacements.get(number, original)
        total += chosen.max_points
        session.add(
            Indicator(
                set_id=variant.id,
                criterion_id=criterion_ids[original.criterion_id],
                number=number,
                title=chosen.title,
                max_points=chosen.max_points,
                evidence_hint=chosen.evidence_hint,
                digital=chosen.digital,
            )
        )
    if total != variant.max_total:
        raise Conflict(f"The substitutions make the set total {total}, not {variant.max_total}.")
    await session.flush()
    return await read(session, variant.id)


async def set_for_person(session: AsyncSession, group: str, org_unit_id: int) -> CriteriaSet:
    """The active set of the person's group: the variant of the nearest unit at or above theirs, else the
    national set of the highest version."""
    candidates = await repo.active_sets_for_group(session, group)
    return await _nearest(session, candidates, org_unit_id, f"group {group!r}")


async def set_for_title(session: AsyncSession, title: str, org_unit_id: int) -> CriteriaSet:
    """The active set of a collective title, chosen as :func:`set_for_person` chooses."""
    candidates = await repo.active_sets_for_title(session, title)
    return await _nearest(session, candidates, org_unit_id, f"the title {title!r}")


async def _nearest(
    session: AsyncSession, candidates: list[CriteriaSet], org_unit_id: int, what: str
) -> CriteriaSet:
    if not candidates:
        raise Conflict(f"No criteria set is loaded for {what}; run `cdht seed`.")
    ancestors = await orgs_repo.ancestor_ids(session, org_unit_id)
    rank = {unit_id: distance for distance, unit_id in enumerate(ancestors)}
    local = [c for c in candidates if c.org_unit_id in rank]
    if local:
        return min(local, key=lambda c: (rank[c.org_unit_id or 0], -c.version))
    national = [c for c in candidates if c.org_unit_id is None]
    if not national:
        raise Conflict(f"No criteria set applies to {what} here.")
    return national[0]
