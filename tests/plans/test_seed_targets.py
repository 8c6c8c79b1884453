"""The seed plans' targets against hand-computed fixtures (docs/seed-targets.md): one test per seed
(shared/seeds/000–004). Each builds its own small tree, loads the REAL plan files of
``criteria_seeds/plans/`` and reads ``GET /aggregates/progress`` as a viewer. The expected numbers are
written literally, from the document (re-derived by hand from API.md where noted)."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from app.aggregates import counters
from app.collectives.models import Collective
from app.decisions.models import RecognitionDecision
from app.evaluations.models import Evaluation
from app.orgs.models import OrgUnit
from app.people.models import Person
from app.plans import repository as plans_repo
from app.plans.loader import load_plans, parse_dir
from app.seeds import SEEDS_DIR
from app.trainings.models import Attendance, TrainingSession
from tests.builders import Tree

pytestmark = pytest.mark.anyio  # before collection, so the year parametrisation combines with anyio's

API = "/api/v1"

# (numerator, denominator, actual, target, target_year, gap, status, plan key)
Row = tuple[int, int, float | None, float | None, int | None, float | None, str, str | None]


# ---------------------------------------------------------------------------------------------- helpers


async def load_real_plans(tree: Tree) -> tuple[list[str], dict[str, int]]:
    """The real plan files, loaded once the fixture's units exist (plans of missing units are skipped);
    returns the loader's report and key → id of the plans that were loaded."""
    report = await load_plans(tree.session, SEEDS_DIR / "plans")
    await tree.session.commit()
    ids = {}
    for parsed in parse_dir(SEEDS_DIR / "plans"):
        plan = await plans_repo.get_by_key(tree.session, parsed.data.key)
        if plan is not None:
            ids[parsed.data.key] = plan.id
    return report, ids


async def sign(
    tree: Tree, unit: OrgUnit, year: int, evaluations: list[Evaluation], signed_on: date, number: str
) -> RecognitionDecision:
    """A recognition decision at ``unit``, signed on ``signed_on`` (never in the future)."""
    decision = await tree.recognise(unit, year, evaluations, number)
    decision.signed_on = signed_on
    await tree.session.commit()
    return decision


async def assessed(tree: Tree, person: Person, year: int, digital: str | None) -> Evaluation:
    """Reviewed and passed, with the assessed digital level: ready to be recognised."""
    return await tree.evaluation(person, year, "reviewed", digital_level=digital)


async def not_passed(tree: Tree, person: Person, year: int, digital: str | None = "none") -> Evaluation:
    """Reviewed but not passed (a total below 80, or an indicator below 5)."""
    return await tree.evaluation(person, year, "reviewed", passed=False, digital_level=digital)


async def training(tree: Tree, unit: OrgUnit, held_on: date, attendees: list[Person]) -> None:
    """A training session on the criteria, written directly, with the counters kept right the way the
    training service keeps them."""
    s = tree.session
    session = TrainingSession(
        org_unit_id=unit.id, title=f"Quán triệt tiêu chí {held_on}", held_on=held_on, year=held_on.year
    )
    s.add(session)
    await s.flush()
    ids = [p.id for p in attendees]
    await counters.training_counted(s, session.id, ids, -1)
    s.add_all(Attendance(session_id=session.id, person_id=i) for i in ids)
    await counters.training_counted(s, session.id, ids, +1)
    await s.commit()


async def progress(client: httpx.AsyncClient, h: dict[str, str], unit: OrgUnit, year: int) -> dict[str, Any]:
    r = await client.get(
        f"{API}/aggregates/progress", params={"org_unit_id": unit.id, "year": year}, headers=h
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["org_unit_id"], body["year"]) == (unit.id, year)
    return body


async def breakdown(
    client: httpx.AsyncClient, h: dict[str, str], unit: OrgUnit, year: int, metric: str
) -> dict[int, dict[str, Any]]:
    r = await client.get(
        f"{API}/aggregates/breakdown",
        params={"org_unit_id": unit.id, "year": year, "metric": metric},
        headers=h,
    )
    assert r.status_code == 200, r.text
    return {row["org_unit_id"]: row for row in r.json()["items"]}


def rows_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["metric"]: m for m in body["metrics"]}


