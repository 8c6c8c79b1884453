"""``cdht demo``: the organisations of the seed plans as they stood in 2024 (with villages, households and
clans: ``demo_collectives``), people and collectives evaluated in 2024, the real 2025 reform applied to them
(``criteria_seeds/reorganisations/``), a few users per role on the new tree, and the 2025 evaluations.

Everything goes through the domain services with a system-administrator subject, so the demo obeys the
same rules as the API. Running it twice changes nothing.
"""

from __future__ import annotations

import random
from datetime import date

from fastapi import UploadFile
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository as auth_repo
from app.auth.models import Role, RoleAssignment, User
from app.auth.scope import Subject, subtree_ids
from app.core.config import Settings
from app.core.security import hash_password
from app.demo_collectives import UNITS as COLLECTIVE_UNITS
from app.demo_collectives import load_collective_evaluations, load_residents, person_name
from app.demo_evaluations import ADULT_AGE, CLOSED_YEAR_MIX, load_demo_evaluations
from app.demo_reporting import load_reporting
from app.evaluations.storage import EvidenceStore
from app.orgs import repository as orgs_repo
from app.orgs import service as orgs
from app.orgs.models import OrgKind, OrgUnit
from app.orgs.schemas import OrgUnitCreate
from app.people import service as people
from app.people.models import Gender, Group, Person
from app.people.schemas import PersonCreate
from app.reorganisations import from_file
from app.seeds import SEEDS_DIR
from app.trainings import service as trainings
from app.trainings.schemas import TrainingSessionCreate

DEMO_PASSWORD = "demo-password"
SYSTEM = Subject(user_id=0, username="cdht-demo", is_admin=True)
REFORM_ON = date(2025, 7, 1)
MEMBERS_SINCE = date(2022, 1, 1)  # the demo's people belong to their units since the programme began
REFORM_FILE = SEEDS_DIR / "reorganisations" / "2025-07-01-sap-xep-don-vi-hanh-chinh.csv"

# The tree as it stood in 2024 (code, name, kind, parent code): official codes for provinces, districts
# (<province>-<district>) and communes; descriptive ones for schools. The reform file reshapes it.
TREE: list[tuple[str, str, OrgKind, str | None]] = [
    ("VN", "Việt Nam", OrgKind.NATION, None),
    ("37", "Tỉnh Ninh Bình", OrgKind.PROVINCE, "VN"),
    ("37-374", "Thành phố Hoa Lư", OrgKind.DISTRICT, "37"),
    ("14329", "Phường Vân Giang", OrgKind.COMMUNE, "37-374"),
    ("37-HOALU-THCS", "Trường THCS Hoa Lư", OrgKind.SCHOOL, "14329"),
    ("35", "Tỉnh Hà Nam", OrgKind.PROVINCE, "VN"),
    ("36", "Tỉnh Nam Định", OrgKind.PROVINCE, "VN"),
    ("62", "Tỉnh Kon Tum", OrgKind.PROVINCE, "VN"),
    ("62-614", "Huyện Kon Rẫy", OrgKind.DISTRICT, "62"),
    ("23488", "Xã Đăk Ruồng", OrgKind.COMMUNE, "62-614"),
    ("23497", "Xã Tân Lập", OrgKind.COMMUNE, "62-614"),
    ("23494", "Xã Đăk Tờ Re", OrgKind.COMMUNE, "62-614"),
    ("51", "Tỉnh Quảng Ngãi", OrgKind.PROVINCE, "VN"),
    ("01", "Thành phố Hà Nội", OrgKind.PROVINCE, "VN"),
    ("01-278", "Huyện Thanh Oai", OrgKind.DISTRICT, "01"),
    ("01-278-MN-TAMHUNGA", "Trường Mầm non Tam Hưng A", OrgKind.SCHOOL, "01-278"),
    ("01-278-MN-TAMHUNGA-TCM", "Tổ chuyên môn", OrgKind.UNIT, "01-278-MN-TAMHUNGA"),
    ("54", "Tỉnh Phú Yên", OrgKind.PROVINCE, "VN"),
    ("66", "Tỉnh Đắk Lắk", OrgKind.PROVINCE, "VN"),
    ("66-THPT-NCT", "Trường THPT Nguyễn Chí Thanh", OrgKind.SCHOOL, "66"),
    ("30", "Tỉnh Hải Dương", OrgKind.PROVINCE, "VN"),
    ("31", "Thành phố Hải Phòng", OrgKind.PROVINCE, "VN"),
    ("31-316", "Huyện Vĩnh Bảo", OrgKind.DISTRICT, "31"),
    ("31-316-MN-THANHLUONG", "Trường Mầm non Thanh Lương", OrgKind.SCHOOL, "31-316"),
]

