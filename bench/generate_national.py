"""Load a synthetic national year (2025) into a PostgreSQL database, for ``bench/run_aggregates.py``.

    .venv/bin/python bench/generate_national.py                      # 5,000,000 people into cdht_bench
    .venv/bin/python bench/generate_national.py --people 20000       # smoke size, same tree

What it builds (deterministic for a given ``--seed``):

- the tree: 1 nation, 34 provinces (commune counts roughly those of the July 2025 map, scaled to exactly
  3,321 communes: 2,621 xã, 687 phường, 13 đặc khu), a few legacy districts still holding their communes
  in three provinces (alive units: ``bench/run_reorganisation.py`` abolishes them, effective 1 July
  2025); under each commune its villages / residential groups (~19 on average, ~63,000 in all),
  kindergarten, primary and lower-secondary schools, the commune People's Committee and health station,
  sometimes an enterprise; under each province its upper-secondary
  schools (each with three subject teams, kind ``unit``), its departments and a few large enterprises.
  About 98,000 units; depth 0–4.
- ``--people`` people spread over those units by group: residents in villages (62 %), pupils in schools
  (20 %), staff in schools, agencies and teams (12 %), workers in enterprises (6 %); birth years:
  residents 1935–2025 in Vietnam's rough age structure (~20 % under 15, ~11 % over 64), pupils
  2007–2016, staff 1965–2002, workers 1968–2006.
- households (hộ gia đình): everyone belongs to one (an open ``household_members`` row), of 1–6 people
  (mean ~3.5: ~1.4 million at 5,000,000 people): the people of a commune's units, with a share of their
  province's own units (upper-secondary schools, departments, large firms) spread over its communes,
  shuffled and grouped, each household placed (``collectives`` and an open ``collective_places`` row) at
  one of the commune's villages, by residents. Clans (dòng họ): about one per 30 households of a commune
  (at least one where it has 5), each of 5–60 of its households (triangular, mode 12; ~85 % of the
  households belong to one), placed at the commune. All since always, still.
- one 2025 personal evaluation per person except residents under 15 (the adults' metrics count from 15),
  criteria set by group (the real seed sets, loaded by the app's loader): about half ``recognised`` under
  one decision per unit (recognition propensity varies by group and by unit; ~3 % of units have recognised
  nobody yet), the rest ``reviewed`` (passed or not), ``in_review``, ``submitted``, ``returned``, ``draft``
  and ``withdrawn``; reviewed and recognised ones carry a total and a pass flag. Digital levels are drawn
  from per-unit propensities (fewer proficient among those born before 1965, more among pupils), not from
  the scores: declared by ~97 % of the submitted (half the drafts), confirmed by the assessor (or moved a
  step, 15 %) in ~90 % of the completed reviews and 40 % of those in review; a completed review's level is
  the confirmed one, else the declared one, ``none`` without either or for ~3 % (no accepted evidence).
- collective evaluations of 2025 with the titles' seed criteria sets: in each commune ~60 % (± 20 % by
  commune) of its households (``learning_family``), clans (``learning_clan``), villages
  (``learning_community``) and schools, agencies and enterprises (``learning_unit``) evaluated, ~70 %
  (learning units ~65 %; ± 15 %) of those recognised by one decision of the commune per title, the rest in
  the personal evaluations' mix of other statuses; the province's own schools, departments and firms
  likewise, by the province's decisions. Learning units carry their grade (``muc_1``/``muc_2``).
- decisions: about 0.3 % of all decisions (personal and collective) are revoked (their evaluations back
  to ``reviewed``, as the app leaves them), half of those re-recognised by a replacement decision.
- one training session per commune and per province in 2025, attended by ~70 % of staff (``trained_pct``).
- plans: the national plan (677/QĐ-TTg targets), a dozen province plans, the legacy districts' plans,
  ~5 % of the communes of those provinces and a few upper-secondary schools, with 2025/2030 targets.

The tree already has villages and schools, agencies and enterprises, the subjects of the collective
titles (no unit is added for them). Not generated: evaluation scores and evidence rows
(``evaluation_scores``, ``evidence``) and audit entries — the aggregates never read them; the runner's
write-path measurement creates its own complete evaluations (and uses generated households that have none).

How: the database is (re)created and migrated with ``app.cli.migrate``; the criteria sets come from
``criteria_seeds/`` through ``app.criteria.loader``; units, sessions, decisions and plans are COPYed with
``copy_records_to_table``; people, households and clans (``collectives``, ``collective_places``,
``household_members``, ``clan_households``: grouped in memory in compact arrays first), evaluations,
decision items and attendance are streamed as COPY text from Python generators (``copy_to_table`` …
FREEZE, in the transaction that truncates them), with the keys, indexes and foreign keys of those tables
dropped before and rebuilt (validated) after; ``org_unit_closure`` is filled in SQL one depth at a time and
copied into ``org_unit_links`` (the closure through time: every pair open, since always); ``memberships``
(one open period per person, the unit and group of ``people``) is filled in SQL after the people, with its
keys and indexes built after it; the counters by ``app.aggregates.counters.rebuild``; then VACUUM ANALYZE.
All tables stay ordinary logged tables. A summary (arguments, sizes, step timings) is stored as the
database's comment, for the runner.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import time
from array import array
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy import text

from app.aggregates import counters
from app.cli import migrate
from app.core.config import Settings
from app.core.db import make_engine, make_sessionmaker, unit_of_work
from app.criteria.loader import load_criteria
from app.seeds import SEEDS_DIR

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/cdht_bench"
YEAR = 2025
COMMUNES = 3321
KIND_COUNTS = {"Xã": 2621, "Phường": 687, "Đặc khu": 13}
GROUP_SHARES = {"resident": 0.62, "student": 0.20, "staff": 0.12, "worker": 0.06}
GROUP_ORDER = ("staff", "worker", "student", "resident")  # order of people inside a unit
CRITERIA_CODES = {
    "resident": "KHVN-324-II",
    "worker": "KHVN-324-III",
    "staff": "KHVN-324-IV",
    "student": "KHVN-324-V",
}
# Base recognition propensity by group (unit noise ± 0.2 on top).
RECOGNITION = {"resident": 0.45, "student": 0.55, "staff": 0.66, "worker": 0.50}
# How the evaluations that are not recognised spread over the other statuses.
OTHER_STATUSES = (
    ("reviewed_passed", 0.16),
    ("reviewed_failed", 0.14),
    ("in_review", 0.12),
    ("submitted", 0.16),
    ("returned", 0.06),
    ("draft", 0.28),
    ("withdrawn", 0.08),
)
LAGGING_UNITS = 0.03  # units whose committee has recognised nobody yet
REVOKE_EVERY = 331  # one decision in this many is revoked
# Collective titles (Decision 387/QĐ-TTg): title → criteria set code (the seeds of criteria_seeds/criteria).
TITLE_CODES = {
    "learning_family": "KHVN-GDHT",
    "learning_clan": "KHVN-DHHT",
    "learning_community": "KHVN-CDHT-THON",
    "learning_unit": "TT-24-2023-DVHT",
}
# Share of the subjects of each title evaluated in 2025, and of those the share recognised (both ± a
# per-commune noise), and the number tag of the decisions that recognise them.
COLLECTIVE_RATES = {
    "learning_family": (0.60, 0.70, "GĐHT"),
    "learning_clan": (0.60, 0.70, "DHHT"),
    "learning_community": (0.60, 0.70, "CĐHT"),
    "learning_unit": (0.60, 0.65, "ĐVHT"),
}
UNIT_TITLE_KINDS = ("school", "agency", "enterprise")  # learning units; villages are communities
# Household sizes 1–6 (weights; mean ≈ 3.5, i.e. about one household per 3.5 people).
HOUSEHOLD_SIZES = (1, 2, 3, 4, 5, 6)
HOUSEHOLD_WEIGHTS = (9, 18, 23, 24, 15, 11)
HOUSEHOLDS_PER_CLAN = 30  # about one clan per this many households of a commune
CLAN_SIZE = (5, 60, 12)  # households per clan: triangular (low, high, mode), so ~85 % of households
# Residents' birth years (age bands of 2025, shares close to Vietnam's age structure): ~20 % under 15.
RESIDENT_BIRTHS = (
    (2011, 2025, 0.20),
    (2001, 2010, 0.13),
    (1986, 2000, 0.23),
    (1971, 1985, 0.21),
    (1961, 1970, 0.12),
    (1935, 1960, 0.11),
)
CHILD_BORN_AFTER = YEAR - 15  # residents born after this are under 15: no evaluation of their own
BIG_TABLES = (
    "people",
    "evaluations",
    "recognition_decisions",
    "recognition_decision_items",
    "training_attendance",
    "memberships",
    "collectives",
    "collective_places",
    "household_members",
    "clan_households",
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# (name, is a city, communes): commune counts approximate the 34 provinces of 1 July 2025; scaled to 3,321.
PROVINCES: tuple[tuple[str, bool, int], ...] = (
    ("Hà Nội", True, 126),
    ("Huế", True, 40),
    ("Lai Châu", False, 38),
    ("Điện Biên", False, 45),
    ("Sơn La", False, 75),
    ("Lạng Sơn", False, 65),
    ("Quảng Ninh", False, 54),
    ("Thanh Hóa", False, 166),
    ("Nghệ An", False, 130),
    ("Hà Tĩnh", False, 69),
    ("Cao Bằng", False, 56),
    ("Tuyên Quang", False, 124),
    ("Lào Cai", False, 99),
    ("Thái Nguyên", False, 92),
    ("Phú Thọ", False, 148),
    ("Bắc Ninh", False, 99),
    ("Hưng Yên", False, 104),
    ("Hải Phòng", True, 114),
    ("Ninh Bình", False, 129),
    ("Quảng Trị", False, 78),
    ("Đà Nẵng", True, 94),
    ("Quảng Ngãi", False, 96),
    ("Gia Lai", False, 135),
    ("Khánh Hòa", False, 65),
    ("Lâm Đồng", False, 124),
    ("Đắk Lắk", False, 102),
    ("Hồ Chí Minh", True, 168),
    ("Đồng Nai", False, 95),
    ("Tây Ninh", False, 96),
    ("Cần Thơ", True, 103),
    ("Vĩnh Long", False, 124),
    ("Đồng Tháp", False, 102),
    ("Cà Mau", False, 64),
    ("An Giang", False, 102),
)
# Legacy districts (abolished 1 July 2025) still holding communes: province → district names.
LEGACY_DISTRICTS = {
    "Quảng Ngãi": ("Kon Rẫy", "Kon Plông", "Đăk Hà"),
    "Hà Nội": ("Thanh Oai", "Ứng Hòa"),
    "Ninh Bình": ("Gia Viễn", "Nho Quan", "Kim Sơn"),
}
PROVINCE_AGENCIES = (
    "Sở Giáo dục và Đào tạo",
    "Sở Nội vụ",
    "Sở Y tế",
    "Sở Tài chính",
    "Sở Văn hóa, Thể thao và Du lịch",
    "Sở Khoa học và Công nghệ",
    "Sở Nông nghiệp và Môi trường",
    "Sở Xây dựng",
    "Sở Công Thương",
    "Sở Tư pháp",
    "Hội Khuyến học tỉnh",
    "Văn phòng UBND tỉnh",
    "Bệnh viện Đa khoa tỉnh",
    "Trường Cao đẳng Sư phạm",
    "Thư viện tỉnh",
)
SYLLABLES = _words(
    "An Bình Tân Phú Hòa Long Thạnh Đông Tây Nam Bắc Hưng Phước Vĩnh Mỹ Thuận Quang Đức Hiệp "
    "Thành Trung Lộc Xuân Sơn Hải Minh Thái Yên Cẩm Kim"
)
SUBJECT_TEAMS = ("Tổ Toán – Tin", "Tổ Ngữ văn – Ngoại ngữ", "Tổ Văn phòng")

SURNAMES = (
    ["Nguyễn"] * 38
    + ["Trần"] * 11
    + ["Lê"] * 10
    + ["Phạm"] * 7
    + ["Hoàng"] * 5
    + ["Huỳnh", "Phan", "Vũ"] * 4
    + ["Võ"] * 3
    + ["Đặng", "Bùi", "Đỗ"] * 2
    + ["Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trương", "Mai", "Hà"]
)
MIDDLE = {
    "male": ("Văn", "Đức", "Minh", "Quang", "Hữu", "Công", "Thành", "Xuân"),
    "female": ("Thị", "Thu", "Ngọc", "Thanh", "Hồng", "Mai", "Phương", "Kim"),
}
GIVEN = {
    "male": _words(
        "An Bảo Cường Dũng Duy Hải Hiếu Hoàng Hùng Huy Khang Khoa Long Nam Phong Phúc Quân Sơn Tài "
        "Thắng Thịnh Trung Tuấn Việt"
    ),
    "female": _words(
        "Anh Châu Dung Giang Hà Hạnh Hằng Hiền Hoa Hương Lan Linh Loan Mai My Nga Ngân Nhung Oanh "
        "Phương Quỳnh Thảo Trang Tuyết Vân Yến"
    ),
}
BIRTH_YEARS = {
    "resident": (1945, 2005),
    "student": (2007, 2016),
    "staff": (1965, 2002),
    "worker": (1968, 2006),
}

NOW = datetime(2025, 12, 31, 9, 0, tzinfo=UTC)
NOW_TEXT = "2025-12-31 09:00:00+00"


# ---------------------------------------------------------------------------------------------- the tree


@dataclass
class Unit:
    id: int
    name: str
    kind: str
    code: str
    parent_id: int | None
    depth: int
    province: int  # 1-based province number (0 for the nation)
    session_area: int | None = None  # the unit whose training session its staff attend
    weights: dict[str, float] = field(default_factory=dict)
    people: dict[str, int] = field(default_factory=dict)


class Tree:
    def __init__(self) -> None:
        self.units: list[Unit] = []

    def add(self, name: str, kind: str, code: str, parent: Unit | None, **kw: object) -> Unit:
        unit = Unit(
            id=len(self.units) + 1,
            name=name,
            kind=kind,
            code=code,
            parent_id=parent.id if parent else None,
            depth=parent.depth + 1 if parent else 0,
            province=parent.province if parent else 0,
            **kw,  # type: ignore[arg-type]
        )
        self.units.append(unit)
        return unit


def _scaled_communes() -> list[int]:
    total = sum(n for _, _, n in PROVINCES)
    counts = [max(20, round(n * COMMUNES / total)) for _, _, n in PROVINCES]
    counts[counts.index(max(counts))] += COMMUNES - sum(counts)
    return counts


def build_tree(rng: random.Random) -> Tree:
    tree = Tree()
    nation = tree.add("Việt Nam", "nation", "VN", None)
    kinds = [k for k, n in KIND_COUNTS.items() for _ in range(n)]
    rng.shuffle(kinds)
    commune_no = 0
    for p_no, ((pname, city, _), n_communes) in enumerate(zip(PROVINCES, _scaled_communes(), strict=True), 1):
        title = "Thành phố" if city else "Tỉnh"
        province = tree.add(f"{title} {pname}", "province", f"P{p_no:02d}", nation)
        province.province = p_no
        province.session_area = province.id
        for name in PROVINCE_AGENCIES:
            agency = tree.add(f"{name} {pname}", "agency", f"P{p_no:02d}-A{len(tree.units)}", province)
            agency.session_area = province.id
            agency.weights = {"staff": rng.uniform(30, 120), "worker": rng.uniform(0, 5)}
        for e in range(1, 11):
            firm = tree.add(
                f"Công ty Cổ phần {rng.choice(SYLLABLES)} {rng.choice(SYLLABLES)} {pname} {e}",
                "enterprise",
                f"P{p_no:02d}-E{e}",
                province,
            )
            firm.session_area = province.id
            firm.weights = {"worker": rng.uniform(200, 2000), "staff": rng.uniform(10, 40)}
        for s in range(1, round(n_communes * 0.7) + 1):
            school = tree.add(
                f"Trường THPT {rng.choice(SYLLABLES)} {rng.choice(SYLLABLES)} số {s}",
                "school",
                f"P{p_no:02d}-T{s}",
                province,
            )
            school.session_area = province.id
            school.weights = {"student": rng.uniform(350, 900)}
            for t, team in enumerate(SUBJECT_TEAMS, 1):
                sub = tree.add(team, "unit", f"P{p_no:02d}-T{s}-{t}", school)
                sub.session_area = province.id
                sub.weights = {"staff": rng.uniform(8, 20)}
        # The legacy districts take the province's first communes (5–8 each).
        parents: list[Unit] = []
        for d_no, dname in enumerate(LEGACY_DISTRICTS.get(pname, ()), 1):
            district = tree.add(
                f"Huyện {dname} (cũ)",
                "district",
                f"P{p_no:02d}-D{d_no}",
                province,
            )
            parents += [district] * rng.randint(5, 8)
        names_used: set[str] = set()
        for c in range(n_communes):
            commune_no += 1
            prefix = kinds[commune_no - 1]
            base = f"{rng.choice(SYLLABLES)} {rng.choice(SYLLABLES)}"
            cname = base if base not in names_used else f"{base} {c}"
            names_used.add(cname)
            parent = parents[c] if c < len(parents) else province
            commune = tree.add(f"{prefix} {cname}", "commune", f"C{commune_no:04d}", parent)
            _commune_units(tree, rng, commune, prefix, cname)
    return tree


def _commune_units(tree: Tree, rng: random.Random, commune: Unit, prefix: str, cname: str) -> None:
    commune.session_area = commune.id
    code = commune.code

    def add(name: str, kind: str, suffix: str, weights: dict[str, float]) -> None:
        unit = tree.add(name, kind, f"{code}-{suffix}", commune, session_area=commune.id)
        unit.weights = weights

    village = "Tổ dân phố" if prefix == "Phường" else "Thôn"
    for v in range(1, max(4, round(rng.gauss(19, 6))) + 1):
        add(f"{village} {v}", "village", f"V{v}", {"resident": rng.uniform(15, 95)})
    for k in range(1, rng.randint(1, 2) + 1):
        add(f"Trường Mầm non {cname} {k}", "school", f"MN{k}", {"staff": rng.uniform(12, 30)})
    for k in range(1, rng.randint(1, 2) + 1):
        add(
            f"Trường Tiểu học {cname} {k}",
            "school",
            f"TH{k}",
            {"staff": rng.uniform(20, 40), "student": rng.uniform(80, 260)},
        )
    add(
        f"Trường THCS {cname}",
        "school",
        "THCS",
        {"staff": rng.uniform(25, 45), "student": rng.uniform(150, 400)},
    )
    add(f"UBND {prefix.lower()} {cname}", "agency", "UB", {"staff": rng.uniform(18, 30)})
    add(f"Trạm Y tế {prefix.lower()} {cname}", "agency", "YT", {"staff": rng.uniform(6, 14)})
    if rng.random() < 0.5:
        add(
            f"Công ty TNHH {rng.choice(SYLLABLES)} {cname}",
            "enterprise",
            "DN",
            {"worker": rng.uniform(20, 300), "staff": rng.uniform(2, 10)},
        )


def allocate_people(tree: Tree, total: int) -> None:
    """Spread ``total`` people over the units: each group's share over its units, by weight (exact sums)."""
    for group, share in GROUP_SHARES.items():
        wanted = round(total * share) if group != "resident" else 0
        if group == "resident":
            wanted = total - sum(round(total * s) for g, s in GROUP_SHARES.items() if g != "resident")
        holders = [u for u in tree.units if u.weights.get(group, 0) > 0]
        weight = sum(u.weights[group] for u in holders)
        cumulative, given = 0.0, 0
        for unit in holders:
            cumulative += unit.weights[group]
            upto = int(cumulative / weight * wanted) if unit is not holders[-1] else wanted
            unit.people[group] = upto - given
            given = upto


