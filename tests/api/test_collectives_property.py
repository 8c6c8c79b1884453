"""Property: with households, clans, villages and learning units in a random small tree — people of every
age, personal and collective evaluations in every fate, recognitions signed and revoked in any order,
a unit moved out from under a recognised learning unit — every metric the service serves (the plans'
qualified shares, the collective titles' shares, adults by age) equals a naive recount, for every unit,
as the services keep the counters, and again after a full rebuild."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.aggregates import counters
from app.aggregates.naive import naive_recount
from app.collectives.models import Collective
from app.core.dates import today
from app.evaluations.models import Evaluation
from app.orgs import history
from app.orgs.models import OrgUnit
from app.people.models import Person
from tests.builders import Tree

pytestmark = pytest.mark.anyio

API = "/api/v1"
KINDS = ["commune", "village", "school", "agency"]
GROUPS = ["resident", "worker", "staff", "student"]
BIRTHS = [None, 1950, 1985, 2000, 2009, 2010, 2011, 2018]  # 2010 turns 15 in 2025; 2011 does not
# What happens to a subject's 2025 evaluation; "late" is recognised after everything else is built.
FATES = ["none", "reviewed", "recognised", "revoked", "late"]

unit_st = st.tuples(st.integers(0, 6), st.sampled_from(KINDS))
person_st = st.tuples(
    st.integers(0, 6),  # unit index
    st.sampled_from(GROUPS),
    st.sampled_from(BIRTHS),
    st.sampled_from(FATES),
    st.integers(0, 3),  # household index (3: none)
)
world_st = st.tuples(
    st.lists(unit_st, min_size=1, max_size=6),
    st.lists(person_st, max_size=14),
    st.lists(st.sampled_from(FATES), min_size=3, max_size=3),  # the three households' fates
    st.sampled_from(FATES),  # the clan's fate (households 0 and 1)
    st.lists(st.sampled_from(FATES), min_size=7, max_size=7),  # each unit's fate (if a village/school)
    st.booleans(),  # move the last unit under the root at the end (leaving recognised ancestors)
)


async def _fate(tree: Tree, evaluation_of, fate: str, pending: list, revoking: list) -> None:  # type: ignore[no-untyped-def]
    if fate == "none":
        return
    evaluation = await evaluation_of("recognised" if fate == "recognised" else "reviewed")
    if fate == "revoked":
        revoking.append(evaluation)
    elif fate == "late":
        pending.append(evaluation)


async def build(tree: Tree, world: tuple) -> list[OrgUnit]:  # type: ignore[type-arg]
    unit_specs, people_specs, household_fates, clan_fate, unit_fates, move = world
    units = [await tree.unit("Tỉnh", "province")]
    for i, (parent, kind) in enumerate(unit_specs):
        units.append(await tree.unit(f"Đơn vị {i}", kind, units[parent % len(units)]))
    pending: list[Evaluation] = []
    revoking: list[Evaluation] = []
    members: dict[int, list[Person]] = {0: [], 1: [], 2: []}
    for unit_index, group, born, fate, household in people_specs:
        person = await tree.person(units[unit_index % len(units)], group, birth_year=born)
        if household < 3:
            members[household].append(person)

        async def personal(status: str, person: Person = person) -> Evaluation:
            return await tree.evaluation(person, 2025, status)

        await _fate(tree, personal, fate, pending, revoking)
    households: list[Collective] = []
    for index, fate in enumerate(household_fates):
        household = await tree.household(units[index % len(units)], members[index])
        households.append(household)

        async def family(status: str, household: Collective = household) -> Evaluation:
            return await tree.collective_evaluation("learning_family", household, 2025, status)

        await _fate(tree, family, fate, pending, revoking)
    clan = await tree.clan(units[0], households[:2])

    async def of_clan(status: str) -> Evaluation:
        return await tree.collective_evaluation("learning_clan", clan, 2025, status)

    await _fate(tree, of_clan, clan_fate, pending, revoking)
    titles = {"village": "learning_community", "school": "learning_unit", "agency": "learning_unit"}
    for unit, fate in zip(units[1:], unit_fates, strict=False):
        if unit.kind not in titles:
            continue

        async def of_unit(status: str, unit: OrgUnit = unit) -> Evaluation:
            return await tree.collective_evaluation(titles[unit.kind], unit, 2025, status)

        await _fate(tree, of_unit, fate, pending, revoking)
    if revoking:
        await tree.revoke(await tree.recognise(units[0], 2025, revoking))
    if pending:  # recognised after the people and the collectives they belong to were counted
        await tree.recognise(units[0], 2025, pending)
    if move and len(units) > 2 and units[-1].parent_id != units[0].id:
        await history.move(tree.session, units[-1], units[0], date(today().year, 1, 1))
        await tree.session.commit()
    return units


async def _check(client: httpx.AsyncClient, tree: Tree, h: dict[str, str], units: list[OrgUnit]) -> None:
    for year in (2025, today().year):
        for unit in units:
            r = await client.get(
                f"{API}/aggregates/progress", params={"org_unit_id": unit.id, "year": year}, headers=h
            )
            assert r.status_code == 200, r.text
            got = {m["metric"]: (m["numerator"], m["denominator"]) for m in r.json()["metrics"]}
            assert got == await naive_recount(tree.session, unit.id, year), (unit.name, unit.kind, year)


@settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=world_st)
async def test_collective_metrics_equal_a_naive_recount(
    client: httpx.AsyncClient,
    tree: Tree,
    world: tuple,  # type: ignore[type-arg]
) -> None:
    units = await build(tree, world)  # a new disjoint tree per example
    h = tree.auth(await tree.user(("viewer", units[0])))
    await _check(client, tree, h, units)
    await counters.rebuild(tree.session)
    await tree.session.commit()
    await _check(client, tree, h, units)


async def test_children_are_not_adults_and_an_unknown_birth_year_counts(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    """Adults are residents aged at least 15 in the year (API.md): a child of 2011 is not one in 2025
    but is in 2026; someone of unknown age counts."""
    commune = await tree.unit("Xã", "commune")
    for born in (1980, 2010, 2011, None):
        await tree.evaluation(await tree.person(commune, "resident", birth_year=born), 2025, "recognised")
    h = tree.auth(await tree.user(("viewer", commune)))
    rows = {}
    for year in (2025, 2026):
        r = await client.get(
            f"{API}/aggregates/progress", params={"org_unit_id": commune.id, "year": year}, headers=h
        )
        rows[year] = {m["metric"]: m for m in r.json()["metrics"]}
    assert (
        rows[2025]["adults_recognised_pct"]["numerator"],
        rows[2025]["adults_recognised_pct"]["denominator"],
    ) == (3, 3)
    assert rows[2026]["adults_recognised_pct"]["denominator"] == 4
