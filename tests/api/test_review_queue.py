"""The review queue behind the ``review_waiting`` alert (``review_queue_counts``) is kept by every change
that moves an evaluation in or out of it or moves its unit: after each step made over HTTP — submit,
review, return, resubmit, complete, withdraw, a unit moved, communes merged — it equals a recount from the
evaluations and today's tree, and ``rebuild`` finds the same."""

from __future__ import annotations

from collections import Counter

import httpx
from sqlalchemy import select

from app.aggregates import waiting
from app.aggregates.models import ReviewQueueCount
from app.core.dates import today
from app.evaluations.models import Evaluation
from app.orgs.models import OrgUnitClosure
from tests.api.evaluation_flow import act, drive_to, make_school
from tests.builders import Tree

API = "/api/v1"


async def recount(tree: Tree) -> dict[tuple[int, int, str], int]:
    """Every waiting evaluation counted at each ancestor of its unit in today's tree, by hand."""
    rows = await tree.session.execute(
        select(OrgUnitClosure.ancestor_id, Evaluation.year, Evaluation.submitted_at, Evaluation.status).join(
            Evaluation, Evaluation.org_unit_id == OrgUnitClosure.descendant_id
        )
    )
    found: Counter[tuple[int, int, str]] = Counter()
    for unit_id, year, submitted_at, status in rows.all():
        if status in ("submitted", "in_review"):
            found[(unit_id, year, submitted_at.date().isoformat())] += 1
    return dict(found)


async def stored(tree: Tree) -> dict[tuple[int, int, str], int]:
    q = ReviewQueueCount
    rows = await tree.session.execute(select(q.org_unit_id, q.year, q.submitted_on, q.n).where(q.n != 0))
    return {(unit_id, year, day.isoformat()): n for unit_id, year, day, n in rows.all()}


async def check(tree: Tree) -> None:
    assert await stored(tree) == await recount(tree)


async def test_the_queue_equals_a_recount_after_every_step(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    province = await tree.unit("Tỉnh", "province")
    other_province = await tree.unit("Tỉnh khác", "province")
    district = await tree.unit("Huyện", "district", province)
    commune = await tree.unit("Xã A", "commune", district)
    commune_b = await tree.unit("Xã B", "commune", district)
    school = await make_school(tree, commune)
    school_b = await make_school(tree, commune_b, "Trường B")
    admin = tree.auth(await tree.admin())

    submitted = [await drive_to(client, tree, school, "submitted") for _ in range(3)]
    in_review = await drive_to(client, tree, school, "in_review")
    returned = await drive_to(client, tree, school, "returned")
    await drive_to(client, tree, school, "reviewed")
    await drive_to(client, tree, school_b, "submitted")
    await drive_to(client, tree, school_b, "submitted", year=2024)
    await check(tree)
    assert (await stored(tree))[(province.id, 2025, submitted[0]["submitted_at"][:10])] == 5

    # Out of the queue: withdrawn, returned, reviewed; back in: resubmitted.
    assert (await act(client, school.admin, submitted[0]["id"], "withdraw")).status_code == 200
    assert (
        await act(client, school.assessor, in_review["id"], "return", {"reason": "Bổ sung"})
    ).status_code == 200
    assert (await act(client, school.assessor, submitted[1]["id"], "complete-review")).status_code == 200
    assert (await act(client, school.admin, returned["id"], "submit")).status_code == 200
    await check(tree)

    # The commune moves to the other province: its queue leaves the district and the province.
    r = await client.post(
        f"{API}/org-units/{commune.id}/move", json={"parent_id": other_province.id}, headers=admin
    )
    assert r.status_code == 200, r.text
    await check(tree)
    counted = await stored(tree)
    assert sum(n for k, n in counted.items() if k[0] == district.id and k[1] == 2025) == 1  # school B's
    assert sum(n for k, n in counted.items() if k[0] == other_province.id and k[1] == 2025) == 2

    # A reform today: commune B and the moved commune merge into a new commune of the first province.
    body = {
        "effective_on": today().isoformat(),
        "title": "Sắp xếp đơn vị hành chính 2025",
        "steps": [
            {"op": "create", "ref": "n", "name": "Xã Mới", "kind": "commune", "parent": province.id},
            {"op": "merge", "units": [commune.id, commune_b.id], "into": "n"},
        ],
    }
    r = await client.post(f"{API}/reorganisations", json=body, headers=admin)
    assert r.status_code in (200, 201), r.text
    await check(tree)
    counted = await stored(tree)
    assert sum(n for k, n in counted.items() if k[0] == other_province.id) == 0
    assert sum(n for k, n in counted.items() if k[0] == province.id and k[1] == 2025) == 3

    # A recount from scratch finds what the changes kept.
    kept = await stored(tree)
    await waiting.rebuild(tree.session)
    assert await stored(tree) == kept