def served(row: dict[str, Any], plans: dict[str, int]) -> Row:
    keys = {v: k for k, v in plans.items()}
    return (
        row["numerator"],
        row["denominator"],
        row["actual"],
        row["target"],
        row["target_year"],
        row["gap"],
        row["status"],
        keys.get(row["plan_id"], row["plan_id"]),
    )


def check(body: dict[str, Any], plans: dict[str, int], expected: dict[str, Row]) -> None:
    """Every expected metric row, compared whole; all mismatches reported at once."""
    rows = rows_of(body)
    wrong = {
        m: (served(rows[m], plans), want) for m, want in expected.items() if served(rows[m], plans) != want
    }
    assert not wrong, "\n".join(f"{m}: served {got}, expected {want}" for m, (got, want) in wrong.items())


def ratio(row: dict[str, Any]) -> tuple[int, int]:
    return row["numerator"], row["denominator"]


# ------------------------------------------------------------------------- seed 000: MN Tam Hưng A


@pytest.mark.parametrize("year", [2025, 2026])
async def test_seed_000_mn_tam_hung_a(client: httpx.AsyncClient, tree: Tree, year: int) -> None:
    # "100% cán bộ, GV,NV được học tập, quán triệt các tiêu chí xây dựng mô hình “Công dân học tập”, được
    # công nhận đạt danh hiệu “Công dân học tập” và đều phải có những kỹ năng số đáp ứng yêu cầu công việc
    # …, trong đó 70% [2030: 100%] thành thạo kỹ năng số …" (§2.1 for 2025, §2.2 for 2030).
    # 2026 is the document's "target-year check": the same fixture dated a year later, against 2030.
    vn = await tree.unit("Việt Nam", "nation", code="VN")
    hanoi = await tree.unit("Thành phố Hà Nội", "province", vn, code="01")
    thanh_oai = await tree.unit("Huyện Thanh Oai", "district", hanoi, code="01-278")
    school = await tree.unit("Trường MN Tam Hưng A", "school", thanh_oai, code="01-278-MN-TAMHUNGA")
    tcm = await tree.unit("Tổ chuyên môn", "unit", school)
    p = [await tree.person(school, "staff") for _ in range(3)]  # P1–P3 in the school itself
    p += [await tree.person(tcm, "staff") for _ in range(7)]  # P4–P10 in TCM
    p9, p10 = p[8], p[9]

    # "Hội nghị quán triệt" 14 March of the year (P1–P9); P10 only attended a session of 10 December the
    # year before.
    await training(tree, school, date(year, 3, 14), p[:9])
    await training(tree, school, date(year - 1, 12, 10), [p10])
    levels = ["proficient"] * 6 + ["basic", "none"]
    recognised = [
        await assessed(tree, person, year, level) for person, level in zip(p[:8], levels, strict=True)
    ]
    await sign(
        tree, school, year, recognised, date(year, 12, 20) if year == 2025 else date(year, 11, 20), "01"
    )
    qd02 = await sign(
        tree,
        school,
        year,
        [await assessed(tree, p9, year, "proficient")],
        date(year, 12, 22) if year == 2025 else date(year, 11, 22),
        "02",
    )
    await tree.revoke(qd02)  # P9 back to reviewed: not recognised
    await not_passed(tree, p10, year, "proficient")  # total 78

    report, plans = await load_real_plans(tree)
    assert any(line.startswith("plan mn-tam-hung-a: created") for line in report), report
    viewer = tree.auth(await tree.user(("viewer", school)))
    body = await progress(client, viewer, school, year)
    assert body["plan_id"] == plans["mn-tam-hung-a"]

    plan = "mn-tam-hung-a"
    if year == 2025:
        expected: dict[str, Row] = {
            # "100% cán bộ, GV,NV được học tập, quán triệt các tiêu chí": 9 (P1–P9) / 10
            "trained_pct": (9, 10, 90.0, 100.0, 2025, -10.0, "behind", plan),
            # "… được công nhận đạt danh hiệu “Công dân học tập”": 8 (P1–P8) / 10
            "staff_recognised_pct": (8, 10, 80.0, 100.0, 2025, -20.0, "behind", plan),
            # "… đều phải có những kỹ năng số đáp ứng yêu cầu công việc": 7 (P1–P7) / 8
            "digital_skills_pct": (7, 8, 87.5, 100.0, 2025, -12.5, "behind", plan),
            # "… trong đó 70% thành thạo kỹ năng số": 6 (P1–P6) / 8
            "digital_proficient_pct": (6, 8, 75.0, 70.0, 2025, 5.0, "met", plan),
        }
    else:
        expected = {
            "trained_pct": (9, 10, 90.0, 100.0, 2030, -10.0, "behind", plan),
            "staff_recognised_pct": (8, 10, 80.0, 100.0, 2030, -20.0, "behind", plan),
            "digital_skills_pct": (7, 8, 87.5, 100.0, 2030, -12.5, "behind", plan),
            # "[2030: 100%] thành thạo kỹ năng số"
            "digital_proficient_pct": (6, 8, 75.0, 100.0, 2030, -25.0, "behind", plan),
        }
    check(body, plans, expected)

    # Roll-up: the school's breakdown has one row, TCM (P4–P10), whose targets come from the school's plan.
    # 2026's TCM gaps are derived by hand against the 2030 targets (the document gives 2025's only).
    ty, proficient, gap = (2025, 70.0, -10.0) if year == 2025 else (2030, 100.0, -40.0)
    tcm_expected: dict[str, Row] = {
        "trained_pct": (6, 7, 85.71, 100.0, ty, -14.29, "behind", plan),
        "staff_recognised_pct": (5, 7, 71.43, 100.0, ty, -28.57, "behind", plan),
        "digital_skills_pct": (4, 5, 80.0, 100.0, ty, -20.0, "behind", plan),
        "digital_proficient_pct": (3, 5, 60.0, proficient, ty, gap, "behind", plan),
    }
    for metric, want in tcm_expected.items():
        items = await breakdown(client, viewer, school, year, metric)
        assert list(items) == [tcm.id], items
        got = served(items[tcm.id], plans)
        assert got == want, f"{metric} of TCM: served {got}, expected {want}"
        # the school-only people (P1–P3) are all trained, recognised, proficient: 3/3 on top of TCM
        whole = rows_of(body)[metric]
        assert (whole["numerator"] - want[0], whole["denominator"] - want[1]) == (3, 3)

    # Mistakes this catches.
    rows = rows_of(body)
    # P9 counted although QĐ 02 was revoked: 9/10, 8/9 = 88.89, 7/9 = 77.78.
    assert ratio(rows["staff_recognised_pct"]) != (9, 10)
    assert rows["digital_skills_pct"]["actual"] != 88.89
    assert rows["digital_proficient_pct"]["actual"] != 77.78
    # P10 counted in the digital shares although not recognised: 8/9 and 7/9.
    assert ratio(rows["digital_skills_pct"]) != (8, 9)
    assert ratio(rows["digital_proficient_pct"]) != (7, 9)
    # The previous year's session counted: trained 10/10.
    assert ratio(rows["trained_pct"]) != (10, 10)