# ---------------------------------------------------------------------------------------------- rows


def _names() -> dict[str, list[str]]:
    return {
        gender: [f"{s} {m} {g}" for s in SURNAMES for m in MIDDLE[gender] for g in GIVEN[gender]]
        for gender in ("male", "female")
    }


def _status_table() -> list[str]:
    """1,000 slots of the non-recognised statuses in their proportions (index by a random number)."""
    slots: list[str] = []
    for status, share in OTHER_STATUSES:
        slots += [status] * round(share * 1000)
    return (slots + ["draft"] * 1000)[:1000]


def _birth_table() -> list[int]:
    """1,000 slots of residents' birth years in the shares of ``RESIDENT_BIRTHS`` (index by a random
    number)."""
    slots: list[int] = []
    for lo, hi, share in RESIDENT_BIRTHS:
        span = hi - lo + 1
        slots += [lo + i % span for i in range(round(share * 1000))]
    return (slots + [1980] * 1000)[:1000]


@dataclass
class Generated:
    people: int = 0
    children: int = 0  # residents under 15 in 2025: no evaluation of their own
    births: bytearray = field(default_factory=bytearray)  # by person id: birth year − 1900
    evaluations: int = 0  # the last evaluation id (personal ones first, then collective ones)
    statuses: dict[str, int] = field(default_factory=dict)
    levels: dict[str, dict[str, int]] = field(default_factory=dict)  # declared / reviewed / result
    collective_statuses: dict[str, dict[str, int]] = field(default_factory=dict)  # title → status → n
    decisions: list[tuple] = field(default_factory=list)  # type: ignore[type-arg]
    decisions_made: int = 0  # decisions signed (a revoked one and its replacement count once)
    items: list[str] = field(default_factory=list)
    attendance: list[str] = field(default_factory=list)
    sessions: dict[int, int] = field(default_factory=dict)  # area unit id → session id


