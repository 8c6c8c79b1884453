"""The round trips of an evaluation's read and of the December steps (issue #15; the December mix is
42 % ``GET /evaluations/{id}``): a read's load carries the caller's scope check (``auth.covers.covered``)
and the evidence, a frozen criteria set's terms are kept by the process (``criteria/terms.py``) until the
``criteria`` generation moves, and a step that read the scores or the evidence answers with them."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.criteria.models import CriteriaSet
from tests.api.evaluation_flow import API, act, make_school, open_evaluation, self_assess, upload
from tests.api.test_statements import counted
from tests.builders import Tree


def _reading(seen: list[str], table: str) -> list[str]:
    return [s for s in seen if s.upper().startswith("SELECT") and f"FROM {table}" in s]


async def _read_in_two(
    client: httpx.AsyncClient, engine: AsyncEngine, path: str, headers: dict[str, str]
) -> dict[str, Any]:
    with counted(engine) as seen:
        r = await client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    # The evaluation with the assessor's scope check and its evidence, then its scores.
    assert len(seen) == 2, seen
    assert all(f" {t}" in seen[0] for t in ("evaluations", "org_unit_closure", "evidence")), seen[0]
    assert "FROM evaluation_scores" in seen[1]
    return r.json()


async def test_an_evaluation_reads_in_two_statements_and_its_steps_read_no_set(
    client: httpx.AsyncClient, tree: Tree, _test_engine: AsyncEngine, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    evaluation = await open_evaluation(client, tree, school)  # freezes its set
    path = f"{API}/evaluations/{evaluation['id']}"
    assert (await client.get(path, headers=school.assessor)).status_code == 200  # the caller, the set: kept
    read = await _read_in_two(client, _test_engine, path, school.assessor)
    assert read["evidence"] == [] and len(read["scores"]) == 10

    with counted(_test_engine) as seen:
        done = await self_assess(client, school.admin, read, [8.0] * 10)
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

    # Read with the load, the evidence comes in id order, one row each (and no evaluation twice).
    second = await upload(client, school.admin, evaluation["id"], done["scores"][1]["indicator_id"])
    read = await _read_in_two(client, _test_engine, path, school.assessor)
    assert [e["id"] for e in read["evidence"]] == [added.json()["id"], second.json()["id"]]
    assert [e["indicator_id"] for e in read["evidence"]] == [s["indicator_id"] for s in done["scores"][:2]]
    assert read["running_result"]["total"] == 16.0


async def test_review_and_complete_review_answer_with_the_evidence_and_scores_they_read(
    client: httpx.AsyncClient, tree: Tree, _test_engine: AsyncEngine, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    evaluation = await self_assess(
        client, school.admin, await open_evaluation(client, tree, school), [9.0] * 10
    )
    pieces = [
        (await upload(client, school.admin, evaluation["id"], s["indicator_id"])).json()
        for s in evaluation["scores"]
    ]
    submitted = await act(client, school.admin, evaluation["id"], "submit")
    assert submitted.status_code == 200, submitted.text
    body = {"version": submitted.json()["version"], "scores": [], "rejected_evidence_ids": [pieces[2]["id"]]}
    with counted(_test_engine) as seen:
        r = await client.put(
            f"{API}/evaluations/{evaluation['id']}/review", json=body, headers=school.assessor
        )
    assert r.status_code == 200, r.text
    assert len(_reading(seen, "evidence")) == 1, seen  # marked, then shown as marked
    reviewed = r.json()
    assert [e["rejected"] for e in reviewed["evidence"]] == [e["id"] == pieces[2]["id"] for e in pieces]
    assert reviewed["running_result"]["failing_indicators"] == [3]  # its evidence rejected: 0 points

    with counted(_test_engine) as seen:
        r = await act(
            client, school.assessor, evaluation["id"], "complete-review", {"version": reviewed["version"]}
        )
    assert r.status_code == 200, r.text
    assert len(_reading(seen, "evidence")) == 1 and len(_reading(seen, "evaluation_scores")) == 1, seen
    done = r.json()
    assert done["status"] == "reviewed" and done["result"] == done["running_result"]
    assert done["result"]["total"] == 81.0 and done["result"]["failing_indicators"] == [3]


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