# ------------------------------------------------------------------------------ seed 001: Kon Rẫy


@pytest.mark.parametrize("year", [2025, 2026])
async def test_seed_001_kon_ray_district(client: httpx.AsyncClient, tree: Tree, year: int) -> None:
    # §II.2 a) "40% người lớn trong gia đình học tập, dòng họ học tập, cộng đồng học tập (thôn, làng, tổ dân
    # phố), …, 60% cán bộ, công chức, viên chức, người lao động trong đơn vị học tập cấp xã, cấp huyện đạt
    # danh hiệu “Công dân học tập”"; "70% những người đạt danh hiệu “Công dân học tập” đều phải có những kỹ
    # năng số …; trong đó 60% thành thạo kỹ năng số …". b) for 2030: 60%, 80%, 90%, 80%.
    # 2026 is the "target-year check" (same people and birth years, every evaluation and title for 2026).
    signed = date(year, 11, 20)
    vn = await tree.unit("Việt Nam", "nation", code="VN")
    kon_tum = await tree.unit("Tỉnh Kon Tum", "province", vn, code="62")
    kon_ray = await tree.unit("Huyện Kon Rẫy", "district", kon_tum, code="62-614")
    c1 = await tree.unit("Xã Đăk Ruồng", "commune", kon_ray)
    v1 = await tree.unit("Thôn 1", "village", c1)
    u1 = await tree.unit("UBND xã Đăk Ruồng", "agency", c1)
    c2 = await tree.unit("Xã Tân Lập", "commune", kon_ray)
    v2 = await tree.unit("Thôn 2", "village", c2)
    u2 = await tree.unit("Trường TH Tân Lập", "school", c2)

    a1 = await tree.person(v1, "resident", birth_year=1980)
    a2 = await tree.person(v1, "resident", birth_year=1985)
    k1 = await tree.person(v1, "resident", birth_year=2015)  # a child
    a3 = await tree.person(v1, "resident", birth_year=1995)
    a4 = await tree.person(v1, "resident", birth_year=2010)  # 15 in 2025: an adult
    a5 = await tree.person(v1, "resident", birth_year=1970)
    a6 = await tree.person(v1, "resident", birth_year=1972)
    a7 = await tree.person(v2, "resident", birth_year=1960)
    a8 = await tree.person(v2, "resident")  # unknown birth year: an adult
    a9 = await tree.person(c2, "resident", birth_year=1990)
    s1 = await tree.person(u1, "staff")
    s2 = await tree.person(u1, "staff")
    s3 = await tree.person(u1, "worker")
    s4 = await tree.person(u2, "staff")
    s5 = await tree.person(u2, "staff")
    h1 = await tree.household(v1, [a1, a2, k1])
    h2 = await tree.household(v1, [a3, a4])
    h3 = await tree.household(v1, [a5, a6])
    l1 = await tree.clan(c1, [h2, h3])

    # Collective titles: H1, H2 families, L1 clan, V2 community, U1 learning unit recognised; H3 not
    # passed; V1 and U2 not evaluated.
    async def title(name: str, subject: Collective | OrgUnit, signer: OrgUnit) -> None:
        evaluation = await tree.collective_evaluation(name, subject, year, "reviewed")
        await sign(tree, signer, year, [evaluation], signed, f"T-{subject.id}")

    await title("learning_family", h1, c1)
    await title("learning_family", h2, c1)
    await tree.collective_evaluation("learning_family", h3, year, "reviewed", passed=False)
    await title("learning_clan", l1, kon_ray)
    await title("learning_community", v2, c2)
    await title("learning_unit", u1, c1)

    recognised = [
        await assessed(tree, a1, year, "proficient"),
        await assessed(tree, a3, year, "basic"),
        await assessed(tree, a5, year, "none"),
        await assessed(tree, a6, year, "basic"),
        await assessed(tree, a7, year, "basic"),
        await assessed(tree, a9, year, "none"),
        await assessed(tree, s1, year, "proficient"),
        await assessed(tree, s2, year, "proficient"),
        await assessed(tree, s4, year, "proficient"),
        await assessed(tree, s5, year, "basic"),
    ]
    await sign(tree, kon_ray, year, recognised, signed, "01")
    await not_passed(tree, a2, year)
    await tree.evaluation(a8, year, "returned")
    await not_passed(tree, s3, year)  # indicator 6 = 4

    report, plans = await load_real_plans(tree)
    assert any(line.startswith("plan kon-ray-district: created") for line in report), report
    viewer = tree.auth(await tree.user(("viewer", kon_ray)))
    body = await progress(client, viewer, kon_ray, year)
    assert body["plan_id"] == plans["kon-ray-district"]

    kr, nat = "kon-ray-district", "qd-677-ttg"
    if year == 2025:
        targeted: dict[str, Row] = {
            # "40% người lớn trong gia đình học tập, dòng họ học tập, cộng đồng học tập":
            # 5 (A1, A3, A5, A6, A7) of 8 (A1–A8 without K1)
            "adults_in_learning_collectives_recognised_pct": (5, 8, 62.5, 40.0, 2025, 22.5, "met", kr),
            # "60% cán bộ, công chức, viên chức, người lao động trong đơn vị học tập": 2 (S1, S2) / 3 (S1–S3)
            "staff_in_learning_units_recognised_pct": (2, 3, 66.67, 60.0, 2025, 6.67, "met", kr),
            # "70% những người đạt danh hiệu … đều phải có những kỹ năng số": 8 / 10 recognised
            "digital_skills_pct": (8, 10, 80.0, 70.0, 2025, 10.0, "met", kr),
            # "trong đó 60% thành thạo kỹ năng số": 4 (A1, S1, S2, S4) / 10
            "digital_proficient_pct": (4, 10, 40.0, 60.0, 2025, -20.0, "behind", kr),
            # no trained_pct target in the district's plan: the national one (100, 2025) applies
            "trained_pct": (0, 5, 0.0, 100.0, 2025, -100.0, "behind", nat),
        }
    else:
        targeted = {
            # 2030: "60% người lớn trong gia đình học tập, …"
            "adults_in_learning_collectives_recognised_pct": (5, 8, 62.5, 60.0, 2030, 2.5, "met", kr),
            # 2030: "…, 80% cán bộ, công chức, viên chức, người lao động trong đơn vị học tập …"
            "staff_in_learning_units_recognised_pct": (2, 3, 66.67, 80.0, 2030, -13.33, "behind", kr),
            # 2030: "90% những người đạt danh hiệu …"
            "digital_skills_pct": (8, 10, 80.0, 90.0, 2030, -10.0, "behind", kr),
            # 2030: "…; trong đó 80% …"
            "digital_proficient_pct": (4, 10, 40.0, 80.0, 2030, -40.0, "behind", kr),
            "trained_pct": (0, 5, 0.0, 100.0, 2030, -100.0, "behind", nat),
        }
    untargeted: dict[str, Row] = {
        "adults_recognised_pct": (6, 9, 66.67, None, None, None, "no_target", None),
        "staff_recognised_pct": (4, 5, 80.0, None, None, None, "no_target", None),
        "learning_families_pct": (2, 3, 66.67, None, None, None, "no_target", None),
        "learning_clans_pct": (1, 1, 100.0, None, None, None, "no_target", None),
        "learning_communities_pct": (1, 2, 50.0, None, None, None, "no_target", None),
        "learning_units_pct": (1, 2, 50.0, None, None, None, "no_target", None),
    }
    check(body, plans, targeted | untargeted)

    # Mistakes this catches (collectives row, 5/8 when right).
    rows = rows_of(body)
    collectives = rows["adults_in_learning_collectives_recognised_pct"]
    for wrong, pct in (((3, 6), 50.0), ((4, 6), 66.67), ((5, 9), 55.56), ((5, 7), 71.43), ((6, 10), 60.0)):
        # clan ignored; community ignored; K1 counted; age bound > 15 or A8 left out; A3, A4 counted twice
        assert ratio(collectives) != wrong and collectives["actual"] != pct
    # the old target on adults_recognised_pct (66.67 against 40): no target there now
    assert rows["adults_recognised_pct"]["target"] is None
    staff = rows["staff_in_learning_units_recognised_pct"]
    assert ratio(staff) != (2, 2)  # workers left out
    assert ratio(staff) != (4, 5)  # all staff instead of the learning unit's