# (username, full name, role, unit code, person group or None): made after the reform, on the new tree.
USERS: list[tuple[str, str, Role, str, Group | None]] = [
    ("ninhbinh.admin", "Cán bộ Hội Khuyến học tỉnh Ninh Bình", Role.ORG_ADMIN, "37", None),
    ("ninhbinh.viewer", "Sở GD&ĐT Ninh Bình", Role.VIEWER, "37", None),
    ("quangngai.admin", "Hội Khuyến học tỉnh Quảng Ngãi", Role.ORG_ADMIN, "51", None),
    ("quangngai.viewer", "Sở GD&ĐT Quảng Ngãi", Role.VIEWER, "51", None),
    ("konbraih.admin", "Hội Khuyến học xã Kon Braih", Role.ORG_ADMIN, "23497", None),
    ("tamhunga.admin", "Văn thư Trường MN Tam Hưng A", Role.ORG_ADMIN, "01-278-MN-TAMHUNGA", None),
    ("tamhunga.assessor", "Nguyễn Thị Hoa (Tổ đánh giá)", Role.ASSESSOR, "01-278-MN-TAMHUNGA", Group.STAFF),
    ("tamhunga.approver", "Trần Thị Lan (Hiệu trưởng)", Role.APPROVER, "01-278-MN-TAMHUNGA", Group.STAFF),
    ("tamhunga.teacher", "Lê Thị Mai (Giáo viên)", Role.MEMBER, "01-278-MN-TAMHUNGA-TCM", Group.STAFF),
    ("nct.admin", "Văn thư Trường THPT Nguyễn Chí Thanh", Role.ORG_ADMIN, "66-THPT-NCT", None),
    ("thanhluong.admin", "Văn thư Trường MN Thanh Lương", Role.ORG_ADMIN, "31-316-MN-THANHLUONG", None),
]

# (unit code, group, how many) — MN Tam Hưng A has ten staff in all (with the three demo users above).
# Residents are made household by household in villages (demo_collectives, whose UNITS hold the last three
# units here too).
PEOPLE: list[tuple[str, Group, int]] = [
    ("01-278-MN-TAMHUNGA-TCM", Group.STAFF, 7),
    ("66-THPT-NCT", Group.STAFF, 20),
    ("66-THPT-NCT", Group.STUDENT, 30),
    ("31-316-MN-THANHLUONG", Group.STAFF, 12),
    ("37-HOALU-THCS", Group.STAFF, 15),
    ("23497-MN", Group.STAFF, 12),
    ("23488-TH", Group.STAFF, 16),
    ("37-HKH", Group.STAFF, 6),
]


# (unit code, title, day, every how many people of the subtree attended): all of MN Tam Hưng A, half of
# Kon Rẫy, so trained_pct shows one unit on target and one behind.
TRAININGS: list[tuple[str, str, date, int]] = [
    (
        "01-278-MN-TAMHUNGA",
        "Hội nghị quán triệt Kế hoạch thực hiện Chương trình Xây dựng mô hình Công dân học tập",
        date(2025, 3, 14),
        1,
    ),
    ("62-614", "Tập huấn bộ tiêu chí đánh giá Công dân học tập (324/QĐ-KHVN)", date(2025, 4, 10), 2),
]


async def _unit(
    session: AsyncSession, code: str, name: str, kind: OrgKind, parent: OrgUnit | None
) -> OrgUnit:
    existing = await orgs_repo.get_by_code(session, code)
    if existing is not None:
        return existing
    data = OrgUnitCreate(name=name, kind=kind, code=code, parent_id=parent.id if parent else None)
    return await orgs.create(session, SYSTEM, data)


async def _user(
    session: AsyncSession, username: str, full_name: str, password_hash: str, unit: OrgUnit | None
) -> tuple[User, bool]:
    existing = await auth_repo.get_user_by_username(session, username)
    if existing is not None:
        return existing, False
    user = User(
        username=username,
        password_hash=password_hash,
        full_name=full_name,
        org_unit_id=unit.id if unit else None,
    )
    session.add(user)
    await session.flush()
    return user, True


