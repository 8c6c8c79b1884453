"""The demo's collective titles (Decision 387/QĐ-TTg): villages under some communes, residents created
household by household (children included: "adults" is not "residents"), clans of a commune's households,
dated from the programme's start on the 2024 tree (the 2025 reform moves them as it moves people); and each
year's evaluations of households, clans, villages (learning community) and schools or agencies (learning
unit) through the API's services, with scores, evidence and the decisions of the level that signs them:
the commune for families, clans and communities, the district or province above a learning unit.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.scope import Subject
from app.collectives import repository as collectives_repo
from app.collectives import service as collectives
from app.collectives.models import Collective, CollectiveKind, HouseholdMember
from app.collectives.repository import CLAN_HOUSEHOLDS
from app.collectives.schemas import ClanCreate, HouseholdCreate
from app.core.dates import today
from app.criteria import repository as criteria_repo
from app.demo_evaluations import (
    ADULT_AGE,
    CLOSED_YEAR_MIX,
    Committee,
    Mix,
    committee,
    count_statuses,
    drive,
    recognise,
    self_assess,
    signing_units,
    statuses,
)
from app.evaluations import service as evaluations
from app.evaluations.models import Evaluation, Status, Title
from app.evaluations.schemas import EvaluationCreate, EvaluationRead, ScoreInput
from app.evaluations.storage import EvidenceStore
from app.orgs import repository as orgs_repo
from app.orgs.models import OrgKind, OrgUnit
from app.people import service as people
from app.people.models import Gender, Group, Person
from app.people.schemas import PersonCreate

# Units the collective titles need beside the seed plans' ones (code, name, kind, parent code), on the 2024
# tree. Villages are numbered, as many are; these and the three units below are illustrative, not official.
UNITS: list[tuple[str, str, OrgKind, str]] = [
    ("23488-T10", "Thôn 10", OrgKind.VILLAGE, "23488"),
    ("23488-T11", "Thôn 11", OrgKind.VILLAGE, "23488"),
    ("23488-T12", "Thôn 12", OrgKind.VILLAGE, "23488"),
    ("23497-T1", "Thôn 1", OrgKind.VILLAGE, "23497"),
    ("23497-T2", "Thôn 2", OrgKind.VILLAGE, "23497"),
    ("14329-TDP1", "Tổ dân phố 1", OrgKind.VILLAGE, "14329"),
    ("14329-TDP2", "Tổ dân phố 2", OrgKind.VILLAGE, "14329"),
    ("23497-MN", "Trường Mầm non Tân Lập", OrgKind.SCHOOL, "23497"),
    ("23488-TH", "Trường Tiểu học Đăk Ruồng", OrgKind.SCHOOL, "23488"),
    ("37-HKH", "Hội Khuyến học tỉnh Ninh Bình", OrgKind.AGENCY, "37"),
]
# Where residents live, in how many households: the villages, and one commune without villages recorded.
HOMES: list[tuple[str, int]] = [
    ("23488-T10", 4),
    ("23488-T11", 3),
    ("23488-T12", 3),
    ("23497-T1", 3),
    ("23497-T2", 3),
    ("23494", 4),
    ("14329-TDP1", 4),
    ("14329-TDP2", 4),
]
HOUSEHOLD_SIZES = (1, 2, 3, 4, 5, 6)
SIZE_WEIGHTS = (8, 15, 22, 28, 17, 10)  # about 3.6 people a household
CLANS_PER_COMMUNE = 2
LAST_YEAR = 2025  # the demo's last year, for the summary's count of children

FAMILY_NAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ"]
MIDDLE = {Gender.MALE: ["Văn", "Đức", "Minh", "Quang"], Gender.FEMALE: ["Thị", "Thu", "Ngọc", "Thanh"]}
GIVEN = {
    Gender.MALE: ["Nam", "Hùng", "Dũng", "Tuấn", "Hải", "Sơn", "Long", "Phúc", "Bình"],
    Gender.FEMALE: ["Hoa", "Lan", "Mai", "Hương", "Linh", "Trang", "Phương", "Hà", "Yến"],
}

Quality = Literal["muc_2", "muc_1", "pass", "fail"]
Plan = list[tuple[str, Status, Quality]]
# Villages as learning communities (Cộng đồng học tập) and units as learning units (Đơn vị học tập), by
# year: (unit code, target status, how it scores). A learning unit's "muc_1"/"muc_2" is its TT 24/2023
# level; "fail" misses a level-1 indicator.
COMMUNITIES: dict[int, Plan] = {
    2024: [
        ("23488-T10", Status.RECOGNISED, "pass"),
        ("23488-T11", Status.REVIEWED, "fail"),
        ("23497-T1", Status.REVIEWED, "fail"),
        ("14329-TDP1", Status.RECOGNISED, "pass"),
    ],
    2025: [
        ("23488-T10", Status.RECOGNISED, "pass"),
        ("23488-T11", Status.REVIEWED, "fail"),
        ("23497-T1", Status.RECOGNISED, "pass"),
        ("23497-T2", Status.SUBMITTED, "pass"),
        ("14329-TDP1", Status.RECOGNISED, "pass"),
        ("14329-TDP2", Status.REVIEWED, "pass"),  # passed; the ward has not signed yet
    ],
}
LEARNING_UNITS: dict[int, Plan] = {
    2024: [
        ("01-278-MN-TAMHUNGA", Status.RECOGNISED, "muc_1"),
        ("37-HOALU-THCS", Status.RECOGNISED, "muc_1"),
        ("31-316-MN-THANHLUONG", Status.RECOGNISED, "muc_1"),
        ("23497-MN", Status.REVIEWED, "fail"),
    ],
    2025: [
        ("01-278-MN-TAMHUNGA", Status.RECOGNISED, "muc_1"),
        ("37-HOALU-THCS", Status.RECOGNISED, "muc_2"),
        ("37-HKH", Status.REVIEWED, "muc_1"),  # passed; the province has not signed yet
        ("23497-MN", Status.RECOGNISED, "muc_1"),
        ("23488-TH", Status.REVIEWED, "fail"),
        ("66-THPT-NCT", Status.SUBMITTED, "muc_1"),
        ("31-316-MN-THANHLUONG", Status.IN_REVIEW, "muc_1"),
    ],
}
# Households and clans: most recognised, some only reviewed (about half of those failed), a few pending.
HOUSEHOLD_MIX: Mix = [(Status.RECOGNISED, 0.6), (Status.REVIEWED, 0.15), (Status.SUBMITTED, 0.15)]
CLAN_MIX: Mix = [(Status.RECOGNISED, 0.6), (Status.REVIEWED, 0.2)]
# Decision number series of each title, so a commune's decisions of one year keep distinct numbers.
SERIES = {
    Title.LEARNING_FAMILY: "-GĐHT",
    Title.LEARNING_CLAN: "-DHHT",
    Title.LEARNING_COMMUNITY: "-CĐHT",
    Title.LEARNING_UNIT: "-ĐVHT",
}


# --- residents, households and clans --------------------------------------------------------------------


@dataclass
class Member:
    gender: Gender
    birth_year: int
    name: str


def person_name(rng: random.Random, gender: Gender, family: str | None = None) -> str:
    return f"{family or rng.choice(FAMILY_NAMES)} {rng.choice(MIDDLE[gender])} {rng.choice(GIVEN[gender])}"


def _member(rng: random.Random, gender: Gender, birth_year: int, family: str) -> Member:
    return Member(gender, birth_year, person_name(rng, gender, family))


def _members(rng: random.Random, family: str) -> list[Member]:
    """A household's people, head first: a couple, their children (born by 2021, so none is younger than
    the programme's records), the husband's parents in the larger ones; a single person alone."""
    size = rng.choices(HOUSEHOLD_SIZES, weights=SIZE_WEIGHTS)[0]
    either = [Gender.MALE, Gender.FEMALE]
    if size == 1:
        return [_member(rng, rng.choice(either), rng.randint(1942, 2000), family)]
    head = rng.randint(1958, 1996)
    wife = min(head + rng.randint(-2, 5), 2000)
    children = min(size - 2, 3)
    born = sorted(rng.randint(min(wife + 20, 2021), 2021) for _ in range(children))
    members = [
        _member(rng, Gender.MALE, head, family),
        _member(rng, Gender.FEMALE, wife, rng.choice(FAMILY_NAMES)),
    ]
    members += [_member(rng, rng.choice(either), b, family) for b in born]
    elders = size - 2 - children
    if elders:
        members.append(_member(rng, Gender.MALE, max(head - rng.randint(24, 32), 1935), family))
    if elders > 1:
        elder = max(head - rng.randint(22, 30), 1938)
        members.append(_member(rng, Gender.FEMALE, elder, rng.choice(FAMILY_NAMES)))
    return members


async def _household(
    session: AsyncSession, actor: Subject, unit: OrgUnit, code: str, members: list[Member], since: date
) -> list[int]:
    """The members as residents of ``unit``, and their household (named after its head); their ids."""
    ids: list[int] = []
    for member in members:
        data = PersonCreate(
            full_name=member.name,
            org_unit_id=unit.id,
            group=Group.RESIDENT,
            birth_year=member.birth_year,
            gender=member.gender,
            member_since=since,
        )
        ids.append((await people.create(session, actor, data)).id)
    head = f"{'ông' if members[0].gender == Gender.MALE else 'bà'} {members[0].name}"
    household = HouseholdCreate(
        name=f"Hộ {head}", org_unit_id=unit.id, code=code, member_ids=ids, effective_on=since
    )
    await collectives.create_household(session, actor, household)
    return ids


async def load_residents(
    session: AsyncSession, actor: Subject, units: dict[str, OrgUnit], since: date
) -> list[str]:
    """Residents of the villages (and of a commune without villages), household by household, and the
    clans that gather a commune's households of one family name."""
    rng = random.Random(387)  # noqa: S311 — demo names, not secrets
    parent = {code: parent_code for code, _, _, parent_code in UNITS}
    pools: dict[str, list[str]] = {}
    by_commune: dict[str, list[tuple[str, str]]] = defaultdict(list)  # (family name, household code)
    births: list[int] = []
    for unit_code, count in HOMES:
        commune = parent.get(unit_code, unit_code)
        pool = pools.setdefault(commune, rng.sample(FAMILY_NAMES, 4))
        for number in range(1, count + 1):
            family = rng.choices(pool, weights=(4, 3, 2, 1))[0]
            members = _members(rng, family)
            code = f"{unit_code}-H{number:02d}"
            await _household(session, actor, units[unit_code], code, members, since)
            births += [m.birth_year for m in members]
            by_commune[commune].append((family, code))
    clans = 0
    for commune, households in by_commune.items():
        names = [n for n, k in Counter(f for f, _ in households).most_common(CLANS_PER_COMMUNE) if k > 1]
        for number, family in enumerate(names, start=1):
            codes = [code for f, code in households if f == family]
            ids = (await session.scalars(select(Collective.id).where(Collective.code.in_(codes)))).all()
            clan = ClanCreate(
                name=f"Dòng họ {family} ({units[commune].name})",
                org_unit_id=units[commune].id,
                code=f"{commune}-DH{number}",
                household_ids=sorted(ids),
                effective_on=since,
            )
            await collectives.create_clan(session, actor, clan)
            clans += 1
    villages = sum(kind == OrgKind.VILLAGE for _, _, kind, _ in UNITS)
    children = sum(born > LAST_YEAR - ADULT_AGE for born in births)
    homes = sum(count for _, count in HOMES)
    return [
        f"Villages and residential groups: {villages}; residents: {len(births)} in {homes} households "
        f"({children} under {ADULT_AGE} in {LAST_YEAR}); clans: {clans}."
    ]


