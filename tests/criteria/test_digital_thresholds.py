"""The criteria loader refuses data that would make the digital-skills share 100 % by construction: a
``basic`` digital threshold at or below ``min_indicator`` (every recognised person reaches it on every
indicator). A threshold above it is a floor a confirmed level needs; a collective set carries none."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.seedfiles import SeedError
from app.criteria import repository as criteria_repo
from app.criteria.loader import load_criteria
from app.seeds import SEEDS_DIR

pytestmark = pytest.mark.anyio

STAFF = SEEDS_DIR / "criteria" / "khvn-324-iv-staff.yaml"
FAMILY = SEEDS_DIR / "criteria" / "khvn-gia-dinh-hoc-tap.yaml"


def _with(source: Path, target: Path, extra: str, code: str) -> None:
    lines = source.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("min_indicator:"))
    lines[next(i for i, line in enumerate(lines) if line.startswith("code:"))] = f"code: {code}"
    target.write_text("\n".join([*lines[: at + 1], *extra.splitlines(), *lines[at + 1 :]]), encoding="utf-8")


@pytest.mark.parametrize("basic", [5, 4.5, 0])
async def test_a_basic_threshold_at_or_below_min_indicator_is_refused(
    session: AsyncSession, tmp_path: Path, basic: float
) -> None:
    _with(STAFF, tmp_path / "staff.yaml", f"digital_thresholds:\n  basic: {basic}\n  proficient: 8", "TEST-D")
    with pytest.raises(SeedError, match="must be above min_indicator"):
        await load_criteria(session, tmp_path)
    assert await criteria_repo.get_by_code(session, "TEST-D") is None


async def test_a_threshold_above_min_indicator_is_kept_as_a_floor(
    session: AsyncSession, tmp_path: Path
) -> None:
    _with(STAFF, tmp_path / "staff.yaml", "digital_thresholds:\n  basic: 6\n  proficient: 8.5", "TEST-F")
    assert await load_criteria(session, tmp_path) == ["criteria TEST-F v2: created"]
    loaded = await criteria_repo.get_by_code(session, "TEST-F")
    assert loaded is not None
    assert (loaded.digital_basic_halves, loaded.digital_proficient_halves) == (12, 17)


async def test_a_collective_set_has_no_digital_rule(session: AsyncSession, tmp_path: Path) -> None:
    _with(FAMILY, tmp_path / "family.yaml", "digital_thresholds:\n  basic: 6\n  proficient: 8", "TEST-G")
    with pytest.raises(SeedError, match="personal sets only"):
        await load_criteria(session, tmp_path)