# ---------------------------------------------------------------------------- seed 002: Ninh Bình


@pytest.mark.parametrize("year", [2025, 2026])
async def test_seed_002_ninh_binh_126_kh_ubnd(client: httpx.AsyncClient, tree: Tree, year: int) -> None:
    # 126/KH-UBND §II.2 a) "100% cán bộ, hội viên Hội Khuyến học tỉnh, cán bộ các đơn vị thực hiện Chương
    # trình được học tập, quán triệt các tiêu chí …"; "65% người lớn trong gia đình học tập, dòng họ học
    # tập, cộng đồng học tập (thôn, bản, tổ dân phố và tương đương), …, 75% cán bộ, công chức, viên chức,
    # người lao động trong đơn vị học tập …"; "75% những người đạt danh hiệu “Công dân học tập” đều phải có
    # những kỹ năng số …; trong đó 65% thành thạo kỹ năng số …". b) for 2030: 100% ("toàn thể"), 70%, 85%,
    # 90%, 80%.
    # 2026 is the "target-year check" (the same people and counts, recorded for 2026).
    signed = date(year, 11, 20)
    vn = await tree.unit("Việt Nam", "nation", code="VN")
    nb = await tree.unit("Tỉnh Ninh Bình", "province", vn, code="37")
    hoa_lu = await tree.unit("TP Hoa Lư", "district", nb, code="37-374")
    w = await tree.unit("Phường Vân Giang", "commune", hoa_lu, code="14329")
    t1 = await tree.unit("Tổ dân phố 1", "village", w)
    sch = await tree.unit("Trường THCS", "school", w, code="37-HOALU-THCS")
    ag = await tree.unit("Sở Giáo dục và Đào tạo", "agency", nb)

    r1 = await tree.person(t1, "resident", birth_year=1950)
    r2 = await tree.person(t1, "resident", birth_year=1978)
    await tree.person(t1, "resident", birth_year=2012)  # R3, a child
    r4 = await tree.person(w, "resident", birth_year=1985)
    r5 = await tree.person(w, "resident", birth_year=1987)
    r6 = await tree.person(w, "resident", birth_year=1992)
    s1, s2, s3, s4 = [await tree.person(sch, "staff") for _ in range(4)]
    s5 = await tree.person(ag, "staff")
    s6 = await tree.person(ag, "worker")
    h1 = await tree.household(w, [r4, r5])

    for name, subject, signer in (
        ("learning_community", t1, w),
        ("learning_family", h1, hoa_lu),
        ("learning_unit", sch, w),
    ):
        evaluation = await tree.collective_evaluation(name, subject, year, "reviewed")
        await sign(tree, signer, year, [evaluation], signed, f"T-{subject.id}")
    await tree.collective_evaluation("learning_unit", ag, year, "reviewed", passed=False)

    await training(tree, nb, date(year, 5, 20), [s1, s2, s3, s4, s5, r1])
    await training(tree, nb, date(year - 1, 12, 15), [s6])
    recognised = [
        await assessed(tree, r1, year, "none"),
        await assessed(tree, r2, year, "proficient"),
        await assessed(tree, r4, year, "basic"),
        await assessed(tree, r6, year, "none"),
        *[await assessed(tree, s, year, "proficient") for s in (s1, s2, s3, s5)],
    ]
    await sign(tree, nb, year, recognised, signed, "01")
    await not_passed(tree, r5, year)
    await not_passed(tree, s4, year)

    report, plans = await load_real_plans(tree)
    assert any(line.startswith("plan kh-126-ubnd-ninh-binh: created") for line in report), report
    viewer = tree.auth(await tree.user(("viewer", nb)))
    body = await progress(client, viewer, nb, year)
    assert body["plan_id"] == plans["kh-126-ubnd-ninh-binh"]

    kh = "kh-126-ubnd-ninh-binh"
    if year == 2025:
        targeted: dict[str, Row] = {
            # "100% … cán bộ các đơn vị thực hiện Chương trình được học tập, quán triệt":
            # 5 (S1–S5) / 6 (S1–S6)
            "trained_pct": (5, 6, 83.33, 100.0, 2025, -16.67, "behind", kh),
            # "65% người lớn trong gia đình học tập, …": 3 (R1, R2, R4) / 4 (R1, R2, R4, R5)
            "adults_in_learning_collectives_recognised_pct": (3, 4, 75.0, 65.0, 2025, 10.0, "met", kh),
            # "75% cán bộ, … trong đơn vị học tập …": 3 (S1–S3) / 4 (S1–S4), met exactly
            "staff_in_learning_units_recognised_pct": (3, 4, 75.0, 75.0, 2025, 0.0, "met", kh),
            # "75% những người đạt danh hiệu … có những kỹ năng số": 6 / 8, met exactly
            "digital_skills_pct": (6, 8, 75.0, 75.0, 2025, 0.0, "met", kh),
            # "trong đó 65% thành thạo kỹ năng số": 5 (R2, S1, S2, S3, S5) / 8
            "digital_proficient_pct": (5, 8, 62.5, 65.0, 2025, -2.5, "behind", kh),
        }
    else:
        targeted = {
            # 2030: "Tiếp tục quán triệt đến toàn thể …" (100)
            "trained_pct": (5, 6, 83.33, 100.0, 2030, -16.67, "behind", kh),
            # 2030: "70% người lớn trong gia đình học tập, …"
            "adults_in_learning_collectives_recognised_pct": (3, 4, 75.0, 70.0, 2030, 5.0, "met", kh),
            # 2030: "… 85% cán bộ, … trong đơn vị học tập …"
            "staff_in_learning_units_recognised_pct": (3, 4, 75.0, 85.0, 2030, -10.0, "behind", kh),
            # 2030: "90% những người đạt danh hiệu …"
            "digital_skills_pct": (6, 8, 75.0, 90.0, 2030, -15.0, "behind", kh),
            # 2030: "…; trong đó 80% thành thạo kỹ năng số …"
            "digital_proficient_pct": (5, 8, 62.5, 80.0, 2030, -17.5, "behind", kh),
        }
    untargeted: dict[str, Row] = {
        "adults_recognised_pct": (4, 5, 80.0, None, None, None, "no_target", None),
        "staff_recognised_pct": (4, 6, 66.67, None, None, None, "no_target", None),
        "learning_communities_pct": (1, 1, 100.0, None, None, None, "no_target", None),
        "learning_families_pct": (1, 1, 100.0, None, None, None, "no_target", None),
        "learning_units_pct": (1, 2, 50.0, None, None, None, "no_target", None),
    }
    check(body, plans, targeted | untargeted)

    # Breakdown of 37, staff in learning units: 37-374 3/4; AG evaluated but 0/0, so no_data.
    items = await breakdown(client, viewer, nb, year, "staff_in_learning_units_recognised_pct")
    assert set(items) == {hoa_lu.id, ag.id}
    district = items[hoa_lu.id]
    assert (district["numerator"], district["denominator"], district["actual"]) == (3, 4, 75.0)
    assert district["status"] == ("met" if year == 2025 else "behind")
    agency = items[ag.id]
    assert (agency["numerator"], agency["denominator"], agency["actual"], agency["gap"]) == (0, 0, None, None)
    assert agency["status"] == "no_data"

    # Mistakes this catches.
    rows = rows_of(body)
    assert ratio(rows["trained_pct"]) != (6, 12)  # trained_pct over all groups (the old definition)
    assert ratio(rows["trained_pct"]) != (6, 6)  # the previous year's session counted
    assert ratio(rows["adults_in_learning_collectives_recognised_pct"]) != (3, 5)  # R3 counted as an adult


