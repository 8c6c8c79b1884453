"""The plan seeds (criteria_seeds/plans): loaded onto the units with their codes, upserted by key,
refused whole with file:line when malformed."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.criteria.loader import SeedError
from app.orgs.models import OrgUnit
from app.plans import repository as plans_repo
from app.plans.loader import load_plans
from app.plans.models import Plan
from app.reporting.models import ReportingCalendar
from app.seeds import SEEDS_DIR
from tests.builders import Tree

pytestmark = pytest.mark.anyio  # before collection, so the parametrisation combines with anyio's

PLANS = SEEDS_DIR / "plans"


async def _units(tree: Tree) -> None:
    vn = await tree.unit("Việt Nam", "nation", code="VN")
    await tree.unit("Tỉnh Ninh Bình", "province", vn, code="37")
    kon_tum = await tree.unit("Tỉnh Kon Tum", "province", vn, code="62")
    await tree.unit("Huyện Kon Rẫy", "district", kon_tum, code="62-614")
    hanoi = await tree.unit("Thành phố Hà Nội", "province", vn, code="01")
    thanh_oai = await tree.unit("Huyện Thanh Oai", "district", hanoi, code="01-278")
    await tree.unit("Trường MN Tam Hưng A", "school", thanh_oai, code="01-278-MN-TAMHUNGA")
    hai_phong = await tree.unit("Thành phố Hải Phòng", "province", vn, code="31")
    vinh_bao = await tree.unit("Huyện Vĩnh Bảo", "district", hai_phong, code="31-316")
    await tree.unit("Trường MN Thanh Lương", "school", vinh_bao, code="31-316-MN-THANHLUONG")


async def _plan_count(tree: Tree) -> int:
    return int(await tree.session.scalar(select(func.count()).select_from(Plan)) or 0)


async def test_the_five_reference_plans_load_onto_their_units(tree: Tree) -> None:
    await _units(tree)
    report = await load_plans(tree.session, PLANS)
    assert sorted(report) == sorted(
        [
            "plan kh-126-ubnd-ninh-binh: created (unit 37, 10 targets)",
            # trained_pct (2025, 2030) dropped: the seed's sentence is about the association's members only.
            "plan kon-ray-district: created (unit 62-614, 8 targets)",
            "plan mn-tam-hung-a: created (unit 01-278-MN-TAMHUNGA, 8 targets)",
            # Seed 004 (a learning-unit plan for 2024): staff_recognised_pct and digital_skills_pct, 100 each.
            "plan mn-thanh-luong: created (unit 31-316-MN-THANHLUONG, 2 targets)",
            "plan qd-677-ttg: created (unit VN, 10 targets)",
            # Reporting deadlines the seeds state (see test_the_seeds_deadlines_become_reporting_calendars).
            "plan kon-ray-district: reporting calendar, 10 due date(s) written, 0 kept",
            "plan mn-tam-hung-a: reporting calendar, 10 due date(s) written, 0 kept",
            "plan mn-thanh-luong: reporting calendar, 1 due date(s) written, 0 kept",
        ]
    )
    national = await plans_repo.get_by_key(tree.session, "qd-677-ttg")
    ninh_binh = await plans_repo.get_by_key(tree.session, "kh-126-ubnd-ninh-binh")
    assert national is not None and ninh_binh is not None
    assert ninh_binh.parent_plan_id == national.id and national.parent_plan_id is None
    assert (ninh_binh.document_no, ninh_binh.issued_on.isoformat() if ninh_binh.issued_on else None) == (
        "126/KH-UBND",
        "2022-07-08",
    )
    targets = {
        (t.metric, t.year): t.value
        for t in (await plans_repo.targets_of(tree.session, [ninh_binh.id]))[ninh_binh.id]
    }
    # "65% người lớn trong gia đình học tập, dòng họ học tập, cộng đồng học tập …" (2025): adults in learning
    # collectives, no longer every adult.
    assert targets[("adults_in_learning_collectives_recognised_pct", 2025)] == Decimal("65")
    assert ("adults_recognised_pct", 2025) not in targets
    # "75% cán bộ, công chức, viên chức, người lao động trong đơn vị học tập …" (2025): staff of learning
    # units.
    assert targets[("staff_in_learning_units_recognised_pct", 2025)] == Decimal("75")
    assert ("staff_recognised_pct", 2025) not in targets
    assert targets[("digital_proficient_pct", 2030)] == Decimal("80")
    thanh_luong = await plans_repo.get_by_key(tree.session, "mn-thanh-luong")
    assert thanh_luong is not None and thanh_luong.parent_plan_id is None
    assert (thanh_luong.start_year, thanh_luong.end_year) == (2024, 2024)

    again = await load_plans(tree.session, PLANS)
    plans_again = [line for line in again if "reporting calendar" not in line]
    assert all(line.endswith(": unchanged") for line in plans_again) and len(plans_again) == 5
    assert all(", 0 due date(s) written," in line for line in again if "reporting calendar" in line)
    assert await _plan_count(tree) == 5


async def test_plans_of_missing_units_are_skipped_and_changes_update(tree: Tree, tmp_path: Path) -> None:
    vn = await tree.unit("Việt Nam", "nation", code="VN")
    await tree.unit("Tỉnh Ninh Bình", "province", vn, code="37")
    report = await load_plans(tree.session, PLANS)
    assert "plan kon-ray-district: skipped (unit 62-614 not loaded; run cdht demo)" in report
    assert "plan mn-tam-hung-a: skipped (unit 01-278-MN-TAMHUNGA not loaded; run cdht demo)" in report
    assert "plan mn-thanh-luong: skipped (unit 31-316-MN-THANHLUONG not loaded; run cdht demo)" in report
    assert await _plan_count(tree) == 2

    shutil.copy(PLANS / "qd-677-ttg-national.yaml", tmp_path)
    path = tmp_path / "qd-677-ttg-national.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("value: 40}", "value: 45}"), encoding="utf-8")
    national = await plans_repo.get_by_key(tree.session, "qd-677-ttg")
    assert national is not None and national.version == 1
    assert await load_plans(tree.session, tmp_path) == ["plan qd-677-ttg: updated (unit VN, 10 targets)"]
    targets = (await plans_repo.targets_of(tree.session, [national.id]))[national.id]
    # The national 40 % for 2025 is on the adults-in-learning-collectives metric now.
    adults_2025 = ("adults_in_learning_collectives_recognised_pct", 2025)
    assert {t.value for t in targets if (t.metric, t.year) == adults_2025} == {Decimal("45")}
    assert national.version == 2


@pytest.mark.parametrize(
    ("old", "new", "line", "reason"),
    [
        # The national plan's adult and staff targets sit on the qualified metrics now (same lines 15, 18).
        (
            "{metric: adults_in_learning_collectives_recognised_pct, year: 2025, value: 40}",
            "{metric: adults_pct, year: 2025, value: 40}",
            15,
            "unknown metric",
        ),
        (
            "{metric: staff_in_learning_units_recognised_pct, year: 2030, value: 80}",
            "{metric: staff_in_learning_units_recognised_pct, year: 2030, value: 180}",
            18,
            "less than or equal to 100",
        ),
        (
            "{metric: staff_in_learning_units_recognised_pct, year: 2030, value: 80}",
            "{metric: staff_in_learning_units_recognised_pct, year: 2025, value: 80}",
            18,
            "given twice",
        ),
        (
            "{metric: trained_pct, year: 2030, value: 100}",
            "{metric: trained_pct, year: 2031, value: 100}",
            14,
            "outside the plan 2021–2030",
        ),
        ("end_year: 2030", "end_year: 2030\nowner: someone", 12, "Extra inputs"),
        ("start_year: 2021", "start_year: [2021", 11, "not valid YAML"),
    ],
)
async def test_a_malformed_file_is_refused_with_file_and_line(
    tree: Tree, tmp_path: Path, old: str, new: str, line: int, reason: str
) -> None:
    await _units(tree)
    for source in PLANS.glob("*.yaml"):
        shutil.copy(source, tmp_path)
    path = tmp_path / "qd-677-ttg-national.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(SeedError) as caught:
        await load_plans(tree.session, tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}"), message
    assert reason in message
    assert await _plan_count(tree) == 0


async def test_unknown_parent_key_and_duplicate_keys_are_refused(tree: Tree, tmp_path: Path) -> None:
    await _units(tree)
    shutil.copy(PLANS / "kon-ray-district.yaml", tmp_path)
    with pytest.raises(
        SeedError, match=r"kon-ray-district\.yaml:7: parent_key: no plan has the key 'qd-677-ttg'"
    ):
        await load_plans(tree.session, tmp_path)
    shutil.copy(PLANS / "qd-677-ttg-national.yaml", tmp_path)
    shutil.copy(PLANS / "qd-677-ttg-national.yaml", tmp_path / "zz-copy.yaml")
    with pytest.raises(SeedError, match=r"zz-copy\.yaml:1: key: 'qd-677-ttg' is also used by"):
        await load_plans(tree.session, tmp_path)
    assert await _plan_count(tree) == 0


async def test_the_seeds_deadlines_become_reporting_calendars(tree: Tree) -> None:
    """Kon Rẫy: its units report by 5 December (2021–2030, the plan's years); Thanh Oai's schools (MN Tam
    Hưng A's plan) by 10 January of the next year; Vĩnh Bảo's schools (MN Thanh Lương, 2024) by 30
    December. Loading again keeps a date a user changed."""
    await _units(tree)
    await load_plans(tree.session, PLANS)
    codes = {i: c for i, c in (await tree.session.execute(select(OrgUnit.id, OrgUnit.code))).all()}
    rows = (await tree.session.scalars(select(ReportingCalendar))).all()
    by = {(codes[r.org_unit_id], r.year, r.kind): (r.due_on.isoformat(), r.source) for r in rows}
    assert len(by) == 21
    assert by[("62-614", 2025, "")] == ("2025-12-05", "seed")
    assert by[("01-278", 2024, "school")] == ("2025-01-10", "seed")
    assert by[("01-278", 2030, "school")] == ("2031-01-10", "seed")
    assert by[("31-316", 2024, "school")] == ("2024-12-30", "seed")

    entry = next(r for r in rows if codes[r.org_unit_id] == "62-614" and r.year == 2025)
    entry.due_on, entry.source = entry.due_on.replace(day=1), "user"
    await tree.session.commit()
    report = await load_plans(tree.session, PLANS)
    assert "plan kon-ray-district: reporting calendar, 0 due date(s) written, 10 kept" in report
    await tree.session.refresh(entry)
    assert entry.due_on.isoformat() == "2025-12-01"
