"""The criteria seeds (criteria_seeds/criteria/*.yaml): what they hold, and how the loader treats a
malformed file (refused with file, line and reason; nothing written), a reload, a frozen set and a new
version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.criteria import repository as criteria_repo
from app.criteria.loader import SeedError, load_criteria, parse_file
from app.criteria.models import CriteriaSet
from app.seeds import SEEDS_DIR
from tests.api.evaluation_flow import API, make_school, open_evaluation
from tests.builders import Tree

pytestmark = pytest.mark.anyio

CRITERIA_DIR = SEEDS_DIR / "criteria"
STAFF = CRITERIA_DIR / "khvn-324-iv-staff.yaml"


def test_the_five_national_sets_are_there_and_well_formed() -> None:
    parsed = {parse_file(p).data.code: parse_file(p).data for p in sorted(CRITERIA_DIR.glob("*.yaml"))}
    national = {code: data for code, data in parsed.items() if data.recognises.value == "learning_citizen"}
    groups = {code: data.group.value if data.group else None for code, data in national.items()}
    assert groups == {
        "KHVN-324-I": None,
        "KHVN-324-II": "resident",
        "KHVN-324-III": "worker",
        "KHVN-324-IV": "staff",
        "KHVN-324-V": "student",
    }
    for code, data in national.items():
        indicators = [i for c in data.criteria for i in c.indicators]
        assert [c.number for c in data.criteria] == [1, 2, 3], code
        assert [i.number for i in indicators] == list(range(1, 11)), code
        assert {i.max_points for i in indicators} == {10}, code
        assert (data.max_total, data.pass_total, data.min_indicator) == (100, 80, 5), code
        assert sum(i.max_points for i in indicators) == 100, code
        assert [i.number for i in indicators if i.digital] == [5], code
        assert all(i.evidence_hint for i in indicators), code
        assert data.needs_verification and data.source, code
        # Version 2: the digital level is declared and confirmed, no longer derived from score thresholds
        # (the old basic threshold 5 equalled min_indicator, so every recognised person qualified).
        assert data.version == 2, code
        assert data.digital_thresholds is None, code
        assert data.grades is None, code


def test_the_four_collective_sets_are_there_and_well_formed() -> None:
    parsed = {parse_file(p).data.code: parse_file(p).data for p in sorted(CRITERIA_DIR.glob("*.yaml"))}
    collective = {
        code: data.recognises.value
        for code, data in parsed.items()
        if data.recognises.value != "learning_citizen"
    }
    assert collective == {
        "KHVN-GDHT": "learning_family",
        "KHVN-DHHT": "learning_clan",
        "KHVN-CDHT-THON": "learning_community",
        "TT-24-2023-DVHT": "learning_unit",
    }
    for code in collective:
        data = parsed[code]
        indicators = [i for c in data.criteria for i in c.indicators]
        assert data.group is None, code
        assert not any(i.digital for i in indicators), code  # a digital level exists only for persons
        assert data.digital_thresholds is None, code
        assert sum(i.max_points for i in indicators) == data.max_total == 100, code
        assert sorted(i.number for i in indicators) == list(range(1, len(indicators) + 1)), code
        assert all(i.evidence_hint for i in indicators), code
        assert data.needs_verification and data.source, code
    # Only the learning-unit set (TT 24/2023) is graded: level 2 = everything met (100), level 1 = 96.
    graded = {code: data.grades for code, data in parsed.items() if data.grades}
    assert list(graded) == ["TT-24-2023-DVHT"]
    assert [(g.code, g.min_total) for g in graded["TT-24-2023-DVHT"]] == [("muc_2", 100), ("muc_1", 96)]
    assert parsed["TT-24-2023-DVHT"].pass_total == 96


def test_each_file_says_where_its_text_comes_from_and_documents_the_digital_rule() -> None:
    for path in sorted(CRITERIA_DIR.glob("*.yaml")):
        head = path.read_text(encoding="utf-8").split("\ncode:", 1)[0]
        assert "Nguồn" in head and "Source" in head, path.name
        assert "MUST BE VERIFIED" in head, path.name
        assert "digital: true" in head and "proficient" in head, path.name


async def _count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(CriteriaSet)) or 0)


async def test_loading_twice_reports_unchanged(session: AsyncSession) -> None:
    first = await load_criteria(session, CRITERIA_DIR)
    assert len(first) == 9  # the five national (personal) sets and the four collective ones
    assert all(line.endswith(": created") for line in first), first
    count = await _count(session)
    second = await load_criteria(session, CRITERIA_DIR)
    assert second == [line.replace(": created", ": unchanged") for line in first]
    assert await _count(session) == count == 9


def _edit(source: Path, target: Path, change: Callable[[list[str]], None]) -> tuple[Path, list[str]]:
    lines = source.read_text(encoding="utf-8").splitlines()
    change(lines)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target, lines


def _line(lines: list[str], starts: str, after: int = 0) -> int:
    """1-based number of the first line at or after ``after`` whose stripped text starts with ``starts``."""
    return next(n for n, text in enumerate(lines, start=1) if n > after and text.strip().startswith(starts))


def _indicator_7(lines: list[str]) -> int:
    return _line(lines, "- number: 7")


def _add_unknown_key(lines: list[str]) -> None:
    lines.insert(_indicator_7(lines) + 1, "        colour: red")


def _max_points_not_a_number(lines: list[str]) -> None:
    n = _line(lines, "max_points:", _indicator_7(lines))
    lines[n - 1] = "        max_points: mười"


def _wrong_sum(lines: list[str]) -> None:
    n = _line(lines, "max_points:", _indicator_7(lines))
    lines[n - 1] = "        max_points: 5"


def _bad_yaml(lines: list[str]) -> None:
    n = _line(lines, "digital:", _indicator_7(lines))
    lines[n - 1] = "        digital: false: true"


@pytest.mark.parametrize(
    ("change", "expected_line", "reason"),
    [
        pytest.param(
            _add_unknown_key,
            lambda ls: _line(ls, "colour:"),
            "Extra inputs are not permitted",
            id="unknown-key",
        ),
        pytest.param(
            _max_points_not_a_number,
            lambda ls: _line(ls, "max_points: mười"),
            "valid integer",
            id="not-a-number",
        ),
        pytest.param(
            _wrong_sum, lambda ls: _line(ls, "code:"), "add up to 95, not max_total 100", id="wrong-sum"
        ),
        pytest.param(
            _bad_yaml, lambda ls: _line(ls, "digital: false: true"), "not valid YAML", id="bad-yaml"
        ),
    ],
)
async def test_a_malformed_file_is_refused_naming_file_and_line_and_nothing_is_written(
    session: AsyncSession,
    tmp_path: Path,
    change: Callable[[list[str]], None],
    expected_line: Callable[[list[str]], int],
    reason: str,
) -> None:
    # A valid new set sorts first: a loader that wrote file by file would have written it already.
    _edit(STAFF, tmp_path / "a-valid.yaml", lambda ls: ls.__setitem__(_line(ls, "code:") - 1, "code: TEST-A"))
    bad, lines = _edit(STAFF, tmp_path / "b-broken.yaml", change)
    before = await _count(session)
    with pytest.raises(SeedError) as refused:
        await load_criteria(session, tmp_path)
    message = str(refused.value)
    assert message.startswith(f"{bad}:{expected_line(lines)}:"), message
    assert reason in message
    assert await _count(session) == before
    assert await criteria_repo.get_by_code(session, "TEST-A") is None


async def test_two_files_with_the_same_code_and_version_are_refused(
    session: AsyncSession, tmp_path: Path
) -> None:
    _edit(STAFF, tmp_path / "one.yaml", lambda ls: None)
    _edit(STAFF, tmp_path / "two.yaml", lambda ls: None)
    with pytest.raises(SeedError, match=r"two\.yaml: KHVN-324-IV v2 is also defined in .*one\.yaml"):
        await load_criteria(session, tmp_path)
    assert await _count(session) == 0


def _retitle(title: str) -> Callable[[list[str]], None]:
    def change(lines: list[str]) -> None:
        lines[_line(lines, "title:") - 1] = f'title: "{title}"'

    return change


async def test_an_unused_set_may_change_but_a_set_in_use_is_frozen(
    client: httpx.AsyncClient,
    tree: Tree,
    session: AsyncSession,
    criteria: dict[str | None, int],
    tmp_path: Path,
) -> None:
    (tmp_path / "draft").mkdir()
    _edit(STAFF, tmp_path / "draft" / "staff.yaml", _retitle("Phụ lục IV (bản sửa)"))
    # The seeded staff set is version 2 now (digital level declared and confirmed).
    assert await load_criteria(session, tmp_path / "draft") == ["criteria KHVN-324-IV v2: updated"]

    school = await make_school(tree)
    used = await open_evaluation(client, tree, school)
    assert used["criteria_set_id"] == criteria["staff"]
    (tmp_path / "changed").mkdir()
    _edit(STAFF, tmp_path / "changed" / "staff.yaml", _retitle("Phụ lục IV (sửa sau khi đã dùng)"))
    with pytest.raises(SeedError, match="already used by evaluations") as refused:
        await load_criteria(session, tmp_path / "changed")
    assert "staff.yaml" in str(refused.value)
    shown = (await client.get(f"{API}/criteria-sets/{criteria['staff']}", headers=school.admin)).json()
    assert shown["title"] == "Phụ lục IV (bản sửa)"
    assert shown["frozen"] is True

    def new_version(lines: list[str]) -> None:
        _retitle("Phụ lục IV (2026)")(lines)
        lines[_line(lines, "version:") - 1] = "version: 3"  # the next after the seeded v2

    (tmp_path / "v3").mkdir()
    _edit(STAFF, tmp_path / "v3" / "staff.yaml", new_version)
    assert await load_criteria(session, tmp_path / "v3") == ["criteria KHVN-324-IV v3: created"]
    await session.commit()
    v3 = await criteria_repo.get_by_code(session, "KHVN-324-IV", 3)
    assert v3 is not None
    fresh = await open_evaluation(client, tree, school, year=2026)
    assert fresh["criteria_set_id"] == v3.id
    again = (await client.get(f"{API}/evaluations/{used['id']}", headers=school.admin)).json()
    assert again["criteria_set_id"] == criteria["staff"]