# ------------------------------------------------------------------ seed 003: THPT Nguyễn Chí Thanh


@pytest.mark.parametrize("national", [True, False])
async def test_seed_003_thpt_nguyen_chi_thanh_has_no_plan_and_inherits(
    client: httpx.AsyncClient, tree: Tree, national: bool
) -> None:
    # No numeric target in the seed: only emulation criteria ("Được công nhận “Đơn vị học tập” cấp huyện,
    # tỉnh theo các tiêu chí, các mức quy định tại Thông tư số 24/2023/TT-BGDĐT"; "Được công nhận danh hiệu
    # “Công dân học tập” theo tiêu chí được quy định tại Quyết định số 324/QĐ-KHVN"). So no plan file: the
    # school is measured against the plans above it (the national one, when VN is loaded).
    vn = await tree.unit("Việt Nam", "nation", code="VN" if national else None)
    dak_lak = await tree.unit("Tỉnh Đắk Lắk", "province", vn, code="66")
    school = await tree.unit("Trường THPT Nguyễn Chí Thanh", "school", dak_lak, code="66-THPT-NCT")
    t1, t2, t3, t4 = [await tree.person(school, "staff") for _ in range(4)]
    h1, h2, h3, h4, h5 = [await tree.person(school, "student") for _ in range(5)]
    unit_title = await tree.collective_evaluation("learning_unit", school, 2025, "reviewed")
    await sign(tree, dak_lak, 2025, [unit_title], date(2025, 12, 20), "LU-01")
    recognised = [
        await assessed(tree, t1, 2025, "proficient"),
        await assessed(tree, t2, 2025, "proficient"),
        await assessed(tree, t3, 2025, "basic"),
        await assessed(tree, h1, 2025, "basic"),
        await assessed(tree, h2, 2025, "none"),
    ]
    await sign(tree, school, 2025, recognised, date(2025, 12, 20), "01")
    for person in (t4, h3, h4, h5):
        await not_passed(tree, person, 2025)

    # No plan file names the school or its province; the loader gives them nothing.
    assert not [p for p in parse_dir(SEEDS_DIR / "plans") if p.data.org_unit_code in ("66", "66-THPT-NCT")]
    report, plans = await load_real_plans(tree)
    assert not [line for line in report if "(unit 66" in line], report
    assert set(plans) == ({"qd-677-ttg"} if national else set())
    viewer = tree.auth(await tree.user(("viewer", dak_lak)))
    for unit in (school, dak_lak):
        r = await client.get(f"{API}/plans", params={"org_unit_id": unit.id}, headers=viewer)
        assert r.status_code == 200, r.text
        assert r.json()["total"] == 0

    body = await progress(client, viewer, school, 2025)
    if national:
        assert body["plan_id"] == plans["qd-677-ttg"]
        nat = "qd-677-ttg"
        expected: dict[str, Row] = {
            "staff_in_learning_units_recognised_pct": (3, 4, 75.0, 60.0, 2025, 15.0, "met", nat),
            "digital_skills_pct": (4, 5, 80.0, 70.0, 2025, 10.0, "met", nat),
            "digital_proficient_pct": (2, 5, 40.0, 60.0, 2025, -20.0, "behind", nat),
            "trained_pct": (0, 4, 0.0, 100.0, 2025, -100.0, "behind", nat),
            "adults_in_learning_collectives_recognised_pct": (0, 0, None, 40.0, 2025, None, "no_data", nat),
        }
    else:
        # "Without the national plan, the top-level plan_id is null and every row above is no_target,
        # except the no_data row."
        assert body["plan_id"] is None
        expected = {
            "staff_in_learning_units_recognised_pct": (3, 4, 75.0, None, None, None, "no_target", None),
            "digital_skills_pct": (4, 5, 80.0, None, None, None, "no_target", None),
            "digital_proficient_pct": (2, 5, 40.0, None, None, None, "no_target", None),
            "trained_pct": (0, 4, 0.0, None, None, None, "no_target", None),
            "adults_in_learning_collectives_recognised_pct": (0, 0, None, None, None, None, "no_data", None),
        }
    expected |= {
        "staff_recognised_pct": (3, 4, 75.0, None, None, None, "no_target", None),
        "students_recognised_pct": (2, 5, 40.0, None, None, None, "no_target", None),
        "learning_units_pct": (1, 1, 100.0, None, None, None, "no_target", None),
    }
    check(body, plans, expected)


