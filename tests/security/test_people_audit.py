"""Issue #14, item 7(d): creating and changing a person writes audit rows (who, what, before, after) in
the same transaction; a citizen id change is its own row; the audit never holds a citizen id whole."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from app.core.audit import AuditEntry
from tests.builders import Tree

API = "/api/v1"
CITIZEN_ID = "062185001234"
NEW_CITIZEN_ID = "079190005678"


async def _rows(tree: Tree, person_id: int) -> list[tuple[int | None, str, Any, Any]]:
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.entity_type == "person", AuditEntry.entity_id == person_id)
        .order_by(AuditEntry.id)
        .execution_options(populate_existing=True)
    )
    return [(e.actor_user_id, e.action, e.before, e.after) for e in (await tree.session.scalars(stmt)).all()]


async def test_people_changes_are_audited_with_citizen_ids_masked(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    unit = await tree.unit("Trường", "school")
    admin = await tree.user(("org_admin", unit))
    h = tree.auth(admin)
    body = {
        "full_name": "Nguyễn Thị Hoa",
        "org_unit_id": unit.id,
        "group": "staff",
        "birth_year": 1988,
        "citizen_id": CITIZEN_ID,
    }
    r = await client.post(f"{API}/people", json=body, headers=h)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert await _rows(tree, pid) == [
        (
            admin.id,
            "created",
            None,
            {
                "full_name": "Nguyễn Thị Hoa",
                "org_unit_id": unit.id,
                "group": "staff",
                "birth_year": 1988,
                "gender": None,
                "citizen_id": "********1234",
                "user_id": None,
            },
        )
    ]

    r = await client.patch(
        f"{API}/people/{pid}",
        json={"full_name": "Nguyễn Thị Hoà", "citizen_id": NEW_CITIZEN_ID, "birth_year": 1988},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert (await _rows(tree, pid))[1:] == [
        (admin.id, "updated", {"full_name": "Nguyễn Thị Hoa"}, {"full_name": "Nguyễn Thị Hoà"}),
        (admin.id, "citizen_id_changed", {"citizen_id": "********1234"}, {"citizen_id": "********5678"}),
    ]

    # A citizen id with the same last four digits is still a change; removing one is too.
    r = await client.patch(f"{API}/people/{pid}", json={"citizen_id": "001085005678"}, headers=h)
    assert r.status_code == 200
    r = await client.patch(f"{API}/people/{pid}", json={"citizen_id": None}, headers=h)
    assert r.status_code == 200
    assert (await _rows(tree, pid))[3:] == [
        (admin.id, "citizen_id_changed", {"citizen_id": "********5678"}, {"citizen_id": "********5678"}),
        (admin.id, "citizen_id_changed", {"citizen_id": "********5678"}, {"citizen_id": None}),
    ]

    # A change of group is audited with the person too; a PATCH that changes nothing writes nothing.
    r = await client.patch(
        f"{API}/people/{pid}", json={"group": "worker", "full_name": "Nguyễn Thị Hoà"}, headers=h
    )
    assert r.status_code == 200, r.text
    rows = await _rows(tree, pid)
    assert rows[-1] == (admin.id, "updated", {"group": "staff"}, {"group": "worker"})
    assert (
        await client.patch(f"{API}/people/{pid}", json={"birth_year": 1988}, headers=h)
    ).status_code == 200
    assert await _rows(tree, pid) == rows

    everything = repr([(e.before, e.after) for e in (await tree.session.scalars(select(AuditEntry))).all()])
    for whole in (CITIZEN_ID, NEW_CITIZEN_ID, "001085005678"):
        assert whole not in everything


async def test_a_refused_change_writes_no_audit_row(client: httpx.AsyncClient, tree: Tree) -> None:
    unit = await tree.unit("Trường", "school")
    h = tree.auth(await tree.user(("org_admin", unit)))
    first = await client.post(
        f"{API}/people",
        json={"full_name": "A", "org_unit_id": unit.id, "group": "staff", "citizen_id": CITIZEN_ID},
        headers=h,
    )
    second = await client.post(
        f"{API}/people", json={"full_name": "B", "org_unit_id": unit.id, "group": "staff"}, headers=h
    )
    taken = await client.patch(
        f"{API}/people/{second.json()['id']}", json={"citizen_id": CITIZEN_ID}, headers=h
    )
    assert (first.status_code, taken.status_code) == (201, 409)
    assert [action for _, action, _, _ in await _rows(tree, second.json()["id"])] == ["created"]
