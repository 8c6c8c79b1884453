"""Loads ``criteria_seeds/criteria/*.yaml`` into the database: validate every file first (a malformed
one is refused with its file, line and reason, and nothing is written), then insert new sets, update
unused ones whose text changed, and refuse to change a set that evaluations already use."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.criteria import repository as repo
from app.criteria.models import CriteriaSet, Criterion, Indicator
from app.criteria.schemas import SeedCriteriaSet


class SeedError(Exception):
    """A seed file is malformed or conflicts with the database; the message names file and line."""


@dataclass(frozen=True)
class ParsedSet:
    path: Path
    data: SeedCriteriaSet
    digest: str


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a 1-based line number."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def parse_file(path: Path) -> ParsedSet:
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise SeedError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    try:
        data = SeedCriteriaSet.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        line = _line_of(root, tuple(first["loc"]))
        field = ".".join(str(p) for p in first["loc"]) or "(file)"
        raise SeedError(f"{path}:{line or 1}: {field}: {first['msg']}") from exc
    digest = hashlib.sha256(json.dumps(data.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    return ParsedSet(path=path, data=data, digest=digest)


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
    parsed = parse_dir(directory)  # everything validated before anything is written
    report = []
    for item in parsed:
        seed = item.data
        existing = await repo.get_by_code(session, seed.code, seed.version)
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
        await session.flush()
        await _write_structure(session, existing, seed)
        report.append(f"criteria {seed.code} v{seed.version}: {action}")
    return report


def _apply(target: CriteriaSet, seed: SeedCriteriaSet, digest: str) -> None:
    target.title = seed.title
    target.group = seed.group.value if seed.group else None
    target.source = seed.source
    target.needs_verification = seed.needs_verification
    target.max_total = seed.max_total
    target.pass_total = seed.pass_total
    target.min_indicator = seed.min_indicator
    target.digital_basic_halves = int(seed.digital_thresholds.basic * 2)
    target.digital_proficient_halves = int(seed.digital_thresholds.proficient * 2)
    target.status = "active"
    target.content_digest = digest


async def _write_structure(session: AsyncSession, target: CriteriaSet, seed: SeedCriteriaSet) -> None:
    for criterion in seed.criteria:
        row = Criterion(set_id=target.id, number=criterion.number, title=criterion.title)
        session.add(row)
        await session.flush()
        for indicator in criterion.indicators:
            session.add(
                Indicator(
                    set_id=target.id,
                    criterion_id=row.id,
                    number=indicator.number,
                    title=indicator.title,
                    max_points=indicator.max_points,
                    evidence_hint=indicator.evidence_hint,
                    digital=indicator.digital,
                )
            )
    await session.flush()