CHUNK = 20_000


def people_rows(tree: Tree, seed: int, out: Generated) -> Iterator[bytes]:
    """COPY text rows of ``people``; also the attendance lines of the staff who were trained, and every
    person's birth year (``out.births``, for the evaluations and the households)."""
    names = _names()
    male, female = names["male"], names["female"]
    n_male, n_female = len(male), len(female)
    resident_births = _birth_table()
    births = out.births = bytearray(sum(sum(u.people.values()) for u in tree.units) + 1)
    lines: list[str] = []
    pid = 0
    for unit in tree.units:
        if not unit.people:
            continue
        rng = random.Random(seed * 1_000_003 + unit.id)
        session = out.sessions.get(unit.session_area or 0)
        prov = unit.province
        for group in GROUP_ORDER:
            lo, hi = BIRTH_YEARS[group]
            span = hi - lo + 1
            resident = group == "resident"
            attend = 0.7 if group == "staff" else 0.0
            for _ in range(unit.people.get(group, 0)):
                pid += 1
                bits = rng.getrandbits(40)
                if bits & 1:
                    gender, name = "male", male[(bits >> 1) % n_male]
                else:
                    gender, name = "female", female[(bits >> 1) % n_female]
                if resident:
                    birth = resident_births[(bits >> 20) % 1000]
                    out.children += birth > CHILD_BORN_AFTER
                else:
                    birth = lo + (bits >> 20) % span
                births[pid] = birth - 1900
                lines.append(
                    f"{pid}\t{name}\t{unit.id}\t{group}\t{birth}\t{gender}\t{prov:03d}{pid:09d}\t\\N\t1\t"
                    f"{NOW_TEXT}\t{NOW_TEXT}\n"
                )
                if attend and session and rng.random() < attend:
                    out.attendance.append(f"{session}\t{pid}\n")
                if len(lines) >= CHUNK:
                    yield "".join(lines).encode()
                    lines.clear()
    out.people = pid
    if lines:
        yield "".join(lines).encode()


