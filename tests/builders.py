"""Builders that keep tests short: ``await tree.unit(...)``, ``await tree.user(...)``, ``tree.auth(user)``.

They write through the ORM (fast: no password hashing per user) and share the test's rolled-back
transaction with the app.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.aggregates import counters
from app.auth.models import Role, RoleAssignment, User
from app.auth.scope import Subject
from app.collectives.models import ClanHousehold, Collective, CollectivePlace, HouseholdMember
from app.core.dates import today
from app.core.security import hash_password_sync
from app.core.tokens import TokenCodec
from app.criteria.models import CriteriaSet
from app.decisions import service as decisions
from app.decisions.models import RecognitionDecision
from app.decisions.schemas import DecisionCreate
from app.evaluations.models import Evaluation, Status
from app.orgs import history
from app.orgs.models import OrgUnit
from app.people.models import Membership, Person

PASSWORD = "correct-horse-battery"
_counter = itertools.count(1)
_REFLECTED: dict[str, MetaData] = {}  # database URL → its tables, as reflected by the first snapshot
# Who signs and revokes the builders' decisions: the system (user id 0, as ``cdht`` commands act), which
# separation of duties does not check — the builders write evaluations without the audit rows of who filled
# them in or reviewed them.
SIGNER = Subject(user_id=0, username="tests", is_admin=True)


@lru_cache
def password_hash() -> str:
    return hash_password_sync(PASSWORD)


@dataclass
class Tree:
    session: AsyncSession
    codec: TokenCodec
    _made: list[object] = field(default_factory=list)
    _reflected: MetaData | None = None
    _criteria_set_id: int | None = None

    async def unit(
        self,
        name: str | None = None,
        kind: str = "unit",
        parent: OrgUnit | None = None,
        code: str | None = None,
    ) -> OrgUnit:
        unit = OrgUnit(
            name=name or f"Unit {next(_counter)}",
            kind=kind,
            code=code,
            parent_id=parent.id if parent else None,
            depth=parent.depth + 1 if parent else 0,
        )
        self.session.add(unit)
        await self.session.flush()
        await history.link_new_unit(self.session, unit)
        await self.session.commit()
        return unit

    async def user(
        self,
        *grants: tuple[str | Role, OrgUnit | None],
        username: str | None = None,
        unit: OrgUnit | None = None,
        service: bool = False,
    ) -> User:
        """A user holding each (role, unit) grant; home unit = ``unit`` or the first grant's unit."""
        home = unit or next((u for _, u in grants if u is not None), None)
        user = User(
            username=username or f"user{next(_counter)}",
            password_hash=password_hash(),
            full_name="Test User",
            org_unit_id=home.id if home else None,
            is_service=service,
        )
        self.session.add(user)
        await self.session.flush()
        for role, at in grants:
            self.session.add(
                RoleAssignment(user_id=user.id, role=Role(role).value, org_unit_id=at.id if at else None)
            )
        await self.session.commit()
        return user

    async def admin(self) -> User:
        return await self.user((Role.ADMIN, None))

    async def person(
        self,
        unit: OrgUnit,
        group: str = "staff",
        user: User | None = None,
        citizen_id: str | None = None,
        birth_year: int | None = None,
    ) -> Person:
        person = Person(
            full_name=f"Người {next(_counter)}",
            org_unit_id=unit.id,
            group=group,
            user_id=user.id if user else None,
            citizen_id=citizen_id,
            birth_year=birth_year,
        )
        self.session.add(person)
        await self.session.flush()
        self.session.add(Membership(person_id=person.id, org_unit_id=unit.id, group=group))
        await counters.people_counted(self.session, [person.id], +1)
        await self.session.commit()
        return person

    async def evaluation(
        self,
        person: Person,
        year: int = 2025,
        status: str | Status = Status.REVIEWED,
        *,
        passed: bool = True,
        digital_level: str | None = "basic",
    ) -> Evaluation:
        """An evaluation already in ``status`` (no scores), written directly. ``recognised`` comes with its
        own one-person decision at the person's unit; use :meth:`recognise` to sign for several."""
        status = Status(status)
        done = status in (Status.REVIEWED, Status.RECOGNISED)
        evaluation = Evaluation(
            person_id=person.id,
            org_unit_id=person.org_unit_id,
            year=year,
            criteria_set_id=await self._criteria_set(),
            status=Status.REVIEWED.value if status == Status.RECOGNISED else status.value,
            passed=passed if done else None,
            digital_level=digital_level if done else None,
            total_halves=(170 if passed else 120) if done else None,
        )
        self.session.add(evaluation)
        await self.session.flush()
        await counters.evaluation_created(self.session, evaluation)
        if status == Status.RECOGNISED:
            unit = await self.session.get(OrgUnit, person.org_unit_id)
            assert unit is not None
            await self.recognise(unit, year, [evaluation])
        await self.session.commit()
        return evaluation

    async def recognise(
        self, unit: OrgUnit, year: int, evaluations: list[Evaluation], number: str | None = None
    ) -> RecognitionDecision:
        """A decision at ``unit`` recognising ``evaluations``, signed through the decision service by
        :data:`SIGNER` on 20 December of ``year`` (today, if that is still to come)."""
        data = DecisionCreate(
            org_unit_id=unit.id,
            year=year,
            number=number or f"{next(_counter)}/QĐ-TEST",
            signed_on=min(date(year, 12, 20), today()),
            evaluation_ids=[e.id for e in evaluations],
        )
        signed = await decisions.create(self.session, SIGNER, data)
        decision = await self.session.get(RecognitionDecision, signed.id)
        assert decision is not None
        await self.session.commit()
        return decision

    async def revoke(self, decision: RecognitionDecision) -> None:
        """Revoke ``decision`` through the decision service: its evaluations go back to reviewed."""
        await decisions.revoke(self.session, SIGNER, decision.id, "Revoked by a test.")
        await self.session.commit()

    async def household(self, unit: OrgUnit, members: list[Person], code: str | None = None) -> Collective:
        """A household placed at ``unit`` since always, with ``members`` since always."""
        await counters.people_counted(self.session, [p.id for p in members], -1)
        household = await self._collective("household", unit, code)
        for person in members:
            self.session.add(HouseholdMember(household_id=household.id, person_id=person.id))
        return await self._counted(household, [p.id for p in members])

    async def clan(self, unit: OrgUnit, households: list[Collective]) -> Collective:
        """A clan placed at ``unit`` since always, spanning ``households`` since always."""
        members = select(HouseholdMember.person_id).where(
            HouseholdMember.household_id.in_([h.id for h in households])
        )
        people = list((await self.session.scalars(members)).all())
        await counters.people_counted(self.session, people, -1)
        clan = await self._collective("clan", unit, None)
        for household in households:
            self.session.add(ClanHousehold(clan_id=clan.id, household_id=household.id))
        return await self._counted(clan, people)

    async def _collective(self, kind: str, unit: OrgUnit, code: str | None) -> Collective:
        collective = Collective(kind=kind, name=f"{kind} {next(_counter)}", code=code, org_unit_id=unit.id)
        self.session.add(collective)
        await self.session.flush()
        self.session.add(CollectivePlace(collective_id=collective.id, org_unit_id=unit.id))
        return collective

    async def _counted(self, collective: Collective, people: list[int]) -> Collective:
        await counters.collectives_counted(self.session, [collective.id], +1)
        await counters.people_counted(self.session, people, +1)
        await self.session.commit()
        return collective

    async def collective_evaluation(
        self,
        title: str,
        subject: Collective | OrgUnit,
        year: int = 2025,
        status: str | Status = Status.REVIEWED,
        *,
        passed: bool = True,
    ) -> Evaluation:
        """A collective evaluation already in ``status`` (no scores), written directly; ``recognised``
        comes with a decision at the unit's parent (the level above recognises: a unit title needs one)."""
        status = Status(status)
        done = status in (Status.REVIEWED, Status.RECOGNISED)
        unit_id = subject.org_unit_id if isinstance(subject, Collective) else subject.id
        evaluation = Evaluation(
            title=title,
            collective_id=subject.id if isinstance(subject, Collective) else None,
            subject_unit_id=subject.id if isinstance(subject, OrgUnit) else None,
            org_unit_id=unit_id,
            year=year,
            criteria_set_id=await self._criteria_set(),
            status=Status.REVIEWED.value if status == Status.RECOGNISED else status.value,
            passed=passed if done else None,
            total_halves=(170 if passed else 120) if done else None,
        )
        self.session.add(evaluation)
        await self.session.flush()
        await counters.evaluation_created(self.session, evaluation)
        if status == Status.RECOGNISED:
            unit = await self.session.get(OrgUnit, unit_id)
            assert unit is not None
            signer = await self.session.get(OrgUnit, unit.parent_id) if unit.parent_id else unit
            assert signer is not None
            await self.recognise(signer, year, [evaluation])
        await self.session.commit()
        return evaluation

    async def _criteria_set(self) -> int:
        if self._criteria_set_id is None:
            criteria_set = CriteriaSet(code=f"TEST-{next(_counter)}", title="Bộ tiêu chí thử", group="staff")
            self.session.add(criteria_set)
            await self.session.flush()
            self._criteria_set_id = criteria_set.id
        return self._criteria_set_id

    def auth(self, user: User) -> dict[str, str]:
        token, _ = self.codec.issue_access(str(user.id))
        return {"Authorization": f"Bearer {token}"}

    async def snapshot(self) -> dict[str, list[tuple[object, ...]]]:
        """Every row of every table in the database, to prove a refused request wrote nothing."""

        def reflect(sync_session: Session) -> MetaData:
            connection = sync_session.connection()
            url = connection.engine.url.render_as_string(hide_password=False)
            if url not in _REFLECTED:  # reflecting every table costs ~0.5 s; the schema is the migrations'
                metadata = MetaData()
                metadata.reflect(bind=connection)
                _REFLECTED[url] = metadata
            return _REFLECTED[url]

        if self._reflected is None:
            self._reflected = await self.session.run_sync(reflect)
        metadata = self._reflected
        rows: dict[str, list[tuple[object, ...]]] = {}
        for table in metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            result = await self.session.execute(select(table).order_by(*order))
            rows[table.name] = [tuple(row) for row in result.all()]
        return rows


