"""Loads ``criteria_seeds/plans/*.yaml``: validate every file first (a malformed one is refused with its
file, line and reason, and nothing is written), then upsert each plan by its ``key``, parents first.

A plan whose unit code is not in the database is skipped with a line in the report (the reference plans
hang on the demo tree: ``cdht demo`` loads them once the units exist). Any error after the first write
is raised as well, so the caller's unit of work rolls everything back.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.core.seedfiles import SeedError, read_seed
from app.orgs import repository as orgs_repo
from app.plans import repository as repo
from app.plans.models import Plan, Target
from app.plans.schemas import SeedPlan
from app.reporting.calendars import seed_deadlines

__all__ = ["SeedError", "load_plans", "parse_dir", "parse_file"]


@dataclass(frozen=True)
class ParsedPlan:
    path: Path
    data: SeedPlan
    parent_line: int


def parse_file(path: Path) -> ParsedPlan:
    document = read_seed(path, SeedPlan)
    for loc, reason in document.data.problems():
        raise document.error(loc, reason)
    return ParsedPlan(path=path, data=document.data, parent_line=document.line("parent_key"))


def _parents_first(parsed: list[ParsedPlan]) -> list[ParsedPlan]:
    by_key = {p.data.key: p for p in parsed}
    ordered: list[ParsedPlan] = []
    state: dict[str, str] = {}

    def visit(item: ParsedPlan) -> None:
        key = item.data.key
        if state.get(key) == "done":
            return
        if state.get(key) == "visiting":
            raise SeedError(f"{item.path}:{item.parent_line}: parent_key: plans name each other as parents")
        state[key] = "visiting"
        parent = by_key.get(item.data.parent_key or "")
        if parent is not None:
            visit(parent)
        state[key] = "done"
        ordered.append(item)

    for item in parsed:
        visit(item)
    return ordered


def parse_dir(directory: Path) -> list[ParsedPlan]:
    """Every plan file, validated, parents before children."""
    parsed = [parse_file(p) for p in sorted(directory.glob("*.yaml"))]
    seen: dict[str, Path] = {}
    for item in parsed:
        if item.data.key in seen:
            raise SeedError(f"{item.path}:1: key: {item.data.key!r} is also used by {seen[item.data.key]}")
        seen[item.data.key] = item.path
    return _parents_first(parsed)


def _targets_of(seed: SeedPlan) -> list[tuple[str, int, Decimal]]:
    return sorted((t.metric, t.year, Decimal(t.value).quantize(Decimal("0.01"))) for t in seed.targets)


def _fields_of(seed: SeedPlan, unit_id: int, parent_id: int | None) -> dict[str, object]:
    return {
        "org_unit_id": unit_id,
        "title": seed.title,
        "document_no": seed.document_no,
        "issued_on": seed.issued_on,
        "start_year": seed.start_year,
        "end_year": seed.end_year,
        "parent_plan_id": parent_id,
    }


async def _parent_id(session: AsyncSession, item: ParsedPlan, unit_id: int) -> tuple[int | None, str]:
    key = item.data.parent_key
    if key is None:
        return None, ""
    parent = await repo.get_by_key(session, key)
    if parent is None:
        return None, f"; parent {key} not loaded"
    if not await repo.is_strictly_above(session, parent.org_unit_id, unit_id):
        raise SeedError(
            f"{item.path}:{item.parent_line}: parent_key: plan {key} does not belong to a unit above "
            f"unit {item.data.org_unit_code}"
        )
    return parent.id, ""


async def _check_parent_keys(session: AsyncSession, parsed: list[ParsedPlan]) -> None:
    keys = {p.data.key for p in parsed}
    for item in parsed:
        key = item.data.parent_key
        if key is not None and key not in keys and await repo.get_by_key(session, key) is None:
            raise SeedError(f"{item.path}:{item.parent_line}: parent_key: no plan has the key {key!r}")


async def load_plans(session: AsyncSession, directory: Path) -> list[str]:
    parsed = parse_dir(directory)
    await _check_parent_keys(session, parsed)  # everything validated before anything is written
    report = []
    for item in parsed:
        seed = item.data
        unit = await orgs_repo.get_by_code(session, seed.org_unit_code)
        if unit is None:
            report.append(f"plan {seed.key}: skipped (unit {seed.org_unit_code} not loaded; run cdht demo)")
            continue
        parent_id, note = await _parent_id(session, item, unit.id)
        fields = _fields_of(seed, unit.id, parent_id)
        plan = await repo.get_by_key(session, seed.key)
        if plan is None:
            plan = Plan(key=seed.key, **fields)
            session.add(plan)
            await session.flush()
            action = "created"
        else:
            stored = (await repo.targets_of(session, [plan.id])).get(plan.id, [])
            same_targets = sorted((t.metric, t.year, t.value) for t in stored) == _targets_of(seed)
            if same_targets and all(getattr(plan, f) == v for f, v in fields.items()):
                report.append(f"plan {seed.key}: unchanged")
                continue
            for field, value in fields.items():
                setattr(plan, field, value)
            plan.updated_at = utcnow()
            action = "updated"
        targets = [Target(plan_id=plan.id, metric=m, year=y, value=v) for m, y, v in _targets_of(seed)]
        await repo.replace_targets(session, plan, targets)
        await session.flush()
        report.append(f"plan {seed.key}: {action} (unit {seed.org_unit_code}, {len(targets)} targets{note})")
    for item in parsed:
        if item.data.reporting and (unit := await orgs_repo.get_by_code(session, item.data.org_unit_code)):
            report += await seed_deadlines(session, unit, item.data)
    return report
