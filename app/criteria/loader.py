"""Loads ``criteria_seeds/criteria/*.yaml`` into the database: validate every file first (a malformed
one is refused with its file, line and reason, and nothing is written), then insert new sets, update
unused ones whose text changed, and refuse to change a set that evaluations already use."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.seedfiles import SeedError, read_seed
from app.criteria import repository as repo
from app.criteria.models import CriteriaSet, Criterion, Indicator, StoredGrade
from app.criteria.schemas import SeedCriteriaSet

__all__ = ["SeedError", "load_criteria", "parse_dir", "parse_file"]


@dataclass(frozen=True)
class ParsedSet:
    path: Path
    data: SeedCriteriaSet
    digest: str


def parse_file(path: Path) -> ParsedSet:
    document = read_seed(path, SeedCriteriaSet)
    canonical = json.dumps(document.data.model_dump(mode="json"), sort_keys=True)
    return ParsedSet(path=path, data=document.data, digest=hashlib.sha256(canonical.encode()).hexdigest())


def parse_dir(directory: Path) -> list[ParsedSet]:
    parsed = [parse_file(p) for p in sorted(directory.glob("*.yaml"))]
    seen: dict[tuple[str, int], Path] = {}
    for item in parsed:
        key = (item.data.code, item.data.version)
        if key in seen:
            raise SeedError(f"{item.path}: {key[0]} v{key[1]} is also defined in {seen[key]}")
        seen[key] = item.path
    return parsed


async def load_criteria(session: AsyncSession, directory: Path) -> list[str]:
    """Load the sets of ``directory``; one read of the stored sets, then one batched insert each of the
    changed sets, their criteria and their indicators (a handful of statements, whatever the files)."""
    parsed = parse_dir(directory)  # everything validated before anything is written
    stored = {
        (found.code, found.version): found
        for found in await repo.sets_with_codes(session, {item.data.code for item in parsed})
    }
    report = []
    written: list[tuple[CriteriaSet, SeedCriteriaSet]] = []
    for item in parsed:
        seed = item.data
        existing = stored.get((seed.code, seed.version))
        if existing is not None and existing.content_digest == item.digest:
            report.append(f"criteria {seed.code} v{seed.version}: unchanged")
            continue
        if existing is not None and existing.frozen:
            raise SeedError(
                f"{item.path}: {seed.code} v{seed.version} is already used by evaluations and cannot change; "
                "give the new text a new version number"
            )
        if existing is None:
            existing = CriteriaSet(code=seed.code, version=seed.version)
            session.add(existing)
            action = "created"
        else:
            await repo.clear_structure(session, existing.id)
            action = "updated"
        _apply(existing, seed, item.digest)
        written.append((existing, seed))
        report.append(f"criteria {seed.code} v{seed.version}: {action}")
    if written:
        await session.flush()
        await _write_structure(session, written)
    return report


def _apply(target: CriteriaSet, seed: SeedCriteriaSet, digest: str) -> None:
    target.title = seed.title
    target.recognises = seed.recognises.value
    target.group = seed.group.value if seed.group else None
    target.source = seed.source
    target.needs_verification = seed.needs_verification
    target.max_total = seed.max_total
    target.pass_total = seed.pass_total
    target.min_indicator = seed.min_indicator
    thresholds = seed.digital_thresholds
    target.digital_basic_halves = int(thresholds.basic * 2) if thresholds else None
    target.digital_proficient_halves = int(thresholds.proficient * 2) if thresholds else None
    target.grades = (
        [StoredGrade(code=g.code, title=g.title, min_total=g.min_total) for g in seed.grades]
        if seed.grades
        else None
    )
    target.status = "active"
    target.content_digest = digest


async def _write_structure(session: AsyncSession, written: list[tuple[CriteriaSet, SeedCriteriaSet]]) -> None:
    """The criteria of every set written, in one flush (their ids come back), then their indicators."""
    rows = [
        (Criterion(set_id=target.id, number=criterion.number, title=criterion.title), criterion)
        for target, seed in written
        for criterion in seed.criteria
    ]
    session.add_all(row for row, _ in rows)
    await session.flush()
    session.add_all(
        Indicator(
            set_id=row.set_id,
            criterion_id=row.id,
            number=indicator.number,
            title=indicator.title,
            max_points=indicator.max_points,
            evidence_hint=indicator.evidence_hint,
            digital=indicator.digital,
        )
        for row, criterion in rows
        for indicator in criterion.indicators
    )
    await session.flush()
