"""The round trips of an evaluation's read and of the December steps (issue #15; the December mix is
42 % ``GET /evaluations/{id}``): the load carries the caller's scope check (``auth.scope.covered``), a
frozen criteria set's terms are kept by the process (``criteria/terms.py``) until the ``criteria``
generation moves, and a step that read the scores answers with them."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.criteria.models import CriteriaSet
from tests.api.evaluation_flow import API, make_school, open_evaluation, self_assess, upload
from tests.api.test_statements import counted
from tests.builders import Tree


def _reading(seen: list[str], table: str) -> list[str]:
    return [s for s in seen if s.upper().startswith("SELECT") and f"FROM {table}" in s]


async def test_an_evaluation_reads_in_three_statements_and_its_steps_read_no_set(
    client: httpx.AsyncClient, tree: Tree, _test_engine: AsyncEngine, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    evaluation = await open_evaluation(client, tree, school)  # freezes its set
    path = f"{API}/evaluations/{evaluation['id']}"
    assert (await client.get(path, headers=school.assessor)).status_code == 200  # the caller, the set: kept
    with counted(_test_engine) as seen:
        r = await client.get(path, headers=school.assessor)
    assert r.status_code == 200, r.text
    # The evaluation with the assessor's scope check, its scores with their indicators, its evidence.
    assert len(seen) == 3, seen
    assert "org_unit_closure" in seen[0] and "FROM evaluations" in seen[0]

    with counted(_test_engine) as seen:
        done = await self_assess(client, school.admin, r.json(), [8.0] * 10)
    assert _reading(seen, "criteria_sets") == [] and _reading(seen, "indicators") == [], seen
    assert len(_reading(seen, "evaluation_scores")) == 1, seen  # the answer reuses the scores it set
    assert [s["self_score"] for s in done["scores"]] == [8.0] * 10
    assert [s["number"] for s in done["scores"]] == list(range(1, 11))

    with counted(_test_engine) as seen:
        added = await upload(client, school.admin, evaluation["id"], done["scores"][0]["indicator_id"])
    assert added.status_code == 201, added.text
    assert _reading(seen, "criteria_sets") == [] and _reading(seen, "indicators") == [], seen

    with counted(_test_engine) as seen:  # an indicator of no set it uses is still refused
        refused = await upload(client, school.admin, evaluation["id"], 10**9)
    assert refused.status_code == 422 and _reading(seen, "indicators") == []


async def test_changed_terms_hold_on_the_very_next_request_and_nothing_is_kept_at_max_age_0(
    client: httpx.AsyncClient,
    tree: Tree,
    session: AsyncSession,
    _test_engine: AsyncEngine,
    app: FastAPI,
    criteria: dict[str | None, int],
) -> None:
    school = await make_school(tree)
    opened = await open_evaluation(client, tree, school)
    evaluation = await self_assess(client, school.admin, opened, [9.0] * 10)
    for score in evaluation["scores"]:
        added = await upload(client, school.admin, evaluation["id"], score["indicator_id"])
        assert added.status_code == 201, added.text
    path = f"{API}/evaluations/{evaluation['id']}"
    first = (await client.get(path, headers=school.assessor)).json()
    assert first["running_result"]["total"] == 90.0 and first["running_result"]["passed"] is True

    # A committed write to the set (a seed, SQL that SQLAlchemy sees) moves the criteria generation: the
    # next read scores against the set as it is now, in this process and any other of the host.
    await session.execute(
        update(CriteriaSet).where(CriteriaSet.id == first["criteria_set_id"]).values(pass_total=95)
    )
    await session.commit()
    with counted(_test_engine) as seen:
        now = (await client.get(path, headers=school.assessor)).json()
    assert now["running_result"]["passed"] is False
    assert len(_reading(seen, "criteria_sets")) == 1, seen
    with counted(_test_engine) as seen:  # read again, and kept again
        assert (await client.get(path, headers=school.assessor)).status_code == 200
    assert _reading(seen, "criteria_sets") == []

    app.state.criteria_terms.max_age = 0  # CDHT_CACHE_MAX_AGE_SECONDS=0: nothing kept
    for _ in range(2):
        with counted(_test_engine) as seen:
            assert (await client.get(path, headers=school.assessor)).status_code == 200
        assert len(_reading(seen, "criteria_sets")) == 1, seen