async def load_demo(session: AsyncSession, store: EvidenceStore, settings: Settings) -> list[str]:
    """The 2024 tree, its people, households and clans and their 2024 evaluations; the 2025 reform (from
    its file); then the users of the new tree and the 2025 evaluations, personal and collective."""
    units: dict[str, OrgUnit] = {}
    for code, name, kind, parent_code in [*TREE, *COLLECTIVE_UNITS]:
        units[code] = await _unit(session, code, name, kind, units[parent_code] if parent_code else None)

    password_hash = await hash_password(DEMO_PASSWORD)
    admin, created = await _user(session, "admin", "Quản trị hệ thống (demo)", password_hash, None)
    if not created:
        return ["The demo is already loaded.", *_logins()]
    session.add(RoleAssignment(user_id=admin.id, role=Role.ADMIN.value, org_unit_id=None))

    rng = random.Random(2025)  # noqa: S311 — demo names, not secrets
    for unit_code, group, count in PEOPLE:
        for _ in range(count):
            gender = rng.choice([Gender.FEMALE, Gender.MALE])
            name = person_name(rng, gender)
            birth = rng.randint(2007, 2010) if group == Group.STUDENT else rng.randint(1965, 2000)
            await people.create(
                session,
                SYSTEM,
                PersonCreate(
                    full_name=name,
                    org_unit_id=units[unit_code].id,
                    group=group,
                    birth_year=birth,
                    gender=gender,
                    member_since=MEMBERS_SINCE,
                ),
            )
    residents = await load_residents(session, SYSTEM, units, MEMBERS_SINCE)
    await session.flush()
    summary = residents + await load_demo_evaluations(session, SYSTEM, store, set(), 2024, CLOSED_YEAR_MIX)
    summary += await load_collective_evaluations(session, SYSTEM, store, 2024, closed=True)
    for code, title, day, every in TRAININGS:
        unit_id = units[code].id
        adults = or_(Person.birth_year.is_(None), Person.birth_year <= day.year - ADULT_AGE)
        stmt = (
            select(Person.id)
            .where(Person.org_unit_id.in_(subtree_ids([unit_id])), adults)
            .order_by(Person.id)
        )
        attendees = list((await session.scalars(stmt)).all())[::every]
        data = TrainingSessionCreate(org_unit_id=unit_id, title=title, held_on=day, attendee_ids=attendees)
        await trainings.create(session, SYSTEM, data)
    summary.append(f"Training sessions: {len(TRAININGS)}.")

    with REFORM_FILE.open("rb") as handle:
        reform = await from_file.apply_file(
            session,
            SYSTEM,
            UploadFile(handle, filename=REFORM_FILE.name),
            settings,
            effective_on=REFORM_ON,
            dry_run=False,
            title="Sắp xếp đơn vị hành chính từ 01/7/2025 (tỉnh, bỏ cấp huyện, xã)",
            document_no="202/2025/QH15",
        )
    done = reform.summary
    summary.append(
        f"Reorganisation of {REFORM_ON.isoformat()}: {done.units_created} units created, "
        f"{done.units_ended} ended, {done.units_moved} moved, {done.people_moved} people moved."
    )

    left_in_draft: set[int] = set()
    for username, full_name, role, unit_code, user_group in USERS:
        unit = await orgs_repo.get_by_code(session, unit_code)
        assert unit is not None
        user, _ = await _user(session, username, full_name, password_hash, unit)
        session.add(
            RoleAssignment(user_id=user.id, role=role.value, org_unit_id=unit.id, granted_by=admin.id)
        )
        if user_group is not None:
            person = await people.create(
                session,
                SYSTEM,
                PersonCreate(
                    full_name=full_name,
                    org_unit_id=unit.id,
                    group=user_group,
                    user_id=user.id,
                    member_since=MEMBERS_SINCE,
                ),
            )
            left_in_draft.add(person.id)  # the demo users open their own 2025 evaluation themselves
    await session.flush()
    summary += await load_demo_evaluations(session, SYSTEM, store, left_in_draft, 2025)
    summary += await load_collective_evaluations(session, SYSTEM, store, 2025)
    summary += await load_reporting(session, SYSTEM)
    return ["Demo loaded.", *summary, *_logins()]


def _logins() -> list[str]:
    lines = [
        f"Demo logins (password for all: {DEMO_PASSWORD}):",
        "  admin                 admin (everything)",
    ]
    lines += [f"  {u:<21} {r.value} at {c}" for u, _, r, c, _ in USERS]
    return lines
