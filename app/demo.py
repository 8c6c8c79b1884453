"""``cdht demo``: the organisations of the seed plans, a few users per role, and people to evaluate.

Everything goes through the domain services with a system-administrator subject, so the demo obeys the
same rules as the API. Running it twice changes nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository as auth_repo
from app.auth.models import Role, RoleAssignment, User
from app.auth.scope import Subject, subtree_ids
from app.core.security import hash_password
from app.demo_evaluations import load_demo_evaluations
from app.evaluations.storage import EvidenceStore
from app.orgs import repository as orgs_repo
from app.orgs import service as orgs
from app.orgs.models import OrgKind, OrgUnit
from app.orgs.schemas import OrgUnitCreate, OrgUnitUpdate
from app.people import service as people
from app.people.models import Group, Person
from app.people.schemas import PersonCreate
from app.trainings import service as trainings
from app.trainings.schemas import TrainingSessionCreate

DEMO_PASSWORD = "demo-password"
SYSTEM = Subject(user_id=0, username="cdht-demo", is_admin=True)
DISTRICTS_ABOLISHED_ON = date(2025, 7, 1)

# (code, name, kind, parent code)
TREE: list[tuple[str, str, OrgKind, str | None]] = [
    ("VN", "Việt Nam", OrgKind.NATION, None),
    ("37", "Tỉnh Ninh Bình", OrgKind.PROVINCE, "VN"),
    ("37-HOALU", "Phường Hoa Lư", OrgKind.COMMUNE, "37"),
    ("37-HOALU-THCS", "Trường THCS Hoa Lư", OrgKind.SCHOOL, "37-HOALU"),
    ("62", "Tỉnh Kon Tum", OrgKind.PROVINCE, "VN"),
    ("62-616", "Huyện Kon Rẫy", OrgKind.DISTRICT, "62"),
    ("62-616-DAKRUONG", "Xã Đăk Ruồng", OrgKind.COMMUNE, "62-616"),
    ("62-616-TANLAP", "Xã Tân Lập", OrgKind.COMMUNE, "62-616"),
    ("01", "Thành phố Hà Nội", OrgKind.PROVINCE, "VN"),
    ("01-278", "Huyện Thanh Oai", OrgKind.DISTRICT, "01"),
    ("01-278-MN-TAMHUNGA", "Trường Mầm non Tam Hưng A", OrgKind.SCHOOL, "01-278"),
    ("01-278-MN-TAMHUNGA-TCM", "Tổ chuyên môn", OrgKind.UNIT, "01-278-MN-TAMHUNGA"),
    ("66", "Tỉnh Đắk Lắk", OrgKind.PROVINCE, "VN"),
    ("66-THPT-NCT", "Trường THPT Nguyễn Chí Thanh", OrgKind.SCHOOL, "66"),
    ("31", "Thành phố Hải Phòng", OrgKind.PROVINCE, "VN"),
    ("31-315", "Huyện Vĩnh Bảo", OrgKind.DISTRICT, "31"),
    ("31-315-MN-THANHLUONG", "Trường Mầm non Thanh Lương", OrgKind.SCHOOL, "31-315"),
]

# (username, full name, role, unit code, person group or None)
USERS: list[tuple[str, str, Role, str, Group | None]] = [
    ("ninhbinh.admin", "Cán bộ Hội Khuyến học tỉnh Ninh Bình", Role.ORG_ADMIN, "37", None),
    ("ninhbinh.viewer", "Sở GD&ĐT Ninh Bình", Role.VIEWER, "37", None),
    ("konray.admin", "Hội Khuyến học huyện Kon Rẫy", Role.ORG_ADMIN, "62-616", None),
    ("konray.viewer", "Phòng GD&ĐT Kon Rẫy", Role.VIEWER, "62-616", None),
    ("tamhunga.admin", "Văn thư Trường MN Tam Hưng A", Role.ORG_ADMIN, "01-278-MN-TAMHUNGA", None),
    ("tamhunga.assessor", "Nguyễn Thị Hoa (Tổ đánh giá)", Role.ASSESSOR, "01-278-MN-TAMHUNGA", Group.STAFF),
    ("tamhunga.approver", "Trần Thị Lan (Hiệu trưởng)", Role.APPROVER, "01-278-MN-TAMHUNGA", Group.STAFF),
    ("tamhunga.teacher", "Lê Thị Mai (Giáo viên)", Role.MEMBER, "01-278-MN-TAMHUNGA-TCM", Group.STAFF),
    ("nct.admin", "Văn thư Trường THPT Nguyễn Chí Thanh", Role.ORG_ADMIN, "66-THPT-NCT", None),
    ("thanhluong.admin", "Văn thư Trường MN Thanh Lương", Role.ORG_ADMIN, "31-315-MN-THANHLUONG", None),
]

FAMILY_NAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ"]
MIDDLE = ["Thị", "Văn", "Minh", "Thu", "Đức", "Ngọc", "Quang", "Thanh"]
GIVEN = ["Hoa", "Lan", "Mai", "Hương", "Nam", "Hùng", "Dũng", "Linh", "Trang", "Phương", "Tuấn", "Hà"]

# (unit code, group, how many) — MN Tam Hưng A has ten staff in all (with the three demo users above)
PEOPLE: list[tuple[str, Group, int]] = [
    ("01-278-MN-TAMHUNGA-TCM", Group.STAFF, 7),
    ("66-THPT-NCT", Group.STAFF, 20),
    ("66-THPT-NCT", Group.STUDENT, 30),
    ("31-315-MN-THANHLUONG", Group.STAFF, 12),
    ("62-616-DAKRUONG", Group.RESIDENT, 25),
    ("62-616-TANLAP", Group.RESIDENT, 15),
    ("37-HOALU", Group.RESIDENT, 20),
    ("37-HOALU-THCS", Group.STAFF, 15),
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
    ("62-616", "Tập huấn bộ tiêu chí đánh giá Công dân học tập (324/QĐ-KHVN)", date(2025, 4, 10), 2),
]


@dataclass
class DemoContext:
    units: dict[str, OrgUnit]


async def _unit(
    session: AsyncSession, code: str, name: str, kind: OrgKind, parent: OrgUnit | None
) -> OrgUnit:
    existing = await orgs_repo.get_by_code(session, code)
    if existing is not None:
        return existing
    data = OrgUnitCreate(name=name, kind=kind, code=code, parent_id=parent.id if parent else None)
    unit = await orgs.create(session, SYSTEM, data)
    if kind == OrgKind.DISTRICT:
        await orgs.update(session, SYSTEM, unit.id, OrgUnitUpdate(dissolved_on=DISTRICTS_ABOLISHED_ON), None)
    return unit


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


async def load_demo(session: AsyncSession, store: EvidenceStore) -> list[str]:
    units: dict[str, OrgUnit] = {}
    for code, name, kind, parent_code in TREE:
        units[code] = await _unit(session, code, name, kind, units[parent_code] if parent_code else None)

    password_hash = await hash_password(DEMO_PASSWORD)
    admin, created = await _user(session, "admin", "Quản trị hệ thống (demo)", password_hash, None)
    if not created:
        return ["The demo is already loaded.", *_logins()]
    session.add(RoleAssignment(user_id=admin.id, role=Role.ADMIN.value, org_unit_id=None))

    left_in_draft: set[int] = set()
    for username, full_name, role, unit_code, group in USERS:
        unit = units[unit_code]
        user, _ = await _user(session, username, full_name, password_hash, unit)
        session.add(
            RoleAssignment(user_id=user.id, role=role.value, org_unit_id=unit.id, granted_by=admin.id)
        )
        if group is not None:
            person = await people.create(
                session,
                SYSTEM,
                PersonCreate(full_name=full_name, org_unit_id=unit.id, group=group, user_id=user.id),
            )
            left_in_draft.add(person.id)  # the demo users open their own 2025 evaluation themselves

    rng = random.Random(2025)  # noqa: S311 — demo names, not secrets
    for unit_code, group, count in PEOPLE:
        for _ in range(count):
            name = f"{rng.choice(FAMILY_NAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
            birth = rng.randint(2007, 2010) if group == Group.STUDENT else rng.randint(1965, 2000)
            await people.create(
                session,
                SYSTEM,
                PersonCreate(full_name=name, org_unit_id=units[unit_code].id, group=group, birth_year=birth),
            )
    await session.flush()
    summary = await load_demo_evaluations(session, SYSTEM, store, units, left_in_draft)
    for code, title, day, every in TRAININGS:
        unit_id = units[code].id
        stmt = select(Person.id).where(Person.org_unit_id.in_(subtree_ids([unit_id]))).order_by(Person.id)
        attendees = list((await session.scalars(stmt)).all())[::every]
        data = TrainingSessionCreate(org_unit_id=unit_id, title=title, held_on=day, attendee_ids=attendees)
        await trainings.create(session, SYSTEM, data)
    summary.append(f"Training sessions: {len(TRAININGS)}.")
    return ["Demo loaded.", *summary, *_logins()]


def _logins() -> list[str]:
    lines = [
        f"Demo logins (password for all: {DEMO_PASSWORD}):",
        "  admin                 admin (everything)",
    ]
    lines += [f"  {u:<21} {r.value} at {c}" for u, _, r, c, _ in USERS]
    return lines
