"""Property: whatever sequence of moves, reorganisations, transfers, recognitions and revocations is
applied, every served progress number equals a naive recount, and no year before the earliest effective
date used changes (API.md "The tree through time", "Counting through time")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import httpx
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Select, select

from app.aggregates.naive import naive_recount
from app.core.dates import today
from app.evaluations.models import Evaluation, Status
from app.people.models import Person
from tests.builders import Tree

pytestmark = pytest.mark.anyio  # before collection: @given hides the coroutine from conftest's marker

API = "/api/v1"
GROUPS = ["resident", "worker", "staff", "student"]
THIS_YEAR = today().year
YEARS = list(range(2023, THIS_YEAR + 1))
PAST = [y for y in YEARS if y < THIS_YEAR]
FIRST_REORG_DAY = date(2024, 1, 1)
# What a person's evaluation of one year is: none, reviewed (passed, not recognised), recognised.
FATES = ["none", "reviewed", "recognised"]
OPS = ["move", "merge", "dissolve", "reorg_move", "transfer", "recognise", "revoke"]

person_st = st.tuples(
    st.integers(0, 4),  # commune index
    st.sampled_from(GROUPS),
    st.lists(st.sampled_from(FATES), min_size=len(YEARS), max_size=len(YEARS)),
    st.sampled_from(["none", "basic", "proficient"]),
)
op_st = st.tuples(
    st.sampled_from(OPS),
    st.integers(0, 50),
    st.integers(0, 50),
    st.integers(0, 2000),  # a day offset
    st.sampled_from(GROUPS),
)

Numbers = dict[str, tuple[int, int]]


@dataclass
class World:
    nation: int
    provinces: list[int]
    districts: list[int]
    communes: list[int]  # alive communes (originals and those made by merges)
    people: list[int]
    admin: dict[str, str]
    approver: dict[str, str]
    units: list[int] = field(default_factory=list)  # every unit ever, ended ones included
    ended: set[int] = field(default_factory=set)
    decisions: list[int] = field(default_factory=list)  # active decisions of the current year
    last_reorg: date = FIRST_REORG_DAY
    earliest: date | None = None  # the earliest effective date used so far
    merged: dict[int, tuple[date, list[int]]] = field(default_factory=dict)  # new unit → (from, preds)

    def alive(self, units: list[int]) -> list[int]:
        return [u for u in units if u not in self.ended]

    def used(self, day: date) -> None:
        self.earliest = day if self.earliest is None else min(self.earliest, day)


async def build(tree: Tree, people: list[tuple]) -> World:  # type: ignore[type-arg]
    """Nation → provinces P0 (districts D0: C0, C1; D1: C2), P1 (district D2: C3; commune C4)."""
    nation = await tree.unit("Việt Nam", "nation")
    p0 = await tree.unit("Tỉnh 0", "province", nation)
    p1 = await tree.unit("Tỉnh 1", "province", nation)
    d0 = await tree.unit("Huyện 0", "district", p0)
    d1 = await tree.unit("Huyện 1", "district", p0)
    d2 = await tree.unit("Huyện 2", "district", p1)
    communes = [
        await tree.unit(f"Xã {i}", "commune", parent) for i, parent in enumerate((d0, d0, d1, d2, p1))
    ]
    world = World(
        nation.id,
        [p0.id, p1.id],
        [d0.id, d1.id, d2.id],
        [c.id for c in communes],
        [],
        tree.auth(await tree.admin()),
        tree.auth(await tree.user(("approver", nation))),
    )
    world.units = [nation.id, p0.id, p1.id, d0.id, d1.id, d2.id, *world.communes]
    for commune, group, fates, level in people:
        person = await tree.person(communes[commune], group)
        world.people.append(person.id)
        for year, fate in zip(YEARS, fates, strict=True):
            if fate != "none":
                evaluation = await tree.evaluation(person, year, fate, digital_level=level)
                if fate == "recognised" and year == THIS_YEAR:
                    assert evaluation.decision_id is not None
                    world.decisions.append(evaluation.decision_id)
    return world


async def served(
    client: httpx.AsyncClient, h: dict[str, str], unit_id: int, year: int, basis: str = "as_was"
) -> Numbers:
    r = await client.get(
        f"{API}/aggregates/progress",
        params={"org_unit_id": unit_id, "year": year, "basis": basis},
        headers=h,
    )
    assert r.status_code == 200, r.text
    return {m["metric"]: (m["numerator"], m["denominator"]) for m in r.json()["metrics"]}


async def check(
    client: httpx.AsyncClient, tree: Tree, w: World, snapshot: dict[tuple[int, int], Numbers], step: object
) -> None:
    frozen = [y for y in PAST if w.earliest is None or y < w.earliest.year]
    for unit_id in w.units:
        for year in YEARS:
            got = await served(client, w.admin, unit_id, year)
            naive = await naive_recount(tree.session, unit_id, year)
            assert naive.keys() <= got.keys(), (step, unit_id, year)
            assert {k: got[k] for k in naive} == naive, (step, unit_id, year)
            if year in frozen and (unit_id, year) in snapshot:
                assert got == snapshot[(unit_id, year)], ("a past year changed", step, unit_id, year)
    # Lineage: a merged unit's year before it began is the sum of its predecessors' as they were
    # (recursively, for a predecessor that itself began later).
    for unit_id, (began, _) in w.merged.items():
        for year in (y for y in YEARS if date(y, 12, 31) < began):
            lineage = await served(client, w.admin, unit_id, year, basis="lineage")
            assert lineage == await as_was_of_predecessors(client, w, unit_id, year), (step, unit_id, year)


async def as_was_of_predecessors(client: httpx.AsyncClient, w: World, unit_id: int, year: int) -> Numbers:
    total: dict[str, tuple[int, int]] = {}
    for pred in w.merged[unit_id][1]:
        began = w.merged[pred][0] if pred in w.merged else None
        if began is not None and began > date(year, 12, 31):
            numbers = await as_was_of_predecessors(client, w, pred, year)
        else:
            numbers = await served(client, w.admin, pred, year)
        for metric, (num, den) in numbers.items():
            before = total.get(metric, (0, 0))
            total[metric] = (before[0] + num, before[1] + den)
    return total


def pick(items: list[int], index: int) -> int | None:
    return items[index % len(items)] if items else None


def reorg_day(w: World, offset: int) -> date:
    span = (today() - FIRST_REORG_DAY).days + 1
    return max(w.last_reorg, FIRST_REORG_DAY + timedelta(days=offset % span))


async def parent_of(client: httpx.AsyncClient, w: World, unit_id: int) -> int:
    r = await client.get(f"{API}/org-units/{unit_id}", headers=w.admin)
    assert r.status_code == 200, r.text
    return int(r.json()["parent_id"])


async def reorganise(client: httpx.AsyncClient, w: World, day: date, steps: list[dict]) -> dict | None:  # type: ignore[type-arg]
    """Apply; None when refused only because a named unit changed place after ``day``."""
    body = {"effective_on": day.isoformat(), "title": "Sắp xếp", "steps": steps}
    r = await client.post(f"{API}/reorganisations", json=body, headers=w.admin)
    if r.status_code == 422 and "changed place on" in r.json()["error"]["message"]:
        event(f"{steps[-1]['op']}: refused, a unit changed place later")
        return None
    assert r.status_code == 201, (steps, r.text)
    w.last_reorg = day
    w.used(day)
    event(f"{steps[-1]['op']}: applied")
    return r.json()  # type: ignore[no-any-return]


async def apply(client: httpx.AsyncClient, tree: Tree, w: World, op: tuple) -> None:  # type: ignore[type-arg]
    kind, a, b, offset, group = op
    h = w.admin
    communes = w.alive(w.communes)
    parents = w.alive(w.districts + w.provinces)
    if kind == "move":
        commune, parent = pick(communes, a), pick(parents, b)
        if commune is None or parent is None:
            return
        r = await client.post(f"{API}/org-units/{commune}/move", json={"parent_id": parent}, headers=h)
        assert r.status_code == 200, r.text
        w.used(today())
        event("org-unit move (today): applied")
    elif kind == "merge":
        if len(communes) < 2:
            return
        first, second = (
            communes[a % len(communes)],
            communes[(a + 1 + b % (len(communes) - 1)) % len(communes)],
        )
        day = reorg_day(w, offset)
        steps = [
            {
                "op": "create",
                "ref": "n",
                "name": "Xã mới",
                "kind": "commune",
                "parent": await parent_of(client, w, first),
            },
            {"op": "merge", "units": [first, second], "into": "n"},
        ]
        if (done := await reorganise(client, w, day, steps)) is not None:
            new = done["created"]["n"]
            w.ended |= {first, second}
            w.communes.append(new)
            w.units.append(new)
            w.merged[new] = (day, [first, second])
    elif kind == "dissolve":
        district = pick(w.alive(w.districts), a)
        if district is None:
            return
        province = await parent_of(client, w, district)
        steps = [{"op": "dissolve", "unit": district, "into": province}]
        if await reorganise(client, w, reorg_day(w, offset), steps) is not None:
            w.ended.add(district)
    elif kind == "reorg_move":
        commune, parent = pick(communes, a), pick(parents, b)
        if commune is not None and parent is not None:
            await reorganise(
                client, w, reorg_day(w, offset), [{"op": "move", "unit": commune, "parent": parent}]
            )
    elif kind == "transfer":
        person, unit = pick(w.people, a), pick(w.alive(w.units), b)
        if person is None or unit is None:
            return
        start = date(THIS_YEAR, 1, 1)
        day = start + timedelta(days=offset % ((today() - start).days + 1))
        body = {"effective_on": day.isoformat(), "org_unit_id": unit, "group": group}
        r = await client.post(f"{API}/people/{person}/transfers", json=body, headers=h)
        message = r.json().get("error", {}).get("message", "") if r.status_code != 201 else ""
        if r.status_code == 422 and "neither the unit nor the group" in message:
            return
        if r.status_code == 409 and ("placement began" in message or "began on" in message):
            event("transfer: refused, dated before a placement or the unit began")
            return
        assert r.status_code == 201, (body, r.text)
        w.used(day)
        event("transfer: applied")
    elif kind == "recognise":
        await recognise(client, tree, w, pick(w.people, a))
    elif kind == "revoke" and w.decisions:
        decision = w.decisions.pop(a % len(w.decisions))
        r = await client.post(
            f"{API}/recognition-decisions/{decision}/revoke", json={"reason": "Sai sót"}, headers=w.approver
        )
        assert r.status_code == 200, r.text
        w.used(today())
        event("revoke: applied")


async def recognise(client: httpx.AsyncClient, tree: Tree, w: World, person_id: int | None) -> None:
    """A decision of this year, signed today at the nation, for the person's evaluation of this year."""
    if person_id is None:
        return
    evaluation = await tree.session.scalar(
        select_evaluation(person_id).execution_options(populate_existing=True)
    )
    if evaluation is None:
        person = await tree.session.get(Person, person_id, populate_existing=True)
        assert person is not None
        evaluation = await tree.evaluation(person, THIS_YEAR, "reviewed")
    if evaluation.status != Status.REVIEWED.value:
        return
    body = {
        "org_unit_id": w.nation,
        "year": THIS_YEAR,
        "number": f"{evaluation.id}/QĐ-UBND",
        "signed_on": today().isoformat(),
        "evaluation_ids": [evaluation.id],
    }
    r = await client.post(f"{API}/recognition-decisions", json=body, headers=w.approver)
    assert r.status_code == 201, r.text
    w.decisions.append(r.json()["id"])
    w.used(today())
    event("recognise: applied")


def select_evaluation(person_id: int) -> Select[tuple[Evaluation]]:
    return select(Evaluation).where(Evaluation.person_id == person_id, Evaluation.year == THIS_YEAR)


@settings(
    max_examples=4,
    deadline=None,
    # An example takes seconds: a failure is reported as drawn (at most 4 steps), not shrunk for minutes.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people=st.lists(person_st, min_size=1, max_size=8), ops=st.lists(op_st, min_size=1, max_size=4))
async def test_served_numbers_equal_a_recount_and_past_years_never_change(
    client: httpx.AsyncClient,
    tree: Tree,
    people: list[tuple],  # type: ignore[type-arg]
    ops: list[tuple],  # type: ignore[type-arg]
) -> None:
    w = await build(tree, people)  # a new disjoint tree per example
    snapshot = {(u, y): await served(client, w.admin, u, y) for u in w.units for y in PAST}
    await check(client, tree, w, snapshot, "before")
    for index, op in enumerate(ops):
        await apply(client, tree, w, op)
        await check(client, tree, w, snapshot, (index, op))