# --- evaluations ----------------------------------------------------------------------------------------


@dataclass
class _Year:
    """One year's run: what to recognise, by title and signing unit; the committee does the duties."""

    session: AsyncSession
    team: Committee
    store: EvidenceStore
    year: int
    rng: random.Random
    candidates: dict[Title, dict[int, list[int]]] = field(default_factory=lambda: defaultdict(dict))

    async def evaluate(self, data: EvaluationCreate, target: Status, quality: Quality, signer: int) -> None:
        clerk = self.team.clerk
        evaluation = await evaluations.create(self.session, clerk, data)
        scores = await self._scores(evaluation, quality)
        evaluation = await self_assess(self.session, clerk, self.store, evaluation, scores)
        if target == Status.DRAFT:
            return
        await drive(self.session, self.team, evaluation, target)
        if target == Status.RECOGNISED:
            self.candidates[data.title].setdefault(signer, []).append(evaluation.id)

    async def _scores(self, evaluation: EvaluationRead, quality: Quality) -> list[ScoreInput]:
        indicators = await criteria_repo.indicators_of(self.session, evaluation.criteria_set_id)
        if evaluation.title != Title.LEARNING_UNIT:
            # 8 to 10 of 10 when it passes, 5 to 7.5 when it does not (a total under 80 either way).
            low, high = (16, 20) if quality == "pass" else (10, 15)
            return [
                ScoreInput(
                    indicator_id=i.id,
                    score=Decimal(round(i.max_points * self.rng.randint(low, high) / 10)) / 2,
                )
                for i in indicators
            ]
        # TT 24/2023 has no points: each indicator is met (full points) or not (0). Level-1 indicators
        # carry the set's largest points; the level-2 increments fewer.
        top = max(i.max_points for i in indicators)
        level_1 = [i.id for i in indicators if i.max_points == top]
        increments = [i.id for i in indicators if i.max_points < top]
        unmet: set[int] = set()
        if quality != "muc_2" and increments:
            unmet |= set(self.rng.sample(increments, self.rng.randint(1, len(increments))))
        if quality == "fail":
            unmet.add(self.rng.choice(level_1))
        return [
            ScoreInput(indicator_id=i.id, score=Decimal(0 if i.id in unmet else i.max_points))
            for i in indicators
        ]