@dataclass
class Country:
    """A small two-province tree used by the scope tests:

    nation ─┬─ province A ─ district A ─┬─ commune A ─ school A ─ dept A
            │                            └─ commune A2
            └─ province B ─ commune B ─ school B
    """

    nation: OrgUnit
    province_a: OrgUnit
    district_a: OrgUnit
    commune_a: OrgUnit
    commune_a2: OrgUnit
    school_a: OrgUnit
    dept_a: OrgUnit
    province_b: OrgUnit
    commune_b: OrgUnit
    school_b: OrgUnit


async def build_country(tree: Tree) -> Country:
    nation = await tree.unit("Việt Nam", "nation", code=f"VN{next(_counter)}")
    province_a = await tree.unit("Tỉnh A", "province", nation)
    district_a = await tree.unit("Huyện A", "district", province_a)
    commune_a = await tree.unit("Xã A", "commune", district_a)
    commune_a2 = await tree.unit("Xã A2", "commune", district_a)
    school_a = await tree.unit("Trường A", "school", commune_a)
    dept_a = await tree.unit("Tổ A", "unit", school_a)
    province_b = await tree.unit("Tỉnh B", "province", nation)
    commune_b = await tree.unit("Xã B", "commune", province_b)
    school_b = await tree.unit("Trường B", "school", commune_b)
    return Country(
        nation,
        province_a,
        district_a,
        commune_a,
        commune_a2,
        school_a,
        dept_a,
        province_b,
        commune_b,
        school_b,
    )


MINIMAL_PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
MINIMAL_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
