"""Conditional GETs for polling dashboards (issue #15 item 5): progress, breakdown, trend, completeness and
the annual report answer with an ETag; the same ETag in ``If-None-Match`` gets 304 and no body — until
something the answer counts changes, and never for a caller who may not read the unit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.aggregates import freshness
from app.aggregates.models import ChangeEpoch
from app.auth.models import LoginAttempt, RoleAssignment
from app.core import conditional
from tests.api.test_statements import counted
from tests.builders import Tree, build_country

API = "/api/v1"


async def _get(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], h: dict[str, str], tag: str = ""
):  # type: ignore[no-untyped-def]
    headers = {**h, "If-None-Match": tag} if tag else h
    return await client.get(f"{API}{path}", params=params, headers=headers)


async def test_a_poll_that_finds_nothing_new_is_a_bodiless_304_until_the_numbers_move(
    client: httpx.AsyncClient, tree: Tree, _test_engine: AsyncEngine, app: FastAPI
) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("viewer", c.province_a)))
    reads = {
        "/aggregates/progress": {"org_unit_id": c.province_a.id, "year": 2025},
        "/aggregates/breakdown": {
            "org_unit_id": c.province_a.id,
            "year": 2025,
            "metric": "staff_recognised_pct",
        },
        "/aggregates/trend": {
            "org_unit_id": c.province_a.id,
            "metric": "staff_recognised_pct",
            "from_year": 2023,
            "to_year": 2025,
        },
        "/reporting/completeness": {"org_unit_id": c.province_a.id, "year": 2025},
        "/reports/annual": {"org_unit_id": c.province_a.id, "year": 2025},
    }
    tags = {}
    for path, params in reads.items():
        first = await _get(client, path, params, h)
        assert first.status_code == 200, (path, first.text)
        tag = first.headers["etag"]
        assert tag.startswith('W/"') and first.headers["cache-control"] == "private, no-cache"
        again = await _get(client, path, params, h, tag)
        assert again.status_code == 304 and again.content == b"", path
        assert again.headers["etag"] == tag
        assert (await _get(client, path, params, h, f'"other", {tag}')).status_code == 304
        assert (await _get(client, path, params, h, '"other"')).status_code == 200
        tags[path] = tag

    # Another format, year or language is another answer.
    progress = reads["/aggregates/progress"]
    assert (
        await _get(
            client, "/aggregates/progress", {**progress, "year": 2024}, h, tags["/aggregates/progress"]
        )
    ).status_code == 200
    vi = await client.get(
        f"{API}/aggregates/progress",
        params=progress,
        headers={**h, "If-None-Match": tags["/aggregates/progress"], "Accept-Language": "vi"},
    )
    assert vi.status_code == 200

    # A recognition in the subtree moves every one of them.
    staff = await tree.person(c.school_a, "staff")
    await tree.evaluation(staff, 2025, "recognised")
    for path, params in reads.items():
        r = await _get(client, path, params, h, tags[path])
        assert r.status_code == 200, path
        assert r.headers["etag"] != tags[path]
        tags[path] = r.headers["etag"]

    # One in the other province moves nothing here.
    other = await tree.person(c.school_b, "staff")
    await tree.evaluation(other, 2025, "recognised")
    for path in ("/aggregates/progress", "/aggregates/breakdown", "/aggregates/trend"):
        assert (await _get(client, path, reads[path], h, tags[path])).status_code == 304, path

    # The 304 of a tag this process kept costs no statement (app/core/conditional.py's TagCache); with
    # nothing kept, two: the subject, then the unit with the grant and the change counters.
    for max_age, statements in ((5.0, 0), (0.0, 2)):
        app.state.tags.max_age = app.state.auth.subjects.max_age = max_age
        for _ in range(2):
            with counted(_test_engine) as seen:
                r = await _get(client, "/aggregates/progress", progress, h, tags["/aggregates/progress"])
            assert r.status_code == 304 and r.headers["etag"] == tags["/aggregates/progress"]
            assert len(seen) == statements, seen


async def test_a_new_target_moves_the_tag_though_no_number_moved(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    admin = tree.auth(await tree.user(("org_admin", c.province_a)))
    params = {"org_unit_id": c.province_a.id, "year": 2025}
    tag = (await _get(client, "/aggregates/progress", params, admin)).headers["etag"]
    plan = {
        "org_unit_id": c.province_a.id,
        "title": "Kế hoạch",
        "start_year": 2022,
        "end_year": 2030,
        "targets": [{"metric": "staff_recognised_pct", "year": 2025, "value": 70}],
    }
    assert (await client.post(f"{API}/plans", json=plan, headers=admin)).status_code == 201
    r = await _get(client, "/aggregates/progress", params, admin, tag)
    assert r.status_code == 200
    target = next(m for m in r.json()["metrics"] if m["metric"] == "staff_recognised_pct")["target"]
    assert target == 70


async def test_no_304_for_a_caller_who_may_not_read_the_unit(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    viewer = await tree.user(("viewer", c.province_a))
    params = {"org_unit_id": c.province_a.id, "year": 2025}
    tag = (await _get(client, "/aggregates/progress", params, tree.auth(viewer))).headers["etag"]
    outsider = tree.auth(await tree.user(("viewer", c.province_b)))
    assert (await _get(client, "/aggregates/progress", params, outsider, tag)).status_code == 404
    assert (await _get(client, "/aggregates/progress", params, outsider, "*")).status_code == 404
    # The tag is the caller's own: another viewer of the province gets the body for it.
    colleague = tree.auth(await tree.user(("viewer", c.province_a)))
    assert (await _get(client, "/aggregates/progress", params, colleague, tag)).status_code == 200


async def test_epochs_move_with_what_the_dashboards_read_and_only_then(
    session: AsyncSession, tree: Tree
) -> None:
    async def epochs() -> dict[str, int]:
        return {
            kind: epoch
            for kind, epoch in (await session.execute(select(ChangeEpoch.kind, ChangeEpoch.epoch))).all()
        }

    before = await epochs()
    c = await build_country(tree)  # units: the tree
    after_tree = await epochs()
    assert after_tree["reference"] > before["reference"]
    await tree.person(c.school_a)  # a person: records (and counters, which have their own versions)
    after_person = await epochs()
    assert after_person["records"] > after_tree["records"]
    assert after_person["reference"] == after_tree["reference"]
    session.add(
        LoginAttempt(kind="user", key="nobody", failures=1, last_attempt_at=datetime.now(UTC))
    )  # sign-in bookkeeping: nothing
    await session.commit()
    assert await epochs() == after_person

    # An object set to the value it holds writes nothing (``core/writes._changed``): nothing moves; a real
    # change of the same object moves its kind.
    unit = c.school_a
    unit.name = str(unit.name)
    await session.commit()
    assert await epochs() == after_person
    unit.name = unit.name + " (mới)"
    await session.commit()
    moved = await epochs()
    assert moved["reference"] == after_person["reference"] + 1 and moved["records"] == after_person["records"]


async def test_a_kept_tag_answers_only_while_the_caller_may_still_read_and_the_day_is_the_same(
    client: httpx.AsyncClient, tree: Tree, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = await build_country(tree)
    admin = tree.auth(await tree.admin())
    viewer = await tree.user(("viewer", c.province_a))
    h = tree.auth(viewer)
    params = {"org_unit_id": c.province_a.id, "year": 2025}
    tag = (await _get(client, "/aggregates/progress", params, h)).headers["etag"]
    assert (await _get(client, "/aggregates/progress", params, h, tag)).status_code == 304

    # Another language is another answer; a token that is not valid gets 401, whatever it sends.
    vi = {**h, "If-None-Match": tag, "Accept-Language": "vi"}
    assert (await client.get(f"{API}/aggregates/progress", params=params, headers=vi)).status_code == 200
    forged = {"Authorization": h["Authorization"][:-2] + "xx"}
    assert (await _get(client, "/aggregates/progress", params, forged, tag)).status_code == 401

    # Midnight: what is late or overdue may change with no write, so the kept tag is not used.
    tomorrow = date.today() + timedelta(days=1)
    for module in (conditional, freshness):
        monkeypatch.setattr(module, "today", lambda: tomorrow)
    assert (await _get(client, "/aggregates/progress", params, h, tag)).status_code == 200
    monkeypatch.undo()
    assert (await _get(client, "/aggregates/progress", params, h, tag)).status_code == 304

    # The caller's role goes: the very next poll is refused, not told that nothing changed.
    role = await session.scalar(select(RoleAssignment.id).where(RoleAssignment.user_id == viewer.id))
    assert (await client.delete(f"{API}/users/{viewer.id}/roles/{role}", headers=admin)).status_code == 204
    assert (await _get(client, "/aggregates/progress", params, h, tag)).status_code == 404