# --- households and clans --------------------------------------------------------------------------------


@dataclass
class Collectives:
    """Households and clans by id (index id − 1), commune by commune: a commune's households, then its
    clans. Compact arrays: 1.4 million households at 5,000,000 people."""

    unit: array = field(default_factory=lambda: array("i"))  # type: ignore[type-arg]  # placed at
    kind: bytearray = field(default_factory=bytearray)  # 0 household, 1 clan
    number: array = field(default_factory=lambda: array("i"))  # type: ignore[type-arg]  # household no.
    members: array = field(default_factory=lambda: array("i"))  # type: ignore[type-arg]  # person ids
    member_end: array = field(default_factory=lambda: array("i"))  # type: ignore[type-arg]
    clan_households: array = field(default_factory=lambda: array("i"))  # type: ignore[type-arg]  # pairs
    clan_names: dict[int, str] = field(default_factory=dict)
    # commune id → (first household id, households, first clan id, clans)
    by_commune: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)

    @property
    def households(self) -> int:
        return len(self.kind) - self.clans

    @property
    def clans(self) -> int:
        return len(self.clan_names)


def _children(tree: Tree) -> dict[int, list[Unit]]:
    by_parent: dict[int, list[Unit]] = {}
    for unit in tree.units:
        if unit.parent_id is not None:
            by_parent.setdefault(unit.parent_id, []).append(unit)
    return by_parent


def build_collectives(tree: Tree, seed: int) -> Collectives:
    """Everyone in a household of 1–6 (open periods): the people of a commune's units, with a share of
    their province's own units (upper-secondary schools, departments, large firms) spread over its
    communes, shuffled and grouped, each household placed at one of the commune's villages (by residents);
    then the commune's clans, one per ~30 households, each of 5–60 of its households (~85 % of them)."""
    col = Collectives()
    ranges: dict[int, range] = {}
    pid = 0
    for unit in tree.units:
        n = sum(unit.people.values())
        if n:
            ranges[unit.id] = range(pid + 1, pid + n + 1)
            pid += n
    commune_of: dict[int, int] = {}
    for unit in tree.units:  # parents come before their children
        if unit.kind == "commune":
            commune_of[unit.id] = unit.id
        elif unit.parent_id in commune_of:
            commune_of[unit.id] = commune_of[unit.parent_id]
    by_parent = _children(tree)
    communes_of: dict[int, list[Unit]] = {}
    units_of: dict[int, list[Unit]] = {}
    for unit in tree.units:
        if unit.kind == "commune":
            communes_of.setdefault(unit.province, []).append(unit)
        if unit.id in ranges:
            units_of.setdefault(unit.province, []).append(unit)
    size_cum = list(itertools.accumulate(HOUSEHOLD_WEIGHTS))
    for province in (u for u in tree.units if u.kind == "province"):
        rng = random.Random(seed * 3_000_017 + province.id)
        communes = communes_of[province.province]
        pools: dict[int, list[int]] = {c.id: [] for c in communes}
        extra: list[int] = []
        for unit in units_of.get(province.province, []):
            target = pools[commune_of[unit.id]] if unit.id in commune_of else extra
            target.extend(ranges[unit.id])
        rng.shuffle(extra)
        picks = rng.choices(
            range(len(communes)), weights=[len(pools[c.id]) + 1 for c in communes], k=len(extra)
        )
        for person, k in zip(extra, picks, strict=True):
            pools[communes[k].id].append(person)
        for commune in communes:
            pool = pools.pop(commune.id)
            rng.shuffle(pool)
            villages = [u for u in by_parent.get(commune.id, []) if u.kind == "village"]
            village_cum = list(itertools.accumulate(v.people.get("resident", 0) + 1 for v in villages))
            numbers = dict.fromkeys((v.id for v in villages), 0)
            first = len(col.kind) + 1
            at = 0
            while at < len(pool):
                size = rng.choices(HOUSEHOLD_SIZES, cum_weights=size_cum)[0]
                village = rng.choices(villages, cum_weights=village_cum)[0]
                numbers[village.id] += 1
                col.unit.append(village.id)
                col.kind.append(0)
                col.number.append(numbers[village.id])
                col.members.extend(pool[at : at + size])
                col.member_end.append(len(col.members))
                at += size
            households = len(col.kind) + 1 - first
            first_clan = len(col.kind) + 1
            order = list(range(first, first + households))
            rng.shuffle(order)
            wanted = max(1, round(households / HOUSEHOLDS_PER_CLAN)) if households >= CLAN_SIZE[0] else 0
            at, used = 0, set()
            while len(col.kind) + 1 - first_clan < wanted and households - at >= CLAN_SIZE[0]:
                size = min(households - at, int(rng.triangular(*CLAN_SIZE)))
                clan_id = len(col.kind) + 1
                col.unit.append(commune.id)
                col.kind.append(1)
                col.number.append(0)
                col.member_end.append(len(col.members))
                name = f"Dòng họ {rng.choice(SURNAMES)} {rng.choice(MIDDLE['male'])}"
                name = name if name not in used else f"{name} (chi {clan_id - first_clan + 1})"
                used.add(name)
                col.clan_names[clan_id] = f"{name}, {commune.name}"
                for household in sorted(order[at : at + size]):
                    col.clan_households.extend((clan_id, household))
                at += size
            col.by_commune[commune.id] = (first, households, first_clan, len(col.kind) + 1 - first_clan)
    return col


def collectives_rows(col: Collectives, names: dict[int, str]) -> Iterator[bytes]:
    """COPY text rows of ``collectives`` (since always, still)."""
    lines: list[str] = []
    for i, unit_id in enumerate(col.unit):
        cid = i + 1
        if col.kind[i]:
            kind, code, name = "clan", f"DH{cid:07d}", col.clan_names[cid]
        else:
            kind, code, name = "household", f"HGD{cid:07d}", f"Hộ số {col.number[i]}, {names[unit_id]}"
        lines.append(f"{cid}\t{kind}\t{code}\t{name}\t{unit_id}\t\\N\t\\N\t\\N\t1\t{NOW_TEXT}\t{NOW_TEXT}\n")
        if len(lines) >= CHUNK:
            yield "".join(lines).encode()
            lines.clear()
    if lines:
        yield "".join(lines).encode()


def places_rows(col: Collectives) -> Iterator[bytes]:
    """COPY text rows of ``collective_places``: each placed where it is, since always (id = its id)."""
    for start in range(0, len(col.unit), CHUNK):
        part = col.unit[start : start + CHUNK]
        yield "".join(f"{start + k + 1}\t{start + k + 1}\t{u}\n" for k, u in enumerate(part)).encode()


def members_rows(col: Collectives) -> Iterator[bytes]:
    """COPY text rows of ``household_members`` (open periods)."""
    lines: list[str] = []
    begin = 0
    for i, end in enumerate(col.member_end):
        if col.kind[i]:
            continue
        household = i + 1
        for k in range(begin, end):
            lines.append(f"{k + 1}\t{household}\t{col.members[k]}\n")
        begin = end
        if len(lines) >= CHUNK:
            yield "".join(lines).encode()
            lines.clear()
    if lines:
        yield "".join(lines).encode()