async def _adult_share(session: AsyncSession, year: int) -> dict[int, float]:
    """Each household's share of adults recognised as Learning Citizens in ``year``."""
    stmt = (
        select(HouseholdMember.household_id, Evaluation.status)
        .join(Person, Person.id == HouseholdMember.person_id)
        .outerjoin(Evaluation, (Evaluation.person_id == Person.id) & (Evaluation.year == year))
        .where(HouseholdMember.valid_to.is_(None), func.coalesce(Person.birth_year, 0) <= year - ADULT_AGE)
    )
    adults: Counter[int] = Counter()
    recognised: Counter[int] = Counter()
    for household_id, status in (await session.execute(stmt)).all():
        adults[household_id] += 1
        recognised[household_id] += status == Status.RECOGNISED
    return {h: recognised[h] / n for h, n in adults.items()}


async def _district_or_province_above(session: AsyncSession, unit_id: int) -> int:
    """Who recognises a learning unit (TT 24/2023): the nearest district or province above it, today."""
    above = (await orgs_repo.ancestor_ids(session, unit_id))[1:]
    kinds = dict((await session.execute(select(OrgUnit.id, OrgUnit.kind).where(OrgUnit.id.in_(above)))).all())
    return next(u for u in above if kinds[u] in (OrgKind.DISTRICT, OrgKind.PROVINCE))