# ------------------------------------------------------------------------ seed 004: MN Thanh Lương


@pytest.mark.parametrize("year", [2024, 2025])
async def test_seed_004_mn_thanh_luong(client: httpx.AsyncClient, tree: Tree, year: int) -> None:
    # "3.1. 100% thành viên trong đơn vị đáp ứng đầy đủ các năng lực và phẩm chất của Công dân học tập, gồm:
    # …" (read as recognised: staff_recognised_pct), and among those qualities "Biết sử dụng ngoại ngữ và công
    # nghệ thông tin đáp ứng yêu cầu công việc" (digital_skills_pct), both for 2024 only. 2025 is the
    # "target-year check": the plan has no target year ≥ 2025, so only the national plan applies.
    vn = await tree.unit("Việt Nam", "nation", code="VN")
    hai_phong = await tree.unit("Thành phố Hải Phòng", "province", vn, code="31")
    vinh_bao = await tree.unit("Huyện Vĩnh Bảo", "district", hai_phong, code="31-316")
    school = await tree.unit("Trường MN Thanh Lương", "school", vinh_bao, code="31-316-MN-THANHLUONG")
    g = [await tree.person(school, "staff") for _ in range(6)]
    levels = ["proficient"] * 3 + ["basic"] * 2
    recognised = [
        await assessed(tree, person, year, level) for person, level in zip(g[:5], levels, strict=True)
    ]
    await sign(tree, school, year, recognised, date(year, 12, 28), "01")
    await not_passed(tree, g[5], year, "proficient")

    report, plans = await load_real_plans(tree)
    assert any(line.startswith("plan mn-thanh-luong: created") for line in report), report
    viewer = tree.auth(await tree.user(("viewer", school)))
    body = await progress(client, viewer, school, year)

    tl, nat = "mn-thanh-luong", "qd-677-ttg"
    if year == 2024:
        assert body["plan_id"] == plans[tl]
        expected: dict[str, Row] = {
            # "100% thành viên trong đơn vị đáp ứng đầy đủ các năng lực và phẩm chất của Công dân học tập"
            "staff_recognised_pct": (5, 6, 83.33, 100.0, 2024, -16.67, "behind", tl),
            # "Biết sử dụng ngoại ngữ và công nghệ thông tin đáp ứng yêu cầu công việc" (100%)
            "digital_skills_pct": (5, 5, 100.0, 100.0, 2024, 0.0, "met", tl),
        }
    else:
        expected = {
            # the school's plan has no target year ≥ 2025 and the national plan does not target it
            "staff_recognised_pct": (5, 6, 83.33, None, None, None, "no_target", None),
            # national "70%" for 2025
            "digital_skills_pct": (5, 5, 100.0, 70.0, 2025, 30.0, "met", nat),
        }
    expected |= {
        "digital_proficient_pct": (3, 5, 60.0, 60.0, 2025, 0.0, "met", nat),
        "trained_pct": (0, 6, 0.0, 100.0, 2025, -100.0, "behind", nat),
        "staff_in_learning_units_recognised_pct": (0, 0, None, 60.0, 2025, None, "no_data", nat),
    }
    check(body, plans, expected)