def clan_rows(col: Collectives) -> Iterator[bytes]:
    """COPY text rows of ``clan_households`` (open periods)."""
    pairs = col.clan_households
    for start in range(0, len(pairs) // 2, CHUNK):
        yield "".join(
            f"{k + 1}\t{pairs[2 * k]}\t{pairs[2 * k + 1]}\n"
            for k in range(start, min(start + CHUNK, len(pairs) // 2))
        ).encode()


# --- evaluations ---------------------------------------------------------------------------------------

EVALUATION_COLUMNS = [
    "id",
    "title",
    "person_id",
    "collective_id",
    "subject_unit_id",
    "org_unit_id",
    "year",
    "criteria_set_id",
    "status",
    "total_halves",
    "passed",
    "failing_indicators",
    "declared_digital_level",
    "reviewed_digital_level",
    "digital_level",
    "grade",
    "decision_id",
    "return_reason",
    "created_by",
    "submitted_at",
    "reviewed_at",
    "version",
    "created_at",
    "updated_at",
]
STAMPS = {
    "submitted": [f"2025-{m:02d}-{d:02d} 08:{d:02d}:00+00" for m in (9, 10, 11) for d in range(1, 29)],
    "reviewed": [f"2025-{m:02d}-{d:02d} 14:{d:02d}:00+00" for m in (11, 12) for d in range(1, 29)],
}
VERSIONS = {"draft": 2, "withdrawn": 3, "submitted": 3, "returned": 4, "in_review": 4}
LEVELS = ("none", "basic", "proficient")
# Share of the evaluations of each status whose person declared a digital level, and whose assessor
# confirmed or changed it (the result of a completed review is the confirmed level, else the declared one;
# "none" without accepted evidence on the digital indicator, ~3 %).
DECLARED = {"draft": 0.5, "withdrawn": 0.8}  # else 0.97
REVIEWED = {"in_review": 0.4, "reviewed_passed": 0.9, "reviewed_failed": 0.9, "recognised": 0.9}  # else 0


def _digital(
    rng: random.Random, status: str, p_prof: float, p_basic: float
) -> tuple[str | None, str | None, str | None]:
    """(declared, reviewed, result) digital levels of one personal evaluation: drawn from the unit's
    propensities, not from the scores."""
    y = rng.random()
    declared: str | None = "proficient" if y < p_prof else "basic" if y < p_prof + p_basic else "none"
    if rng.random() >= DECLARED.get(status, 0.97):
        declared = None
    reviewed = None
    if declared is not None and rng.random() < REVIEWED.get(status, 0.0):
        z, i = rng.random(), LEVELS.index(declared)
        reviewed = LEVELS[max(0, i - 1)] if z < 0.12 else LEVELS[min(2, i + 1)] if z < 0.15 else declared
    result = None
    if status in ("recognised", "reviewed_passed", "reviewed_failed"):
        claimed = reviewed or declared
        result = "none" if claimed is None or rng.random() < 0.03 else claimed
    return declared, reviewed, result


def _decide(out: Generated, unit: Unit, rng: random.Random, rows: list[list], tag: str) -> None:  # type: ignore[type-arg]
    """One decision at ``unit`` recognising the rows (``[id, _, status, _, _, decision]``) that are
    ``recognised``; one decision in ``REVOKE_EVERY`` is revoked (its rows back to ``reviewed``, passed, as
    the app leaves them) and half of them re-recognised by a replacement decision."""
    recognised = [r for r in rows if r[2] == "recognised"]
    if not recognised:
        return
    out.decisions_made += 1
    decision_id = len(out.decisions) + 1
    signed = date(2025, 12, rng.randint(10, 28))
    number = f"{rng.randint(1, 300)}/QĐ-{tag or unit.code}"
    revoked = out.decisions_made % REVOKE_EVERY == 7
    reason = "Phát hiện sai sót trong hồ sơ minh chứng; ban hành quyết định thay thế."
    out.decisions.append(
        (
            decision_id,
            unit.id,
            YEAR,
            number,
            signed,
            None,
            "revoked" if revoked else "active",
            NOW if revoked else None,
            None,
            reason if revoked else None,
            NOW,
        )
    )
    out.items += [f"{decision_id}\t{r[0]}\n" for r in recognised]
    if not revoked:
        for r in recognised:
            r[5] = decision_id
        return
    for r in recognised:
        r[2] = "reviewed_passed"
    again = recognised[::2]
    decision_id += 1
    out.decisions.append(
        (decision_id, unit.id, YEAR, f"{number}-TT", signed, None, "active", None, None, None, NOW)
    )
    out.items += [f"{decision_id}\t{r[0]}\n" for r in again]
    for r in again:
        r[2], r[5] = "recognised", decision_id


def _evaluation_line(
    eid: int,
    title: str,
    subject: tuple[str, str, str],  # person_id, collective_id, subject_unit_id (COPY text)
    unit_id: int,
    set_id: int,
    status: str,
    passed: bool | None,
    levels: tuple[str | None, str | None, str | None],
    decision: int | None,
    bits: int,
) -> str:
    sub = (
        STAMPS["submitted"][bits % len(STAMPS["submitted"])] if status not in ("draft", "withdrawn") else None
    )
    rev = STAMPS["reviewed"][(bits >> 8) % len(STAMPS["reviewed"])] if passed is not None else None
    grade = None
    if title == "learning_citizen":
        if passed:
            total, failing = 160 + (bits >> 16) % 41, "[]"
        elif passed is False:
            total, failing = 90 + (bits >> 16) % 80, "[6]" if bits & 2 else "[6, 7]"
        else:
            total, failing = None, None
    elif title == "learning_unit":  # pass 96 of 100, graded (TT 24/2023): level 2 at 100
        if passed:
            total, failing = 192 + (bits >> 16) % 9, "[]"
            grade = "muc_2" if total == 200 else "muc_1"
        elif passed is False:
            total, failing = 150 + (bits >> 16) % 41, "[]"
        else:
            total, failing = None, None
    elif passed:  # families, clans, communities: pass 80 of 100, no floor per indicator
        total, failing = 160 + (bits >> 16) % 41, "[]"
    elif passed is False:
        total, failing = 100 + (bits >> 16) % 59, "[]"
    else:
        total, failing = None, None
    real = "reviewed" if status.startswith("reviewed") else status
    return (
        "\t".join(
            (
                str(eid),
                title,
                *subject,
                str(unit_id),
                str(YEAR),
                str(set_id),
                real,
                _n(total),
                "\\N" if passed is None else ("t" if passed else "f"),
                _n(failing),
                _n(levels[0]),
                _n(levels[1]),
                _n(levels[2]),
                _n(grade),
                _n(decision),
                "Bổ sung minh chứng chỉ tiêu 5." if real == "returned" else "\\N",
                "\\N",
                _n(sub),
                _n(rev),
                str(VERSIONS.get(real, 5)),
                NOW_TEXT,
                NOW_TEXT,
            )
        )
        + "\n"
    )


def _passed(status: str) -> bool | None:
    return (
        True
        if status in ("recognised", "reviewed_passed")
        else False
        if status == "reviewed_failed"
        else None
    )


def evaluation_rows(tree: Tree, seed: int, criteria: dict[str, int], out: Generated) -> Iterator[bytes]:
    """COPY text rows of the personal ``evaluations`` (everyone but residents under 15); collects decisions
    and decision items."""
    others = _status_table()
    births = out.births
    lines: list[str] = []
    counts: dict[str, int] = {}
    levels: dict[str, dict[str, int]] = {"declared": {}, "reviewed": {}, "result": {}}
    eid = 0
    pid = 0
    for unit in tree.units:
        if not unit.people:
            continue
        rng = random.Random(seed * 7_000_003 + unit.id)
        lagging = rng.random() < LAGGING_UNITS
        p_prof, p_basic = rng.uniform(0.15, 0.55), rng.uniform(0.25, 0.5)
        # [eid, group, status, levels, passed, decision, person] for everyone evaluated, then decisions.
        rows: list[list] = []  # type: ignore[type-arg]
        for group in GROUP_ORDER:
            rate = 0.0 if lagging else min(0.95, max(0.05, RECOGNITION[group] + rng.uniform(-0.2, 0.2)))
            for _ in range(unit.people.get(group, 0)):
                pid += 1
                born = births[pid] + 1900
                if group == "resident" and born > CHILD_BORN_AFTER:
                    continue
                eid += 1
                status = "recognised" if rng.random() < rate else others[int(rng.random() * 1000)]
                # Older people declare proficiency less often, pupils more often.
                prof = p_prof * (0.4 if born < 1965 else 1.2 if group == "student" else 1.0)
                rows.append(
                    [eid, group, status, _digital(rng, status, prof, p_basic), _passed(status), None, pid]
                )
        _decide(out, unit, rng, rows, "")
        for e, group, status, lv, passed, decision, person in rows:
            counts[status] = counts.get(status, 0) + 1
            for key, level in zip(("declared", "reviewed", "result"), lv, strict=True):
                levels[key][str(level)] = levels[key].get(str(level), 0) + 1
            lines.append(
                _evaluation_line(
                    e,
                    "learning_citizen",
                    (str(person), "\\N", "\\N"),
                    unit.id,
                    criteria[group],
                    status,
                    passed,
                    lv,
                    decision,
                    rng.getrandbits(32),
                )
            )
            if len(lines) >= CHUNK:
                yield "".join(lines).encode()
                lines.clear()
    out.evaluations = eid
    out.statuses = counts
    out.levels = levels
    if lines:
        yield "".join(lines).encode()


def collective_evaluation_rows(
    tree: Tree, seed: int, col: Collectives, titles: dict[str, int], out: Generated
) -> Iterator[bytes]:
    """COPY text rows of the collective ``evaluations`` of 2025 (ids after the personal ones): in each
    commune its households (learning family), clans (learning clan), villages (learning community) and
    schools, agencies and enterprises (learning unit), recognised by the commune's decisions (one per
    title); the province's own schools, departments and firms recognised by the province's."""
    others = _status_table()
    by_parent = _children(tree)
    lines: list[str] = []
    counts: dict[str, dict[str, int]] = {title: {} for title in TITLE_CODES}
    eid = out.evaluations
    for unit in tree.units:
        if unit.kind not in ("commune", "province"):
            continue
        kids = by_parent.get(unit.id, [])
        units = [(u.id, u.id) for u in kids if u.kind in UNIT_TITLE_KINDS]
        if unit.kind == "commune":
            first, households, first_clan, clans = col.by_commune[unit.id]
            subjects = {
                "learning_family": [(h, col.unit[h - 1]) for h in range(first, first + households)],
                "learning_clan": [(c, unit.id) for c in range(first_clan, first_clan + clans)],
                "learning_community": [(u.id, u.id) for u in kids if u.kind == "village"],
                "learning_unit": units,
            }
        else:
            subjects = {"learning_unit": units}
        rng = random.Random(seed * 11_000_027 + unit.id)
        lagging = rng.random() < LAGGING_UNITS
        for title, found in subjects.items():
            evaluated, recognised, tag = COLLECTIVE_RATES[title]
            rate = min(0.98, max(0.05, evaluated + rng.uniform(-0.2, 0.2)))
            rec = 0.0 if lagging else min(0.98, max(0.05, recognised + rng.uniform(-0.15, 0.15)))
            # [eid, subject, status, where, passed, decision]
            rows: list[list] = []  # type: ignore[type-arg]
            for subject, where in found:
                if rng.random() >= rate:
                    continue
                eid += 1
                status = "recognised" if rng.random() < rec else others[int(rng.random() * 1000)]
                rows.append([eid, subject, status, where, _passed(status), None])
            _decide(out, unit, rng, rows, f"UBND-{tag}")
            on_unit = title in ("learning_community", "learning_unit")
            for e, subject, status, where, passed, decision in rows:
                counts[title][status] = counts[title].get(status, 0) + 1
                ids = ("\\N", "\\N", str(subject)) if on_unit else ("\\N", str(subject), "\\N")
                lines.append(
                    _evaluation_line(
                        e,
                        title,
                        ids,
                        where,
                        titles[title],
                        status,
                        passed,
                        (None, None, None),
                        decision,
                        rng.getrandbits(32),
                    )
                )
                if len(lines) >= CHUNK:
                    yield "".join(lines).encode()
                    lines.clear()
    out.evaluations = eid
    out.collective_statuses = counts
    if lines:
        yield "".join(lines).encode()


def _n(value: object) -> str:
    return "\\N" if value is None else str(value)


async def _aiter(rows: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in rows:
        yield chunk


# ---------------------------------------------------------------------------------------------- plans

NATIONAL_TARGETS = {  # 677/QĐ-TTg (DOMAIN.md §6): metric → (2025, 2030)
    "adults_recognised_pct": (40, 60),
    "staff_recognised_pct": (60, 80),
    "digital_skills_pct": (70, 90),
    "digital_proficient_pct": (60, 80),
    "trained_pct": (100, 100),
}
NINH_BINH_TARGETS = {
    "adults_recognised_pct": (65, 70),
    "staff_recognised_pct": (75, 85),
    "digital_skills_pct": (75, 90),
    "digital_proficient_pct": (65, 80),
}
PLANNED_PROVINCES = (
    "Ninh Bình",
    "Hà Nội",
    "Hồ Chí Minh",
    "Thanh Hóa",
    "Nghệ An",
    "Quảng Ngãi",
    "Hải Phòng",
    "Đà Nẵng",
    "Gia Lai",
    "Cần Thơ",
    "Lâm Đồng",
    "Phú Thọ",
)


def build_plans(tree: Tree, rng: random.Random) -> tuple[list[tuple], list[tuple]]:  # type: ignore[type-arg]
    plans: list[tuple] = []  # type: ignore[type-arg]
    targets: list[tuple] = []  # type: ignore[type-arg]

    def plan(unit: Unit, title: str, doc: str, issued: date, parent: int | None, values: dict) -> int:  # type: ignore[type-arg]
        plan_id = len(plans) + 1
        plans.append((plan_id, unit.id, title, doc, issued, 2021, 2030, parent, None, None, 1, NOW, NOW))
        for metric, (v2025, v2030) in values.items():
            for year, value in ((2025, v2025), (2030, v2030)):
                targets.append((len(targets) + 1, plan_id, metric, year, value))
        return plan_id

    nation = tree.units[0]
    national = plan(
        nation,
        "Chương trình “Xây dựng mô hình Công dân học tập giai đoạn 2021 - 2030”",
        "677/QĐ-TTg",
        date(2022, 6, 3),
        None,
        NATIONAL_TARGETS,
    )
    by_parent: dict[int, list[Unit]] = {}
    for unit in tree.units:
        if unit.parent_id is not None:
            by_parent.setdefault(unit.parent_id, []).append(unit)
    for unit in tree.units:
        if unit.kind != "province":
            continue
        pname = PROVINCES[unit.province - 1][0]
        if pname not in PLANNED_PROVINCES:
            continue
        values = (
            NINH_BINH_TARGETS
            if pname == "Ninh Bình"
            else {
                m: (min(100, v + rng.choice((0, 5, 10))), max(v2, min(100, v2 + 5)))
                for m, (v, v2) in NINH_BINH_TARGETS.items()
            }
        )
        province_plan = plan(
            unit,
            f"Kế hoạch thực hiện Chương trình CDHT – {unit.name}",
            f"{rng.randint(50, 200)}/KH-UBND",
            date(2022, rng.randint(7, 12), rng.randint(1, 28)),
            national,
            values,
        )
        stack = list(by_parent.get(unit.id, []))
        while stack:
            child = stack.pop()
            if child.kind == "district":
                plan(
                    child,
                    f"Kế hoạch CDHT – {child.name}",
                    f"{rng.randint(10, 99)}/KH-UBND",
                    date(2022, 9, 15),
                    province_plan,
                    NATIONAL_TARGETS,
                )
                stack += by_parent.get(child.id, [])
            elif child.kind == "commune" and rng.random() < 0.05:
                plan(
                    child,
                    f"Kế hoạch CDHT – {child.name}",
                    f"{rng.randint(1, 99)}/KH-UBND",
                    date(2023, 1, 10),
                    province_plan,
                    {m: (min(100, v + 5), min(100, v2 + 5)) for m, (v, v2) in values.items()},
                )
            elif child.kind == "school" and child.code.split("-")[1].startswith("T") and rng.random() < 0.1:
                plan(
                    child,
                    f"Kế hoạch CDHT – {child.name}",
                    f"{rng.randint(1, 99)}/KH-THPT",
                    date(2023, 2, 1),
                    province_plan,
                    {
                        "staff_recognised_pct": (100, 100),
                        "digital_skills_pct": (100, 100),
                        "digital_proficient_pct": (70, 100),
                    },
                )
    return plans, targets


# ---------------------------------------------------------------------------------------------- loading


class Steps:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        print(f"→ {name} …", flush=True)
        t0 = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - t0, 2)
        print(f"  {name}: {self.timings[name]:.1f} s", flush=True)

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self.started, 1)


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


async def recreate_database(url: str) -> None:
    parts = urlsplit(url)
    name = _database_name(url)
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(maintenance)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _constraints(
    conn: asyncpg.Connection,  # type: ignore[type-arg]
    tables: tuple[str, ...] = BIG_TABLES,
) -> tuple[list, list, list]:  # type: ignore[type-arg]
    """Keys and indexes of ``tables`` (and foreign keys pointing at them), to drop and rebuild."""
    keys = await conn.fetch(
        """
        SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def,
               contype::text AS contype
        FROM pg_constraint
        WHERE contype IN ('p', 'u', 'f')
          AND (conrelid = ANY($1::regclass[]) OR (contype = 'f' AND confrelid = ANY($1::regclass[])))
        ORDER BY conname
        """,
        list(tables),
    )
    indexes = await conn.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
        FROM pg_index i
        WHERE i.indrelid = ANY($1::regclass[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                          WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
        ORDER BY 1
        """,
        list(tables),
    )
    return (
        [k for k in keys if k["contype"] in ("p", "u")],
        list(indexes),
        [k for k in keys if k["contype"] == "f"],
    )


async def generate(args: argparse.Namespace) -> None:
    steps = Steps()
    url: str = args.url
    name = _database_name(url)
    if not name.startswith("cdht_bench") and not args.recreate:
        raise SystemExit(f"refusing to recreate {name!r}: pass --recreate (it is dropped first)")
    rng = random.Random(args.seed)

    with steps.step("create and migrate the database"):
        await recreate_database(url)
        await asyncio.to_thread(migrate, Settings(database_url=url))

    engine = make_engine(url, pool=False)
    with steps.step("criteria sets (app.criteria.loader)"):
        async with unit_of_work(make_sessionmaker(engine)) as session:
            await load_criteria(session, SEEDS_DIR / "criteria")
            rows = await session.execute(
                text("SELECT code, id FROM criteria_sets WHERE code = ANY(:codes) ORDER BY version"),
                {"codes": [*CRITERIA_CODES.values(), *TITLE_CODES.values()]},
            )
            by_code = dict(rows.all())
            criteria = {group: by_code[code] for group, code in CRITERIA_CODES.items()}
            titles = {title: by_code[code] for title, code in TITLE_CODES.items()}
            await session.execute(
                text("UPDATE criteria_sets SET frozen = true WHERE id = ANY(:ids)"),
                {"ids": [*criteria.values(), *titles.values()]},
            )

    with steps.step("build the tree in memory"):
        tree = build_tree(rng)
        allocate_people(tree, args.people)
    kinds: dict[str, int] = {}
    for unit in tree.units:
        kinds[unit.kind] = kinds.get(unit.kind, 0) + 1
    print(f"  {len(tree.units):,} units: " + ", ".join(f"{k} {n:,}" for k, n in kinds.items()), flush=True)

    conn = await asyncpg.connect(url)
    await conn.execute(
        "SET maintenance_work_mem = '1GB'; SET work_mem = '256MB'; SET synchronous_commit = off"
    )
    out = Generated()
    try:
        with steps.step("org_units (COPY), org_unit_closure (SQL per depth), org_unit_links"):
            await conn.copy_records_to_table(
                "org_units",
                records=[
                    (u.id, u.name, u.kind, u.code, u.parent_id, u.depth, None, None, 1, NOW, NOW)
                    for u in tree.units
                ],
                columns=[
                    "id",
                    "name",
                    "kind",
                    "code",
                    "parent_id",
                    "depth",
                    "valid_from",
                    "valid_to",
                    "version",
                    "created_at",
                    "updated_at",
                ],
            )
            await conn.execute(
                "INSERT INTO org_unit_closure (ancestor_id, descendant_id, depth) "
                "SELECT id, id, 0 FROM org_units"
            )
            for depth in range(1, max(u.depth for u in tree.units) + 1):
                await conn.execute(
                    """
                    INSERT INTO org_unit_closure (ancestor_id, descendant_id, depth)
                    SELECT c.ancestor_id, u.id, c.depth + 1
                    FROM org_units u JOIN org_unit_closure c ON c.descendant_id = u.parent_id
                    WHERE u.depth = $1
                    """,
                    depth,
                )
            # The closure through time: every pair open (since always, still). Its foreign keys and
            # indexes are dropped for the fill and rebuilt (validated) after: checking two foreign keys row
            # by row took most of the time.
            _, link_indexes, link_fkeys = await _constraints(conn, ("org_unit_links",))
            for fk in link_fkeys:
                await conn.execute(f'ALTER TABLE {fk["tbl"]} DROP CONSTRAINT "{fk["conname"]}"')
            for index in link_indexes:
                await conn.execute(f"DROP INDEX {index['name']}")
            await conn.execute(
                "INSERT INTO org_unit_links (ancestor_id, descendant_id, depth) "
                "SELECT ancestor_id, descendant_id, depth FROM org_unit_closure ORDER BY 2, 1"
            )
            for index in link_indexes:
                await conn.execute(index["def"])
            for fk in link_fkeys:
                await conn.execute(f'ALTER TABLE {fk["tbl"]} ADD CONSTRAINT "{fk["conname"]}" {fk["def"]}')
            sessions = []
            for unit in tree.units:
                if unit.kind in ("province", "commune"):
                    sid = len(sessions) + 1
                    out.sessions[unit.id] = sid
                    held = date(2025, rng.randint(2, 5), rng.randint(1, 28))
                    sessions.append(
                        (
                            sid,
                            unit.id,
                            f"Hội nghị quán triệt tiêu chí Công dân học tập năm {YEAR}",
                            held,
                            YEAR,
                            None,
                            1,
                            NOW,
                            NOW,
                        )
                    )
            await conn.copy_records_to_table(
                "training_sessions",
                records=sessions,
                columns=[
                    "id",
                    "org_unit_id",
                    "title",
                    "held_on",
                    "year",
                    "created_by",
                    "version",
                    "created_at",
                    "updated_at",
                ],
            )

        with steps.step("drop keys and indexes of the big tables"):
            keys, indexes, fkeys = await _constraints(conn)
            for fk in fkeys:
                await conn.execute(f'ALTER TABLE {fk["tbl"]} DROP CONSTRAINT "{fk["conname"]}"')
            for key in keys:
                await conn.execute(f'ALTER TABLE {key["tbl"]} DROP CONSTRAINT "{key["conname"]}"')
            for index in indexes:
                await conn.execute(f"DROP INDEX {index['name']}")

        async with conn.transaction():
            await conn.execute("TRUNCATE " + ", ".join(BIG_TABLES))
            with steps.step(f"people (COPY FREEZE, {args.people:,} rows)"):
                await conn.copy_to_table(
                    "people",
                    source=_aiter(people_rows(tree, args.seed, out)),
                    columns=[
                        "id",
                        "full_name",
                        "org_unit_id",
                        "grp",
                        "birth_year",
                        "gender",
                        "citizen_id",
                        "user_id",
                        "version",
                        "created_at",
                        "updated_at",
                    ],
                    format="text",
                    freeze=True,
                )
            with steps.step(f"memberships (INSERT … SELECT from people, {args.people:,} rows)"):
                await conn.execute(
                    "INSERT INTO memberships (person_id, org_unit_id, grp) "
                    "SELECT id, org_unit_id, grp FROM people ORDER BY id"
                )
            with steps.step("households and clans (in memory)"):
                col = build_collectives(tree, args.seed)
            with steps.step(
                f"collectives, places, household members, clan households (COPY FREEZE, "
                f"{col.households:,} households, {col.clans:,} clans)"
            ):
                names = {u.id: u.name for u in tree.units if u.kind == "village"}
                for table, rows, columns in (
                    (
                        "collectives",
                        collectives_rows(col, names),
                        [
                            "id",
                            "kind",
                            "code",
                            "name",
                            "org_unit_id",
                            "valid_from",
                            "valid_to",
                            "created_by",
                            "version",
                            "created_at",
                            "updated_at",
                        ],
                    ),
                    ("collective_places", places_rows(col), ["id", "collective_id", "org_unit_id"]),
                    ("household_members", members_rows(col), ["id", "household_id", "person_id"]),
                    ("clan_households", clan_rows(col), ["id", "clan_id", "household_id"]),
                ):
                    await conn.copy_to_table(
                        table, source=_aiter(rows), columns=columns, format="text", freeze=True
                    )
            with steps.step(f"personal evaluations (COPY FREEZE, {args.people:,} people)"):
                await conn.copy_to_table(
                    "evaluations",
                    source=_aiter(evaluation_rows(tree, args.seed, criteria, out)),
                    columns=EVALUATION_COLUMNS,
                    format="text",
                    freeze=True,
                )
            personal = out.evaluations
            with steps.step("collective evaluations (COPY FREEZE)"):
                await conn.copy_to_table(
                    "evaluations",
                    source=_aiter(collective_evaluation_rows(tree, args.seed, col, titles, out)),
                    columns=EVALUATION_COLUMNS,
                    format="text",
                    freeze=True,
                )
            with steps.step("decisions, decision items, attendance (COPY FREEZE)"):
                await conn.copy_records_to_table(
                    "recognition_decisions",
                    records=out.decisions,
                    columns=[
                        "id",
                        "org_unit_id",
                        "year",
                        "number",
                        "signed_on",
                        "signed_by",
                        "status",
                        "revoked_at",
                        "revoked_by",
                        "revoke_reason",
                        "created_at",
                    ],
                )
                for table, lines, columns in (
                    ("recognition_decision_items", out.items, ["decision_id", "evaluation_id"]),
                    ("training_attendance", out.attendance, ["session_id", "person_id"]),
                ):
                    chunks = ("".join(lines[i : i + CHUNK]).encode() for i in range(0, len(lines), CHUNK))
                    await conn.copy_to_table(
                        table, source=_aiter(chunks), columns=columns, format="text", freeze=True
                    )

        with steps.step("rebuild keys, indexes and foreign keys (validated)"):
            for key in keys:
                await conn.execute(f'ALTER TABLE {key["tbl"]} ADD CONSTRAINT "{key["conname"]}" {key["def"]}')
            for index in indexes:
                await conn.execute(index["def"])
            for fk in fkeys:
                await conn.execute(f'ALTER TABLE {fk["tbl"]} ADD CONSTRAINT "{fk["conname"]}" {fk["def"]}')

        with steps.step("plans and targets"):
            plans, targets = build_plans(tree, rng)
            await conn.copy_records_to_table(
                "plans",
                records=plans,
                columns=[
                    "id",
                    "org_unit_id",
                    "title",
                    "document_no",
                    "issued_on",
                    "start_year",
                    "end_year",
                    "parent_plan_id",
                    "key",
                    "created_by",
                    "version",
                    "created_at",
                    "updated_at",
                ],
            )
            await conn.copy_records_to_table(
                "plan_targets", records=targets, columns=["id", "plan_id", "metric", "year", "value"]
            )
            for table in (
                "org_units",
                "people",
                "evaluations",
                "recognition_decisions",
                "plans",
                "plan_targets",
                "training_sessions",
                "memberships",
                "collectives",
                "collective_places",
                "household_members",
                "clan_households",
            ):
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                )

        with steps.step("ANALYZE (statistics for the rebuild's plan)"):
            # Without statistics on the fresh memberships and org_unit_links, PostgreSQL planned the
            # rebuild's fact rows as a cross join of org_units and every evaluation (tens of GB of
            # temporary files, no end in sight at 5,000,000 people).
            await conn.execute("ANALYZE")

        with steps.step("counters (app.aggregates.counters.rebuild)"):
            async with unit_of_work(make_sessionmaker(engine)) as session:
                await session.execute(text("SET LOCAL work_mem = '512MB'"))
                await counters.rebuild(session)

        with steps.step("VACUUM ANALYZE"):
            await conn.execute("VACUUM (ANALYZE)")

        sizes = {
            "units": len(tree.units),
            "units_by_kind": kinds,
            "closure_rows": await conn.fetchval("SELECT count(*) FROM org_unit_closure"),
            "link_rows": await conn.fetchval("SELECT count(*) FROM org_unit_links"),
            "memberships": await conn.fetchval("SELECT count(*) FROM memberships"),
            "people": out.people,
            "residents_under_15": out.children,
            "households": col.households,
            "clans": col.clans,
            "household_members": len(col.members),
            "clan_households": len(col.clan_households) // 2,
            "evaluations": out.evaluations,
            "personal_evaluations": personal,
            "collective_evaluations": out.evaluations - personal,
            "evaluation_statuses": dict(sorted(out.statuses.items())),
            "digital_levels": out.levels,
            "collective_statuses": {t: dict(sorted(c.items())) for t, c in out.collective_statuses.items()},
            "decisions": len(out.decisions),
            "revoked_decisions": sum(1 for d in out.decisions if d[6] == "revoked"),
            "decision_items": len(out.items),
            "training_sessions": len(out.sessions),
            "attendance": len(out.attendance),
            "plans": len(plans),
            "targets": len(targets),
            "counter_rows": await conn.fetchval("SELECT count(*) FROM aggregate_counts"),
            "database_size": await conn.fetchval(
                "SELECT pg_size_pretty(pg_database_size(current_database()))"
            ),
        }
        summary = {
            "command": f"bench/generate_national.py --people {args.people} --seed {args.seed}"
            + (f" --url {url}" if url != DEFAULT_URL else ""),
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": steps.total,
            "steps": steps.timings,
            "sizes": sizes,
        }
        await conn.execute(f'COMMENT ON DATABASE "{name}" IS $json${json.dumps(summary)}$json$')
    finally:
        await conn.close()
        await engine.dispose()
    print(json.dumps(sizes, indent=2, ensure_ascii=False))
    print(f"done in {steps.total:.1f} s: {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"PostgreSQL URL (default {DEFAULT_URL})")
    parser.add_argument("--people", type=int, default=5_000_000, help="number of people (default 5,000,000)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument(
        "--recreate",
        action="store_true",
        help="allow dropping a database whose name does not start with cdht_bench",
    )
    args = parser.parse_args()
    asyncio.run(generate(args))


if __name__ == "__main__":
    main()