async def _placed(session: AsyncSession, kind: CollectiveKind) -> list[tuple[int, int]]:
    """(id, unit id) of every household or every clan."""
    stmt = (
        select(Collective.id, Collective.org_unit_id).where(Collective.kind == kind).order_by(Collective.id)
    )
    return [(i, u) for i, u in (await session.execute(stmt)).all()]


async def _ranked(run: _Year, title: Title, ranked: list[tuple[float, int, int]], mix: Mix) -> None:
    """Evaluate (rank, household or clan id, signing unit), best ranked first, with the statuses of
    ``mix``: the recognised ones pass, about half of the others do."""
    ranked.sort(reverse=True)
    for (_, subject_id, signer), target in zip(ranked, statuses(len(ranked), mix), strict=True):
        quality: Quality = "pass" if target == Status.RECOGNISED or run.rng.random() < 0.5 else "fail"
        field = "household_id" if title == Title.LEARNING_FAMILY else "clan_id"
        data = EvaluationCreate.model_validate({"title": title, field: subject_id, "year": run.year})
        await run.evaluate(data, target, quality, signer)


async def _households_and_clans(run: _Year, mix: Mix, clan_mix: Mix) -> None:
    """Households, by the commune that signs for them, those most of whose adults are Learning Citizens
    doing best; then clans, by their households' share."""
    signer = await signing_units(run.session)
    share = await _adult_share(run.session, run.year)
    by_commune: dict[int, list[tuple[float, int, int]]] = defaultdict(list)
    for household_id, unit_id in await _placed(run.session, CollectiveKind.HOUSEHOLD):
        rank = share.get(household_id, 0) + run.rng.random() / 4
        by_commune[signer[unit_id]].append((rank, household_id, signer[unit_id]))
    for _, households in sorted(by_commune.items()):
        await _ranked(run, Title.LEARNING_FAMILY, households, mix)
    clans = []
    for clan_id, unit_id in await _placed(run.session, CollectiveKind.CLAN):
        rows = await collectives_repo.open_rows(run.session, CLAN_HOUSEHOLDS, clan_id)
        ratio = sum(share.get(r.household_id, 0) for r in rows) / max(len(rows), 1)
        clans.append((ratio + run.rng.random() / 4, clan_id, signer[unit_id]))
    await _ranked(run, Title.LEARNING_CLAN, clans, clan_mix)


