"""Dashboard bodies kept by the change counters they were computed from (``core/conditional.KeptBodies``,
``aggregates/freshness.answered``): a read that finds the counters where an earlier one found them gets
that one's bytes with no count or plan read, for any caller who may read the unit and for nobody else;
anything counted that moves, another argument or an expired copy is computed again."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncEngine

from app.aggregates.schemas import Breakdown, Progress, Trend
from app.core import conditional
from tests.api.test_statements import counted
from tests.builders import Tree, build_country

API = "/api/v1"


async def test_a_read_whose_counters_did_not_move_answers_the_bytes_computed_before(
    client: httpx.AsyncClient, tree: Tree, _test_engine: AsyncEngine
) -> None:
    c = await build_country(tree)
    staff = await tree.person(c.school_a, "staff")
    await tree.evaluation(staff, 2025, "recognised")
    viewer = tree.auth(await tree.user(("viewer", c.province_a)))
    reads: dict[str, tuple[dict[str, Any], type[Any]]] = {
        "/aggregates/progress": ({"org_unit_id": c.province_a.id, "year": 2025}, Progress),
        "/aggregates/breakdown": (
            {"org_unit_id": c.province_a.id, "year": 2025, "metric": "staff_recognised_pct"},
            Breakdown,
        ),
        "/aggregates/trend": (
            {
                "org_unit_id": c.province_a.id,
                "metric": "staff_recognised_pct",
                "from_year": 2024,
                "to_year": 2025,
            },
            Trend,
        ),
    }
    first: dict[str, bytes] = {}
    for path, (params, model) in reads.items():
        computed = await client.get(f"{API}{path}", params=params, headers=viewer)
        assert computed.status_code == 200, computed.text
        # The bytes FastAPI writes for the route's response model.
        adapter = TypeAdapter(model)
        assert adapter.dump_json(adapter.validate_json(computed.content), by_alias=True) == computed.content
        with counted(_test_engine) as seen:
            kept = await client.get(f"{API}{path}", params=params, headers=viewer)
        assert kept.status_code == 200 and kept.content == computed.content, path
        assert kept.headers["etag"] == computed.headers["etag"]
        assert kept.headers["content-type"] == "application/json"
        assert len(seen) == 1, seen  # the unit with the grant and the change counters; no counts, no plans
        first[path] = computed.content

    # Another year is another body, not the kept one.
    other_year = await client.get(
        f"{API}/aggregates/progress", params={"org_unit_id": c.province_a.id, "year": 2024}, headers=viewer
    )
    assert other_year.json()["year"] == 2024

    # A colleague who may read the province gets the same bytes without counting; an outsider gets 404.
    colleague = tree.auth(await tree.user(("viewer", c.province_a)))
    params = reads["/aggregates/progress"][0]
    with counted(_test_engine) as seen:
        theirs = await client.get(f"{API}/aggregates/progress", params=params, headers=colleague)
    assert theirs.content == first["/aggregates/progress"]
    assert not any("aggregate_counts" in s for s in seen), seen
    outsider = tree.auth(await tree.user(("viewer", c.province_b)))
    assert (
        await client.get(f"{API}/aggregates/progress", params=params, headers=outsider)
    ).status_code == 404

    # A recognition in the subtree: every one of them is computed again, with the new numbers.
    await tree.evaluation(await tree.person(c.school_a, "staff"), 2025, "recognised")
    for path, (asked, _) in reads.items():
        r = await client.get(f"{API}{path}", params=asked, headers=viewer)
        assert r.status_code == 200 and r.content != first[path], path
    progress = (await client.get(f"{API}/aggregates/progress", params=params, headers=viewer)).json()
    staff_pct = next(m for m in progress["metrics"] if m["metric"] == "staff_recognised_pct")
    assert staff_pct["numerator"] == 2


async def test_nothing_kept_when_the_setting_is_zero(
    client: httpx.AsyncClient, tree: Tree, app: FastAPI, _test_engine: AsyncEngine
) -> None:
    c = await build_country(tree)
    viewer = tree.auth(await tree.user(("viewer", c.province_a)))
    params = {"org_unit_id": c.province_a.id, "year": 2025}
    app.state.bodies = conditional.KeptBodies(0, 5.0)  # CDHT_KEPT_BODIES_MB=0
    computed = await client.get(f"{API}/aggregates/progress", params=params, headers=viewer)
    with counted(_test_engine) as seen:
        again = await client.get(f"{API}/aggregates/progress", params=params, headers=viewer)
    assert again.content == computed.content
    assert any("aggregate_counts" in s for s in seen), seen


def test_kept_bodies_stay_within_their_bytes_and_their_age(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(conditional.time, "monotonic", lambda: now[0])
    bodies = conditional.KeptBodies(max_bytes=10, max_age=5.0)
    bodies.put("a", b"1234")
    bodies.put("b", b"5678")
    assert bodies.get("a") == b"1234" and bodies.get("b") == b"5678"
    bodies.put("a", b"12")  # the same key again: its old bytes no longer count
    bodies.put("c", b"ab")
    assert (bodies.get("a"), bodies.get("b"), bodies.get("c")) == (b"12", b"5678", b"ab")
    bodies.put("d", b"xyz")  # past 10 bytes: the table starts again
    assert (bodies.get("a"), bodies.get("b"), bodies.get("d")) == (None, None, b"xyz")
    bodies.put("e", b"x" * 11)  # larger than the whole budget: not kept
    assert bodies.get("e") is None and bodies.get("d") == b"xyz"
    now[0] += 5.1
    assert bodies.get("d") is None  # older than max_age
    bodies.put("f", b"ok")
    assert bodies.get("f") == b"ok"

    for nothing in (conditional.KeptBodies(0, 5.0), conditional.KeptBodies(1024, 0.0)):
        nothing.put("a", b"1")
        assert nothing.get("a") is None
