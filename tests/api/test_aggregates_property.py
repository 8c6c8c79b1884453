"""Property: for random small trees, people, evaluation statuses, decisions, revocations and training,
``progress`` and ``breakdown`` give exactly the numbers of a naive recount, for every unit."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.aggregates import counters
from app.aggregates.naive import naive_recount
from app.decisions.models import RecognitionDecision
from app.trainings.models import Attendance, TrainingSession
from tests.builders import Tree

pytestmark = pytest.mark.anyio  # before collection: @given hides the coroutine from conftest's marker

API = "/api/v1"
GROUPS = ["resident", "worker", "staff", "student"]
# What happens to a person's 2025 evaluation. "stale": the decision is revoked but the evaluation still
# reads recognised (as a record imported from elsewhere might): the decision's status decides.
FATES = ["none", "draft", "submitted", "reviewed", "failed", "recognised", "revoked", "stale", "other_year"]
LEVELS = ["none", "basic", "proficient", None]

person_st = st.tuples(
    st.integers(0, 5),  # unit index (folded into the tree's size)
    st.sampled_from(GROUPS),
    st.sampled_from(FATES),
    st.sampled_from(LEVELS),
    st.sampled_from([None, (2024,), (2025,), (2025, 2025.5)]),  # sessions attended (2025.5: a second one)
)
world_st = st.tuples(
    st.lists(st.integers(0, 5), min_size=0, max_size=5),  # parent index of each unit after the root
    st.lists(person_st, max_size=16),
)


async def build(tree: Tree, parents: list[int], people: list[tuple]) -> list:  # type: ignore[type-arg]
    units = [await tree.unit("Gốc", "province")]
    for i, parent in enumerate(parents):
        units.append(await tree.unit(f"Đơn vị {i}", "commune", units[parent % len(units)]))
    sessions = {}
    for key, day in ((2024, date(2024, 6, 1)), (2025, date(2025, 3, 1)), (2025.5, date(2025, 9, 1))):
        sessions[key] = TrainingSession(org_unit_id=units[0].id, title="Tập huấn", held_on=day, year=day.year)
        tree.session.add(sessions[key])
    await tree.session.flush()
    revoked_by_unit: dict[int, list] = {}  # type: ignore[type-arg]
    for unit_index, group, fate, level, trained in people:
        unit = units[unit_index % len(units)]
        person = await tree.person(unit, group)
        for attended in trained or ():
            tree.session.add(Attendance(session_id=sessions[attended].id, person_id=person.id))
        if fate == "other_year":
            await tree.evaluation(person, 2024, "recognised", digital_level=level)
        elif fate == "failed":
            await tree.evaluation(person, 2025, "reviewed", passed=False, digital_level=level)
        elif fate == "stale":
            evaluation = await tree.evaluation(person, 2025, "recognised", digital_level=level)
            decision = await tree.session.get(RecognitionDecision, evaluation.decision_id)
            assert decision is not None
            decision.status = "revoked"
        elif fate == "revoked":
            revoked_by_unit.setdefault(unit.id, []).append(await tree.evaluation(person, 2025, "reviewed"))
        elif fate != "none":
            await tree.evaluation(person, 2025, fate, digital_level=level)
    for unit_id, evaluations in revoked_by_unit.items():
        unit = next(u for u in units if u.id == unit_id)
        await tree.revoke(await tree.recognise(unit, 2025, evaluations))
    # Attendance and the "stale" decisions above were written behind the services' backs: recount them.
    await counters.rebuild(tree.session)
    await tree.session.commit()
    return units


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=world_st)
async def test_progress_and_breakdown_equal_a_naive_recount(
    client: httpx.AsyncClient,
    tree: Tree,
    world: tuple[list[int], list[tuple]],  # type: ignore[type-arg]
) -> None:
    parents, people = world
    units = await build(tree, parents, people)  # a new disjoint tree per example
    h = tree.auth(await tree.user(("viewer", units[0])))
    expected = {}
    for unit in units:
        naive = await naive_recount(tree.session, unit.id, 2025)
        expected[unit.id] = naive
        r = await client.get(
            f"{API}/aggregates/progress", params={"org_unit_id": unit.id, "year": 2025}, headers=h
        )
        got = {m["metric"]: (m["numerator"], m["denominator"]) for m in r.json()["metrics"]}
        assert got == naive, unit.name
    for unit in units:
        for metric in ("staff_recognised_pct", "digital_proficient_pct", "trained_pct"):
            r = await client.get(
                f"{API}/aggregates/breakdown",
                params={"org_unit_id": unit.id, "year": 2025, "metric": metric},
                headers=h,
            )
            for row in r.json()["items"]:
                assert (row["numerator"], row["denominator"]) == expected[row["org_unit_id"]][metric]