async def _units(run: _Year) -> None:
    """Villages as learning communities (the commune signs) and learning units (the district or
    province above signs)."""
    titled = [(Title.LEARNING_COMMUNITY, COMMUNITIES), (Title.LEARNING_UNIT, LEARNING_UNITS)]
    for title, plan in titled:
        for code, target, quality in plan.get(run.year, []):
            unit = await orgs_repo.get_by_code(run.session, code)
            assert unit is not None and unit.parent_id is not None
            if title == Title.LEARNING_COMMUNITY:
                signer = unit.parent_id
            else:
                signer = await _district_or_province_above(run.session, unit.id)
            data = EvaluationCreate(title=title, org_unit_id=unit.id, year=run.year)
            await run.evaluate(data, target, quality, signer)


async def load_collective_evaluations(
    session: AsyncSession, actor: Subject, store: EvidenceStore, year: int, *, closed: bool = False
) -> list[str]:
    """The year's collective evaluations and their recognition decisions; ``closed``: a past year, where
    every household and clan was reviewed and fewer were recognised."""
    team = await committee(session, actor)
    run = _Year(session, team, store, year, random.Random(387 + year))  # noqa: S311 — demo data
    await _households_and_clans(
        run, CLOSED_YEAR_MIX if closed else HOUSEHOLD_MIX, CLOSED_YEAR_MIX if closed else CLAN_MIX
    )
    await _units(run)
    # Families, clans and communities are recognised at the end of the year; a learning unit's dossier
    # goes up by 15 January of the next (TT 24/2023), and is signed soon after.
    for title in SERIES:
        day = min(date(year + 1, 1, 20), today()) if title == Title.LEARNING_UNIT else None
        await recognise(session, team, year, run.candidates[title], series=SERIES[title], signed_on=day)
    parts = [f"{t.value} {await count_statuses(session, year, Evaluation.title == t.value)}" for t in SERIES]
    return [f"Collective evaluations {year}: " + "; ".join(parts)]
